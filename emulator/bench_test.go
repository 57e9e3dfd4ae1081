package emulator_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge/emulator"
)

func BenchmarkGenerate100k(b *testing.B) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		emulator.Generate(emulator.GenerateOptions{Seed: 1, Machines: 100_000, Now: now})
	}
}

// BenchmarkServeMachinePage10k serves GET /api/machines?$top=10000 from a
// 100,000-machine tenant in-process: filter, page, encode and (for gzip)
// compress, without the network.
func BenchmarkServeMachinePage10k(b *testing.B) {
	s, err := emulator.New(emulator.Options{
		Tenant:     emulator.Generate(emulator.GenerateOptions{Seed: 1, Machines: 100_000}),
		RateLimits: emulator.RateLimits{Off: true},
	})
	if err != nil {
		b.Fatal(err)
	}
	app, err := s.CreateApp(emulator.AppSpec{Roles: []string{"Machine.Read.All"}})
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
	for _, enc := range []string{"identity", "gzip"} {
		b.Run(enc, func(b *testing.B) {
			var size int
			for b.Loop() {
				req := httptest.NewRequest("GET", "https://api.securitycenter.microsoft.com/api/machines?$top=10000&$skip=20000", nil)
				req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				req.Header.Set("Accept-Encoding", enc)
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}
