// Package storetest is the conformance suite that every mdebridge.Store
// implementation must pass. A store package calls Run from its own tests.
package storetest

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mdebridge/mdebridge"
)

// Opener returns a fresh, empty store whose clock is now (a pointer the test
// may move), closed when the test ends.
type Opener func(t *testing.T, now *time.Time) mdebridge.Store

// Run runs the suite.
func Run(t *testing.T, open Opener) {
	tests := map[string]func(*testing.T, Opener){
		"UpsertAndFind":          testUpsertAndFind,
		"Filters":                testFilters,
		"Generations":            testGenerations,
		"FindMachine":            testFindMachine,
		"UnchangedIsOnlyStamped": testUnchangedIsOnlyStamped,
		"RunLease":               testRunLease,
		"RunSteps":               testRunSteps,
		"Paging":                 testPaging,
		"MachineActions":         testMachineActions,
		"Indicators":             testIndicators,
		"Audit":                  testAudit,
		"BulkJobs":               testBulkJobs,

		// logonusers.go
		"LogonUserEdgePerMachine":  testEdgePerMachine,
		"LogonUserGenerations":     testLogonUserGenerations,
		"LogonUserSpan":            testLogonUserSpan,
		"ReplaceMachineLogonUsers": testReplaceMachineLogonUsers,
		"LogonUserBadInput":        testLogonUserBadInput,
		"LiveMachineIDs":           testLiveMachineIDs,
	}
	maps.Copy(tests, exposureTests) // exposure.go
	maps.Copy(tests, incidentTests) // incidents.go
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) { fn(t, open) })
	}
}

var t0 = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

// Machine builds a machine with raw JSON that reflects its fields.
func Machine(i int, mods ...func(*mdebridge.Machine)) mdebridge.Machine {
	m := mdebridge.Machine{
		ID:              fmt.Sprintf("%040x", i+1),
		ComputerDNSName: fmt.Sprintf("host-%04d.contoso.local", i),
		OSPlatform:      []string{"Windows11", "WindowsServer2022", "Linux"}[i%3],
		HealthStatus:    []string{"Active", "Inactive"}[i%2],
		RiskScore:       []string{"Low", "Medium", "High"}[i%3],
		ExposureLevel:   []string{"Low", "Medium", "High"}[(i+1)%3],
		RBACGroupID:     int64(i % 4),
		RBACGroupName:   fmt.Sprintf("group-%d", i%4),
		LastIPAddress:   fmt.Sprintf("10.0.%d.%d", i/250, i%250+1),
		FirstSeen:       t0.Add(-time.Duration(i) * time.Hour),
		LastSeen:        t0,
		MachineTags:     []string{fmt.Sprintf("tag-%d", i%5)},
		IPAddresses: []mdebridge.IPAddress{
			{IPAddress: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), MACAddress: fmt.Sprintf("0050569A%04X", i), Type: "Ethernet", OperationalStatus: "Up"},
			{IPAddress: "127.0.0.1", Type: "SoftwareLoopback", OperationalStatus: "Up"},
		},
	}
	if i%5 == 0 {
		m.VMMetadata = &mdebridge.VMMetadata{VMID: fmt.Sprintf("vm-%d", i), CloudProvider: "Azure", SubscriptionID: "sub"}
	}
	for _, f := range mods {
		f(&m)
	}
	m.Raw = []byte(fmt.Sprintf(`{"id":%q,"computerDnsName":%q,"osPlatform":%q,"healthStatus":%q,"machineTags":[%q]}`,
		m.ID, m.ComputerDNSName, m.OSPlatform, m.HealthStatus, strings.Join(m.MachineTags, `","`)))
	return m
}

func machines(n int) []mdebridge.Machine {
	out := make([]mdebridge.Machine, n)
	for i := range out {
		out[i] = Machine(i)
	}
	return out
}

func openAt(t *testing.T, open Opener) (mdebridge.Store, *time.Time) {
	now := t0
	return open(t, &now), &now
}

func mustUpsert(t *testing.T, s mdebridge.Store, run int64, ms []mdebridge.Machine) {
	t.Helper()
	if err := s.UpsertMachines(t.Context(), run, ms); err != nil {
		t.Fatal(err)
	}
}

var ignoreBookkeeping = cmpopts.IgnoreFields(mdebridge.Machine{}, "SyncedAt", "RetiredAt")

func testUpsertAndFind(t *testing.T, open Opener) {
	s, _ := openAt(t, open)
	want := machines(12)
	mustUpsert(t, s, 1, want)
	got, total, err := s.FindMachines(t.Context(), mdebridge.MachineFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if total != 12 || len(got) != 12 {
		t.Fatalf("got %d of %d machines, want 12", len(got), total)
	}
	byID := map[string]mdebridge.Machine{}
	for _, m := range got {
		byID[m.ID] = m
		if m.SyncedAt.IsZero() {
			t.Errorf("%s: SyncedAt not set", m.ID)
		}
	}
	for _, w := range want {
		w.IPAddresses = w.IPAddresses[:1] // loopback is kept in Raw only
		if diff := cmp.Diff(w, byID[w.ID], ignoreBookkeeping, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("machine %s round trip (-want +got):\n%s", w.ID, diff)
		}
	}
	c, err := s.Counts(t.Context())
	if err != nil || c["machines"] != 12 {
		t.Errorf("counts %v, %v", c, err)
	}
}

func testFilters(t *testing.T, open Opener) {
	s, _ := openAt(t, open)
	mustUpsert(t, s, 1, machines(30))
	tests := []struct {
		f    mdebridge.MachineFilter
		want int
	}{
		{mdebridge.MachineFilter{OSPlatform: "windows11"}, 10},
		{mdebridge.MachineFilter{HealthStatus: "Inactive"}, 15},
		{mdebridge.MachineFilter{RiskScore: "high"}, 10},
		{mdebridge.MachineFilter{ExposureLevel: "Low"}, 10},
		{mdebridge.MachineFilter{Tag: "TAG-1"}, 6},
		{mdebridge.MachineFilter{RBACGroup: "group-2"}, 7},
		{mdebridge.MachineFilter{RBACGroup: "2"}, 7},
		{mdebridge.MachineFilter{NamePrefix: "host-001"}, 10},
		{mdebridge.MachineFilter{NamePrefix: "host_"}, 0},
		{mdebridge.MachineFilter{OSPlatform: "Linux", HealthStatus: "Active"}, 5},
	}
	for _, tt := range tests {
		_, total, err := s.FindMachines(t.Context(), tt.f)
		if err != nil {
			t.Fatal(err)
		}
		if total != tt.want {
			t.Errorf("%+v: %d machines, want %d", tt.f, total, tt.want)
		}
	}
}

func testGenerations(t *testing.T, open Opener) {
	s, now := openAt(t, open)
	mustUpsert(t, s, 1, machines(10))
	// Run 2 sees machines 0..7 in two pages and fails before retiring:
	// nothing may be retired.
	all := machines(10)
	mustUpsert(t, s, 2, all[:4])
	mustUpsert(t, s, 2, all[4:8])
	if _, total, _ := s.FindMachines(t.Context(), mdebridge.MachineFilter{}); total != 10 {
		t.Fatalf("%d live machines after a partial run, want 10", total)
	}
	// Run 3 completes without machines 8 and 9.
	*now = now.Add(time.Hour)
	mustUpsert(t, s, 3, all[:8])
	n, err := s.RetireMachinesNotSeen(t.Context(), 3)
	if err != nil || n != 2 {
		t.Fatalf("retired %d (%v), want 2", n, err)
	}
	if _, total, _ := s.FindMachines(t.Context(), mdebridge.MachineFilter{}); total != 8 {
		t.Fatalf("%d live machines, want 8", total)
	}
	got, total, _ := s.FindMachines(t.Context(), mdebridge.MachineFilter{IncludeRetired: true})
	if total != 10 {
		t.Fatalf("retired machines lost: %d", total)
	}
	for _, m := range got {
		if (m.ID == all[8].ID || m.ID == all[9].ID) != (m.RetiredAt != nil) {
			t.Errorf("%s retired at %v", m.ID, m.RetiredAt)
		}
	}
	if c, _ := s.Counts(t.Context()); c["machines_retired"] != 2 {
		t.Errorf("counts %v", c)
	}
	// A machine that comes back is live again.
	mustUpsert(t, s, 4, all)
	if n, _ := s.RetireMachinesNotSeen(t.Context(), 4); n != 0 {
		t.Errorf("retired %d on a full pass", n)
	}
	if _, total, _ := s.FindMachines(t.Context(), mdebridge.MachineFilter{}); total != 10 {
		t.Errorf("%d live machines after they came back, want 10", total)
	}
}

func testFindMachine(t *testing.T, open Opener) {
	s, _ := openAt(t, open)
	ms := machines(5)
	ms = append(ms,
		Machine(100, func(m *mdebridge.Machine) { m.ComputerDNSName = "dup.corp.contoso.com" }),
		Machine(101, func(m *mdebridge.Machine) { m.ComputerDNSName = "dup.lab.contoso.com" }),
		Machine(102, func(m *mdebridge.Machine) { m.LastIPAddress = "10.0.0.2"; m.ComputerDNSName = "sharesip" }),
	)
	mustUpsert(t, s, 1, ms)
	for key, wantID := range map[string]string{
		ms[0].ID:                    ms[0].ID,
		strings.ToUpper(ms[1].ID):   ms[1].ID,
		"HOST-0002.contoso.local":   ms[2].ID,
		"host-0003":                 ms[3].ID,
		"10.0.0.5":                  ms[4].ID,
		"dup.lab.contoso.com":       ms[6].ID,
		"sharesip.":                 "",
		"127.0.0.1":                 "", // loopback identifies no machine
		"no-such-host.contoso.test": "",
	} {
		m, err := s.FindMachine(t.Context(), key)
		if wantID == "" {
			var nf *mdebridge.NotFoundError
			if !errors.As(err, &nf) || !errors.Is(err, mdebridge.ErrNotFound) {
				t.Errorf("%q: got %v, %v; want not found", key, m, err)
			}
			continue
		}
		if err != nil || m.ID != wantID {
			t.Errorf("%q: got %v, %v; want %s", key, m, err, wantID)
			continue
		}
		if len(m.IPAddresses) != 1 {
			t.Errorf("%q: %d IPs, want the one that is not loopback", key, len(m.IPAddresses))
		}
	}
	var amb *mdebridge.AmbiguousError
	if _, err := s.FindMachine(t.Context(), "dup"); !errors.As(err, &amb) || len(amb.Candidates) != 2 {
		t.Errorf("dup: got %v, want ambiguous with 2 candidates", err)
	}
	if _, err := s.FindMachine(t.Context(), "10.0.0.2"); !errors.As(err, &amb) {
		t.Errorf("shared IP: got %v, want ambiguous", err)
	}
	var nf *mdebridge.NotFoundError
	if _, err := s.FindMachine(t.Context(), "host-9"); !errors.As(err, &nf) || len(nf.Near) == 0 {
		t.Errorf("near matches: got %v", err)
	}
}

func testUnchangedIsOnlyStamped(t *testing.T, open Opener) {
	s, now := openAt(t, open)
	mustUpsert(t, s, 1, machines(3))
	*now = now.Add(time.Hour)
	mustUpsert(t, s, 2, machines(3))
	changed := Machine(1, func(m *mdebridge.Machine) { m.HealthStatus = "Inactive"; m.MachineTags = []string{"a", "b"} })
	mustUpsert(t, s, 2, []mdebridge.Machine{changed})
	if n, _ := s.RetireMachinesNotSeen(t.Context(), 2); n != 0 {
		t.Fatalf("retired %d", n)
	}
	m, err := s.FindMachine(t.Context(), changed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !m.SyncedAt.Equal(*now) || m.HealthStatus != "Inactive" || len(m.MachineTags) != 2 {
		t.Errorf("got %+v", m)
	}
	m0, _ := s.FindMachine(t.Context(), Machine(0).ID)
	if !m0.SyncedAt.Equal(*now) {
		t.Errorf("unchanged machine not stamped: synced %v", m0.SyncedAt)
	}
}

func testRunLease(t *testing.T, open Opener) {
	s, now := openAt(t, open)
	never := func(mdebridge.SyncRun) bool { return false }
	always := func(mdebridge.SyncRun) bool { return true }
	a := &mdebridge.SyncRun{Trigger: "cli", Owner: "host:1"}
	if err := s.StartRun(t.Context(), a, never); err != nil || a.ID == 0 {
		t.Fatalf("start: %v id %d", err, a.ID)
	}
	b := &mdebridge.SyncRun{Trigger: "schedule", Owner: "host:2"}
	var inProgress *mdebridge.RunInProgressError
	if err := s.StartRun(t.Context(), b, never); !errors.As(err, &inProgress) || inProgress.Run.ID != a.ID {
		t.Fatalf("second start: %v", err)
	}
	*now = now.Add(time.Minute)
	if err := s.Heartbeat(t.Context(), a.ID); err != nil {
		t.Fatal(err)
	}
	var seen mdebridge.SyncRun
	if err := s.StartRun(t.Context(), b, func(r mdebridge.SyncRun) bool { seen = r; return true }); err != nil {
		t.Fatal(err)
	}
	if !seen.HeartbeatAt.Equal(*now) || seen.Owner != "host:1" {
		t.Errorf("stale check saw %+v", seen)
	}
	runs, err := s.LastRuns(t.Context(), 5)
	if err != nil || len(runs) != 2 {
		t.Fatalf("runs %v %v", runs, err)
	}
	if runs[0].ID != b.ID || runs[0].Status != mdebridge.StatusRunning || runs[1].Status != mdebridge.StatusInterrupted {
		t.Errorf("runs: %+v", runs)
	}
	b.Status = mdebridge.StatusSucceeded
	if err := s.FinishRun(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	c := &mdebridge.SyncRun{Trigger: "cli"}
	if err := s.StartRun(t.Context(), c, always); err != nil {
		t.Fatalf("start after finish: %v", err)
	}
}

func testRunSteps(t *testing.T, open Opener) {
	s, now := openAt(t, open)
	run := &mdebridge.SyncRun{Trigger: "cli", Full: true}
	if err := s.StartRun(t.Context(), run, func(mdebridge.SyncRun) bool { return true }); err != nil {
		t.Fatal(err)
	}
	step := mdebridge.StepResult{Name: "machines", Status: mdebridge.StatusRunning, StartedAt: *now}
	if err := s.SaveStep(t.Context(), run.ID, step); err != nil {
		t.Fatal(err)
	}
	step.Status, step.Items, step.APICalls, step.CallsByAPI, step.DurationMS, step.Checkpoint = mdebridge.StatusSucceeded, 25000, 3, map[string]int{"GET /api/machines": 3}, 1500, "cp-1"
	if err := s.SaveStep(t.Context(), run.ID, step); err != nil {
		t.Fatal(err)
	}
	failed := mdebridge.StepResult{Name: "other", Status: mdebridge.StatusFailed, Error: "boom", StartedAt: *now}
	if err := s.SaveStep(t.Context(), run.ID, failed); err != nil {
		t.Fatal(err)
	}
	run.Status = mdebridge.StatusPartial
	if err := s.FinishRun(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	runs, err := s.LastRuns(t.Context(), 1)
	if err != nil || len(runs) != 1 {
		t.Fatal(runs, err)
	}
	got := runs[0]
	if got.Status != mdebridge.StatusPartial || !got.Full || got.FinishedAt == nil || len(got.Steps) != 2 {
		t.Fatalf("run %+v", got)
	}
	if diff := cmp.Diff(step, got.Steps[0]); diff != "" {
		t.Errorf("step (-want +got):\n%s", diff)
	}
	// A later run without a checkpoint leaves the last one readable.
	run2 := &mdebridge.SyncRun{Trigger: "cli"}
	s.StartRun(t.Context(), run2, func(mdebridge.SyncRun) bool { return true })
	s.SaveStep(t.Context(), run2.ID, mdebridge.StepResult{Name: "machines", Status: mdebridge.StatusSucceeded, Items: 7, StartedAt: *now})
	if cp, err := s.LastCheckpoint(t.Context(), "machines"); err != nil || cp != "cp-1" {
		t.Errorf("checkpoint %q %v", cp, err)
	}
	last, err := s.LastStepResults(t.Context())
	if err != nil || len(last) != 2 {
		t.Fatalf("last steps %v %v", last, err)
	}
	if last[0].Name != "machines" || last[0].Items != 7 || last[1].Name != "other" || last[1].Error != "boom" {
		t.Errorf("last steps %+v", last)
	}
}

func testPaging(t *testing.T, open Opener) {
	s, _ := openAt(t, open)
	mustUpsert(t, s, 1, machines(25))
	var ids []string
	for off := 0; ; off += 10 {
		page, total, err := s.FindMachines(t.Context(), mdebridge.MachineFilter{Offset: off, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if total != 25 {
			t.Fatalf("total %d", total)
		}
		for _, m := range page {
			ids = append(ids, m.ID)
			if len(m.IPAddresses) != 1 {
				t.Errorf("%s has %d IPs in a page", m.ID, len(m.IPAddresses))
			}
		}
		if len(page) < 10 {
			break
		}
	}
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	if len(ids) != 25 || len(seen) != 25 {
		t.Errorf("paged %d ids, %d distinct", len(ids), len(seen))
	}
}
