package emulator_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/mdebridge/mdebridge/emulator"
)

// FuzzMachineQueries sends arbitrary query strings and findbyip arguments
// through the whole handler: the answer is always a well-formed 200, 400 or
// 404, never a panic or a 5xx.
func FuzzMachineQueries(f *testing.F) {
	s, err := emulator.New(emulator.Options{
		Tenant:     emulator.Generate(emulator.GenerateOptions{Seed: 1, Machines: 50}),
		RateLimits: emulator.RateLimits{Off: true},
	})
	if err != nil {
		f.Fatal(err)
	}
	var tok string
	for _, q := range []string{
		"$filter=riskScore+eq+'High'&$top=5",
		"$filter=machineTags/any(t:+t+eq+'VIP')&$orderby=lastSeen+desc&$count=true",
		"$select=id,computerDnsName&$skip=3",
		"$top=10001",
		"$filter=lastSeen+gt+2018-08-01Z",
		"%24filter=startswith(computerDnsName,'desk')",
	} {
		f.Add(q, "ip='10.1.2.3',timestamp=2026-01-01T00:00:00Z")
	}
	f.Fuzz(func(t *testing.T, query, args string) {
		if tok == "" {
			tok = tokenFrom(t, s, "https://api.securitycenter.microsoft.com/.default")
		}
		for _, target := range []string{
			"/api/machines?" + query,
			"/api/machines/findbyip(" + url.PathEscape(args) + ")",
		} {
			req, err := http.NewRequest("GET", "https://api.securitycenter.microsoft.com"+target, nil)
			if err != nil {
				continue
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			switch rec.Code {
			case 200, 400, 404:
			default:
				t.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
			}
		}
	})
}
