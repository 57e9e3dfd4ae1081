package emulator_test

import (
	"encoding/json"
	"testing"
)

// BenchmarkTVMHuntingQuery100k runs queries over the TVM hunting tables of a
// 100,000-machine tenant (about 5,000,000 vulnerability rows) in-process:
// the rows are computed from the model as the scan streams them.
func BenchmarkTVMHuntingQuery100k(b *testing.B) {
	s, tok := huntingBenchServer(b, 100_000)
	// Build the TVM model and the snapshot outside the measurement; pick a
	// CVE and a device for the filtered queries.
	var first struct{ Results []map[string]string }
	err := json.Unmarshal(benchHunt(b, s, tok,
		`DeviceTvmSoftwareVulnerabilities | where VulnerabilitySeverityLevel == "Critical" | take 1 | project CveId, DeviceId`), &first)
	if err != nil || len(first.Results) != 1 {
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
				last = benchHunt(b, s, tok, q.query)
			}
			var r struct {
				Results []map[string]any
			}
			if err := json.Unmarshal(last, &r); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(r.Results)), "rows")
			if n, ok := r.Results[0]["Count"].(float64); ok {
				b.ReportMetric(n, "count")
			}
		})
	}
}
