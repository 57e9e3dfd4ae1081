package emulator_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge/emulator"
)

// BenchmarkTVMHuntingQuery100k runs queries over the TVM hunting tables of a
// 100,000-machine tenant (about 5,000,000 vulnerability rows) in-process:
// the rows are computed from the model as the scan streams them.
func BenchmarkTVMHuntingQuery100k(b *testing.B) {
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
	run := func(query string) []byte {
		body, _ := json.Marshal(map[string]string{"Query": query})
		req := httptest.NewRequest("POST", "https://api.securitycenter.microsoft.com/api/advancedqueries/run", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("%s: %d %s", query, rec.Code, rec.Body)
		}
		return rec.Body.Bytes()
	}
	// Build the TVM model and the snapshot outside the measurement; pick a
	// CVE and a device for the filtered queries.
	var first struct{ Results []map[string]string }
	if err := json.Unmarshal(run(`DeviceTvmSoftwareVulnerabilities | where VulnerabilitySeverityLevel == "Critical" | take 1 | project CveId, DeviceId`), &first); err != nil || len(first.Results) != 1 {
		b.Fatalf("no critical row: %v", err)
	}
	cve, device := first.Results[0]["CveId"], first.Results[0]["DeviceId"]
	for _, q := range []struct{ name, query string }{
		{"vulnerabilities-count", `DeviceTvmSoftwareVulnerabilities | count`},
		{"machines-of-a-cve", `DeviceTvmSoftwareVulnerabilities | where CveId == "` + cve + `" | project DeviceId`},
		{"one-device", `DeviceTvmSoftwareVulnerabilities | where DeviceId == "` + device + `"`},
		{"inventory-devices-by-software", `DeviceTvmSoftwareInventory | summarize dcount(DeviceId) by SoftwareName`},
	} {
		b.Run(q.name, func(b *testing.B) {
			var last []byte
			for b.Loop() {
				last = run(q.query)
			}
			var r struct{ Results []json.RawMessage }
			if err := json.Unmarshal(last, &r); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(r.Results)), "rows")
			if q.name == "vulnerabilities-count" {
				var c struct{ Results []struct{ Count int } }
				json.Unmarshal(last, &c)
				b.ReportMetric(float64(c.Results[0].Count), "count")
			}
		})
	}
}
