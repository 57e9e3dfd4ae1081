package sqlite_test

import (
	"fmt"
	"path/filepath"
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
