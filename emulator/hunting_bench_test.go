package emulator_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge/emulator"
)

// BenchmarkDeviceInfoQuery100k runs advanced hunting queries over a
// 100,000-machine tenant in-process: generate the rows, filter, summarise
// and encode the answer, without the network.
func BenchmarkDeviceInfoQuery100k(b *testing.B) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	s, err := emulator.New(emulator.Options{
		Tenant:     emulator.Generate(emulator.GenerateOptions{Seed: 1, Machines: 100_000, Now: now}),
		Now:        func() time.Time { return now },
		RateLimits: emulator.RateLimits{Off: true},
	})
	if err != nil {
		b.Fatal(err)
	}
	tok := benchToken(b, s)
	for _, q := range []struct{ name, query string }{
		{"latest-report-per-device", `DeviceInfo | where Timestamp > ago(30d) | summarize arg_max(Timestamp, DeviceName, OSPlatform, OSBuild, SensorHealthState, LoggedOnUsers) by DeviceId`},
		{"count-by-platform", `DeviceInfo | summarize Devices = dcount(DeviceId) by OSPlatform`},
		{"logon-users-3/16", `DeviceLogonEvents | where substring(DeviceId, 0, 1) in ("0", "1", "2") | where Timestamp > ago(30d) and ActionType == "LogonSuccess" | summarize arg_max(Timestamp, AccountSid, IsLocalAdmin), FirstSeen = min(Timestamp), LogonTypes = make_set(LogonType) by DeviceId, AccountDomain, AccountName`},
	} {
		b.Run(q.name, func(b *testing.B) {
			body, _ := json.Marshal(map[string]string{"Query": q.query})
			var last []byte
			for b.Loop() {
				req := httptest.NewRequest("POST", "https://api.securitycenter.microsoft.com/api/advancedqueries/run", strings.NewReader(string(body)))
				req.Header.Set("Authorization", "Bearer "+tok)
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
				last = rec.Body.Bytes()
			}
			var r struct{ Results []json.RawMessage }
			if err := json.Unmarshal(last, &r); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(r.Results)), "rows")
			b.ReportMetric(float64(len(last)), "bytes")
		})
	}
}

func benchToken(b *testing.B, s *emulator.Server) string {
	app, err := s.CreateApp(emulator.AppSpec{Roles: []string{"AdvancedQuery.Read.All"}})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/"+s.TenantID()+"/oauth2/v2.0/token", strings.NewReader(
		"grant_type=client_credentials&client_id="+app.ClientID+"&client_secret="+app.ClientSecret+"&scope=https://api.securitycenter.microsoft.com/.default"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil {
		b.Fatal(err)
	}
	return tok.AccessToken
}
