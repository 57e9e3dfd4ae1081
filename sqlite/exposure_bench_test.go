package sqlite_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/sqlite"
)

// BenchmarkVulnerabilityLoad loads a full export of rowsPerOp rows (50 per
// machine, realistic strings) and commits it: the store's share of an
// ingest, indexes and figures included.
func BenchmarkVulnerabilityLoad(b *testing.B) {
	const machines, perMachine = 20000, 50
	db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "b.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	type product struct{ vendor, name, version string }
	var pool []product
	for v := range 40 {
		pool = append(pool, product{"vendor" + fmt.Sprint(v%9), "product_" + fmt.Sprint(v), fmt.Sprintf("%d.0.%d", v, v*37)})
	}
	cvss := 7.5
	yes := true
	seen := time.Date(2026, 11, 20, 5, 0, 0, 0, time.UTC)
	batch := make([]mdebridge.MachineVulnerability, 0, 20000)
	for b.Loop() {
		l, err := db.BeginVulnerabilityLoad(b.Context(), 1)
		if err != nil {
			b.Fatal(err)
		}
		for m := range machines {
			dev := fmt.Sprintf("%040x", m*7919+1)
			for k := range perMachine {
				p := pool[(m+k)%len(pool)]
				cve := fmt.Sprintf("CVE-2026-%d", 10000+(m*3+k*11)%15000)
				batch = append(batch, mdebridge.MachineVulnerability{
					ID: dev + "_" + p.vendor + "_" + p.name + "_" + p.version + "_" + cve, DeviceID: dev, DeviceName: "host-" + dev[:6] + ".corp.contoso.com",
					RBACGroupName: "Workstations", OSPlatform: "Windows11", OSVersion: "10.0.26100.2605", OSArchitecture: "x64",
					SoftwareVendor: p.vendor, SoftwareName: p.name, SoftwareVersion: p.version, CVEID: cve, Severity: "High", CVSSScore: &cvss,
					RecommendedSecurityUpdate: "193220", DiskPaths: []string{`C:\Program Files\` + p.name + `\app.exe`},
					FirstSeen: seen, LastSeen: seen, ExploitabilityLevel: "NoExploit", SecurityUpdateAvailable: &yes,
				})
			}
			if len(batch) >= 20000 {
				if err := l.Add(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		if err := l.Add(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
		start := time.Now()
		if _, err := l.Commit(b.Context()); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "commit-s")
	}
	b.ReportMetric(float64(machines*perMachine)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
