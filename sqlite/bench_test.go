package sqlite_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/sqlite"
	"github.com/mdebridge/mdebridge/storetest"
)

// benchPage is one API page of machines with raw JSON of a live machine's
// size (about 1.4 KB) and four NICs.
func benchPage(offset, n int) []mdebridge.Machine {
	page := make([]mdebridge.Machine, n)
	for i := range page {
		m := storetest.Machine(offset + i)
		m.IPAddresses = append(m.IPAddresses,
			mdebridge.IPAddress{IPAddress: fmt.Sprintf("fe80::%x", offset+i), MACAddress: "00155D000001", Type: "Ethernet", OperationalStatus: "Up"},
			mdebridge.IPAddress{IPAddress: fmt.Sprintf("172.16.%d.%d", (offset+i)/250%250, (offset+i)%250), MACAddress: "00155D000002", Type: "Wireless80211", OperationalStatus: "Down"})
		pad := make([]byte, 1200)
		for j := range pad {
			pad[j] = 'x'
		}
		m.Raw = []byte(fmt.Sprintf(`{"id":%q,"computerDnsName":%q,"pad":%q}`, m.ID, m.ComputerDNSName, pad))
		page[i] = m
	}
	return page
}

func BenchmarkUpsertMachinesPage(b *testing.B) {
	for _, unchanged := range []bool{false, true} {
		b.Run(fmt.Sprintf("unchanged=%v", unchanged), func(b *testing.B) {
			db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "b.db"), sqlite.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			const n = 10000
			run, offset := int64(1), 0
			page := benchPage(0, n)
			if unchanged {
				if err := db.UpsertMachines(b.Context(), run, page); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				run++
				if !unchanged {
					offset += n
					b.StopTimer()
					page = benchPage(offset, n)
					b.StartTimer()
				}
				if err := db.UpsertMachines(b.Context(), run, page); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "machines/s")
		})
	}
}

// BenchmarkIngestAlertsPage stores one poll's page of 10,000 new alerts
// (each with the raw JSON size of a live alert with evidence, about 5 KB)
// as incidents with their create events: the burst path of the pipeline.
func BenchmarkIngestAlertsPage(b *testing.B) {
	db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "b.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const n = 10000
	pad := strings.Repeat("x", 4000)
	offset := 0
	for b.Loop() {
		b.StopTimer()
		page := make([]mdebridge.Alert, n)
		for i := range page {
			page[i] = storetest.Alert(offset+i, func(a *mdebridge.Alert) { a.Description = pad })
		}
		offset += n
		b.StartTimer()
		if _, err := db.IngestAlerts(b.Context(), page, mdebridge.IngestOptions{GroupBy: mdebridge.GroupByAlert}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "alerts/s")
}
