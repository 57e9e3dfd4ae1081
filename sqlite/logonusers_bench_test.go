package sqlite_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/sqlite"
	"github.com/mdebridge/mdebridge/storetest"
)

// BenchmarkUpsertLogonUsers stores the answer of one logon-user query:
// 60,000 edges of 20,000 machines and 15,000 accounts, new or unchanged.
func BenchmarkUpsertLogonUsers(b *testing.B) {
	now := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	page := make([]mdebridge.LogonUser, 60_000)
	for i := range page {
		page[i] = storetest.LogonUser(storetest.Machine(i/3).ID, "contoso", fmt.Sprintf("user%d", (i*7919)%15_000),
			now.Add(-20*24*time.Hour), now.Add(-time.Duration(i)*time.Second), "Interactive", "Network")
	}
	for _, unchanged := range []bool{false, true} {
		b.Run(fmt.Sprintf("unchanged=%v", unchanged), func(b *testing.B) {
			db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "b.db"), sqlite.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			run := int64(1)
			if unchanged {
				if err := db.UpsertLogonUsers(b.Context(), run, page); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				if !unchanged {
					b.StopTimer()
					db.Close()
					if db, err = sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "b.db"), sqlite.Options{}); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				run++
				if err := db.UpsertLogonUsers(b.Context(), run, page); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(page))*float64(b.N)/b.Elapsed().Seconds(), "edges/s")
		})
	}
}
