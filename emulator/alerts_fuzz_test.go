package emulator_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mdebridge/mdebridge/emulator"
)

// FuzzAlertRequests sends arbitrary list queries and update bodies through
// the whole handler: the answer is always a well-formed 200, 400 or 404,
// never a panic or a 5xx, and a refused update changes nothing.
func FuzzAlertRequests(f *testing.F) {
	tn := emulator.Generate(emulator.GenerateOptions{Seed: 1, Machines: 20, Alerts: 40})
	s, err := emulator.New(emulator.Options{Tenant: tn, RateLimits: emulator.RateLimits{Off: true}})
	if err != nil {
		f.Fatal(err)
	}
	var tok, alertID string
	for _, q := range []string{
		"$filter=lastUpdateTime+ge+2019-11-22T00:00:00Z&$orderby=lastUpdateTime+asc&$top=100&$skip=0&$expand=evidence",
		"$filter=status+eq+'New'+and+(severity+eq+'High'+or+severity+eq+'Medium')",
		"$select=id,title&$count=true",
		"$expand=Evidence,machine",
		"$filter=incidentId+eq+400+and+InvestigationId+eq+null",
	} {
		f.Add(q, `{"status":"Resolved","classification":"TruePositive","determination":"Malware","comment":"x"}`)
	}
	f.Add("$top=-1", `{"determination":"Clean"}`)
	f.Add("", `{"assignedTo":null}`)
	f.Fuzz(func(t *testing.T, query, body string) {
		if tok == "" {
			tok = tokenFrom(t, s, "https://api.securitycenter.microsoft.com/.default")
			var p struct{ Value []struct{ ID string } }
			if err := json.Unmarshal(call(s, "GET", "/api/alerts?$top=1", tok).Body.Bytes(), &p); err != nil || len(p.Value) == 0 {
				t.Fatalf("no alert to update: %v", err)
			}
			alertID = p.Value[0].ID
		}
		req, err := http.NewRequest("GET", "https://api.securitycenter.microsoft.com/api/alerts?"+query, nil)
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != 200 && rec.Code != 400 {
				t.Fatalf("GET ?%s: %d %s", query, rec.Code, rec.Body)
			}
		}
		before := call(s, "GET", "/api/alerts/"+alertID, tok).Body.String()
		req, _ = http.NewRequest("PATCH", "https://api.securitycenter.microsoft.com/api/alerts/"+alertID, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		switch rec.Code {
		case 200:
		case 400:
			if after := call(s, "GET", "/api/alerts/"+alertID, tok).Body.String(); after != before {
				t.Fatalf("a refused update (%s) changed the alert", body)
			}
		default:
			t.Fatalf("PATCH %s: %d %s", body, rec.Code, rec.Body)
		}
	})
}
