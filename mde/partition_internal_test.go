package mde

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// matches says whether a device id falls in p, as the KQL predicate decides.
func (p partition) matches(id string) bool {
	if p.all {
		return true
	}
	id = strings.ToLower(id)
	for _, pre := range p.prefixes {
		if strings.HasPrefix(id, pre) {
			return true
		}
	}
	return p.catchAll && (id == "" || !strings.ContainsRune(hexDigitsLower, rune(id[0])))
}

func randomIDs(n int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	ids := []string{"", "ZZ00", "-x", "F00D", "g123"}
	for range n {
		ids = append(ids, fmt.Sprintf("%016x%016x%08x", r.Uint64(), r.Uint64(), r.Uint32()))
	}
	return ids
}

// TestPartitionsCoverEveryDeviceOnce: whatever the plan and however often
// a partition is split, every device id falls in exactly one query.
func TestPartitionsCoverEveryDeviceOnce(t *testing.T) {
	ids := randomIDs(1000)
	check := func(name string, parts []partition) {
		for _, id := range ids {
			n := 0
			for _, p := range parts {
				if p.matches(id) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%s: id %q is in %d partitions of %v", name, id, n, parts)
			}
		}
	}
	for _, tt := range []struct{ expected, target int }{{10, 100}, {101, 100}, {300_000, 60_000}, {5_000_000, 60_000}} {
		parts := planPartitions(tt.expected, tt.target)
		check(fmt.Sprint(tt), parts)
		// Split the first, the last and a middle one, repeatedly.
		for range 6 {
			for _, i := range []int{0, len(parts) / 2, len(parts) - 1} {
				halves, ok := parts[i].split()
				if !ok {
					continue
				}
				parts = append(append(append([]partition{}, parts[:i]...), halves...), parts[i+1:]...)
			}
			check(fmt.Sprint(tt, " split"), parts)
		}
	}
}

func TestPlanSizes(t *testing.T) {
	for _, tt := range []struct{ expected, target, want int }{
		{60_000, 60_000, 1},
		{300_000, 60_000, 6},    // 100,000 machines, 3 users each
		{1_000_000, 60_000, 18}, // one query per 56,000 rows or so
	} {
		parts := planPartitions(tt.expected, tt.target)
		if len(parts) != tt.want {
			t.Errorf("%d rows, %d a query: %d queries, want %d", tt.expected, tt.target, len(parts), tt.want)
		}
	}
	p := planPartitions(300_000, 60_000)[5]
	want := `substring(DeviceId, 0, 2) in~ (`
	if got := p.predicate(); !strings.HasPrefix(got, want) || !strings.HasSuffix(got, `"ff") or not(substring(DeviceId, 0, 1) in~ ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"))`) {
		t.Errorf("last predicate %s", got)
	}
}
