package emulator

import (
	"fmt"
	"math"
	"testing"
	"time"
)

var tvmEpoch = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

func tvmTenant(t *testing.T, machines int, perMachine float64) (*Tenant, *time.Time) {
	t.Helper()
	now := tvmEpoch
	tn := Generate(GenerateOptions{Seed: 3, Machines: machines, Now: now, VulnsPerMachine: perMachine})
	tn.setClock(func() time.Time { return now })
	return tn, &now
}

// rowsAt is every vulnerability row of the tenant at t, keyed like the
// export's unique combination, with its exploitability.
func rowsAt(tn *Tenant, s *tvmSnapshot, t time.Time) map[string]string {
	out := map[string]string{}
	for i, m := range s.machines {
		s.model.machineRows(m, s.joined[i], t, func(in *tvmInstall, n int, c *tvmCVE, _ time.Time) bool {
			lvl := "NoExploit"
			id := ""
			if c != nil {
				lvl, id = c.exploitLevel(t), c.id
			}
			out[fmt.Sprintf("%s|%s|%s|%s|%s", m.ID, in.p.vendor, in.p.name, s.model.version(in.p, n), id)] = lvl
			return true
		})
	}
	return out
}

// The delta API's promise: the rows at t1 plus the changes in (t1, t2],
// applied in time order, are the rows at t2. Checked over windows of
// different lengths, with a machine joining in the middle.
func TestDeltaReplaysToTheNextState(t *testing.T) {
	tn, now := tvmTenant(t, 150, 50)
	t1 := snapshotTime(*now)
	for _, window := range []time.Duration{6 * time.Hour, 3 * day, 13 * day} {
		*now = t1.Add(window / 2)
		tn.AddMachines(3, int64(window))
		*now = t1.Add(window)
		s2 := tn.snapshot(*now)
		state := rowsAt(tn, s2, t1)
		d := tn.delta(s2, t1)
		counts := map[deltaStatus]int{}
		last := map[int]time.Time{}
		for _, r := range d.rows {
			if r.at.Before(last[r.machine]) {
				t.Fatalf("window %v: changes of machine %d out of time order", window, r.machine)
			}
			last[r.machine] = r.at
			if !r.at.After(t1) || r.at.After(s2.at) {
				t.Fatalf("window %v: change at %v outside (%v, %v]", window, r.at, t1, s2.at)
			}
			counts[r.status]++
			m := s2.machines[r.machine]
			id := ""
			lvl := "NoExploit"
			if r.cve != nil {
				id, lvl = r.cve.id, r.cve.exploitLevel(r.state)
			}
			key := fmt.Sprintf("%s|%s|%s|%s|%s", m.ID, r.in.p.vendor, r.in.p.name, s2.model.version(r.in.p, r.n), id)
			switch r.status {
			case deltaNew:
				if _, ok := state[key]; ok {
					t.Fatalf("window %v: New for a row already there: %s", window, key)
				}
				state[key] = lvl
			case deltaFixed:
				if _, ok := state[key]; !ok {
					t.Fatalf("window %v: Fixed for a row not there: %s", window, key)
				}
				delete(state, key)
			case deltaUpdated:
				if _, ok := state[key]; !ok {
					t.Fatalf("window %v: Updated for a row not there: %s", window, key)
				}
				state[key] = lvl
			}
		}
		want := rowsAt(tn, s2, s2.at)
		if len(state) != len(want) {
			t.Fatalf("window %v: replay gives %d rows, the snapshot has %d", window, len(state), len(want))
		}
		for k, lvl := range want {
			if state[k] != lvl {
				t.Fatalf("window %v: row %s: replay %q, snapshot %q", window, k, state[k], lvl)
			}
		}
		if counts[deltaNew] == 0 || counts[deltaFixed] == 0 {
			t.Errorf("window %v: nothing happened: %v", window, counts)
		}
		t.Logf("window %v: %d changes %v", window, len(d.rows), counts)
	}
}

// The average rows per machine follows the setting, whatever the
// tenant's size.
func TestVulnsPerMachineIsCalibrated(t *testing.T) {
	for _, want := range []float64{10, 50} {
		tn, _ := tvmTenant(t, 800, want)
		c := tn.TVMCounts()
		got := float64(c.Vulnerabilities) / 800
		if math.Abs(got-want)/want > 0.25 {
			t.Errorf("%v per machine asked, %.1f generated", want, got)
		}
		if c.Software < 800*10 || c.CVEs == 0 || c.VulnerabilitiesWithoutCVE == 0 {
			t.Errorf("counts %+v", c)
		}
	}
}

func TestCVSSBase(t *testing.T) {
	for _, tt := range []struct {
		vector [8]string
		want   float64
	}{
		{[8]string{"N", "L", "N", "N", "U", "H", "H", "H"}, 9.8},
		{[8]string{"N", "L", "N", "R", "U", "H", "H", "H"}, 8.8},
		{[8]string{"L", "L", "L", "N", "U", "H", "H", "H"}, 7.8},
		{[8]string{"N", "L", "N", "N", "C", "H", "H", "H"}, 10},
		{[8]string{"N", "H", "N", "N", "U", "N", "N", "H"}, 5.9},
		{[8]string{"L", "H", "H", "N", "C", "N", "H", "N"}, 5.3},
	} {
		v := tt.vector
		if got := cvssBase(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]); got != tt.want {
			t.Errorf("%v: %v, want %v", v, got, tt.want)
		}
	}
}

func TestModelIsDeterministic(t *testing.T) {
	a, _ := tvmTenant(t, 50, 0)
	b, _ := tvmTenant(t, 50, 0)
	sa, sb := a.snapshot(tvmEpoch), b.snapshot(tvmEpoch)
	fa, fb := sa.exportFiles(kindVulns), sb.exportFiles(kindVulns)
	if fa.rows == 0 || fa.rows != fb.rows || string(fa.data[0]) != string(fb.data[0]) || fa.names[0] != fb.names[0] {
		t.Fatal("the same seed and clock gave different exports")
	}
}
