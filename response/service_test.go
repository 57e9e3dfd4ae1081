package response_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/emulator"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const getAction = "GET /api/machineactions/{id}"

// isolate NAME --wait: Succeeded, within a second of the emulator finishing,
// with at most 1 + T/2 status calls for an action of T seconds.
func TestIsolateWaitWithinBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, setup{})
		h.syncActions() // the history teaches how long isolations take
		m := h.machine(onlineWindows)
		start := time.Now()
		rep, err := h.svc.Respond(t.Context(), mdebridge.ActionRequest{Operation: mdebridge.OpIsolate, Targets: []string{m.ComputerDNSName},
			Comment: "contain", Actor: "alice", Wait: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		o := rep.Outcomes[0]
		if o.Result != mdebridge.AuditCreated || o.Action.Status != mdebridge.ActionStatusSucceeded || o.MachineID != m.ID || o.Action.Scope != "Full" {
			t.Fatalf("outcome %+v", o)
		}
		took := time.Since(start)
		T := 20 * time.Second // the default pending 5 s + running 15 s
		if late := o.Action.LastUpdateTime.Add(time.Second); time.Now().After(late) {
			t.Errorf("returned %v after the action finished", time.Since(o.Action.LastUpdateTime))
		}
		if n, budget := h.calls(getAction), 1+int(T.Seconds())/2; n > budget {
			t.Errorf("%d status calls for a %v action, budget %d", n, T, budget)
		}
		if took < T {
			t.Errorf("returned after %v, before the action could end", took)
		}
		es := h.audit(mdebridge.AuditFilter{RequestID: rep.RequestID})
		if got := results(es); got != "requested,created,completed" || es[0].Status != "Succeeded" || es[0].Actor != "alice" || es[0].Comment != "contain" || es[0].ActionID != o.Action.ID {
			t.Errorf("audit %s %+v", got, es[0])
		}
		if st, _ := h.emu.MachineResponseState(m.ID); st.Isolation != "Full" {
			t.Errorf("machine not isolated: %+v", st)
		}
		stored, err := h.store.GetMachineAction(t.Context(), o.Action.ID)
		if err != nil || stored.Status != mdebridge.ActionStatusSucceeded {
			t.Errorf("stored action: %v %+v", err, stored)
		}
	})
}

// Without history the wait still polls inside the budget, every two seconds.
func TestWaitWithoutHistoryAndFreshIDNotFound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, setup{})
		h.behaviour(func(b *emulator.ActionBehaviour) { b.VisibleAfterMs = 4000 }) // a fresh id 404s for 4 s
		m := h.machine(onlineWindows)
		rep, err := h.svc.Respond(t.Context(), mdebridge.ActionRequest{Operation: mdebridge.OpScan, Targets: []string{m.ID},
			Comment: "scan", Wait: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if o := rep.Outcomes[0]; o.Action.Status != mdebridge.ActionStatusSucceeded || o.Action.Scope != "Quick" {
			t.Fatalf("outcome %+v", o.Action)
		}
		if n := h.calls(getAction); n > 11 {
			t.Errorf("%d status calls for a 20 s action", n)
		}
	})
}

// Three requests at once for one machine make one action: the first
// creates it, the others join it.
func TestConcurrentIsolatesMakeOneAction(t *testing.T) {
	for _, dup := range []string{emulator.DuplicatesReturnPending, emulator.DuplicatesReject} {
		t.Run(dup, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, setup{})
				h.behaviour(func(b *emulator.ActionBehaviour) { b.Duplicates = dup })
				m := h.machine(onlineWindows)
				var wg sync.WaitGroup
				outcomes := make([]mdebridge.ActionOutcome, 3)
				for i := range outcomes {
					wg.Go(func() {
						rep, err := h.svc.Respond(t.Context(), mdebridge.ActionRequest{Operation: mdebridge.OpIsolate, Targets: []string{m.ComputerDNSName},
							Comment: "contain", Actor: "analyst-" + string(rune('a'+i))}, nil)
						if err != nil {
							t.Error(err)
							return
						}
						outcomes[i] = rep.Outcomes[0]
					})
				}
				wg.Wait()
				if n := h.emu.MachineActionCount(m.ID, "Isolate"); n != 1 {
					t.Fatalf("%d isolate actions on the machine, want 1", n)
				}
				created := 0
				for _, o := range outcomes {
					if o.Action == nil || o.Action.ID != outcomes[0].Action.ID {
						t.Fatalf("outcomes %+v", outcomes)
					}
					if o.Result == mdebridge.AuditCreated {
						created++
					}
				}
				if created != 1 {
					t.Errorf("%d outcomes say created", created)
				}
				// Later, one more: the pending one is joined without a POST.
				time.Sleep(2 * time.Second) // a fresh action is not listed for a second
				posts := h.calls("POST /api/machines/{id}/isolate")
				rep, err := h.svc.Respond(t.Context(), mdebridge.ActionRequest{Operation: mdebridge.OpIsolate, Targets: []string{m.ID}, Comment: "again"}, nil)
				if err != nil || rep.Outcomes[0].Result != mdebridge.AuditJoined || h.calls("POST /api/machines/{id}/isolate") != posts {
					t.Errorf("a fourth request: %v %+v", err, rep)
				}
			})
		})
	}
}

// An action on a machine that never picks it up ends TimeOut, and TimeOut
// is final.
func TestTimeOutIsFinal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, setup{})
		h.behaviour(func(b *emulator.ActionBehaviour) { b.TimeoutMs = int64(3 * time.Minute / time.Millisecond) })
		m := h.machine(func(m mdebridge.Machine) bool { return m.HealthStatus == "Inactive" })
		rep, err := h.svc.Respond(t.Context(), mdebridge.ActionRequest{Operation: mdebridge.OpScan, Targets: []string{m.ID},
			Comment: "scan", Wait: true, Timeout: 10 * time.Minute}, nil)
		if err != nil {
			t.Fatal(err)
		}
		o := rep.Outcomes[0]
		if o.Action.Status != mdebridge.ActionStatusTimeOut || o.StillRunning {
			t.Fatalf("outcome %+v", o)
		}
		if n := h.calls(getAction); n > 1+180/2 {
			t.Errorf("%d status calls for a 3-minute wait", n)
		}
		if rep.Failed() != 1 {
			t.Errorf("a TimeOut counts as failed: %d", rep.Failed())
		}
	})
}

// A wait that ends before the action says so and leaves the action running.
func TestWaitTimeoutLeavesActionRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, setup{})
		m := h.machine(func(m mdebridge.Machine) bool { return m.HealthStatus == "Inactive" })
		rep, err := h.svc.Respond(t.Context(), mdebridge.ActionRequest{Operation: mdebridge.OpScan, Targets: []string{m.ID},
			Comment: "scan", Wait: true, Timeout: time.Minute}, nil)
		if err != nil || !rep.Outcomes[0].StillRunning || rep.Outcomes[0].Action.Status != mdebridge.ActionStatusPending {
			t.Fatalf("%v %+v", err, rep.Outcomes[0])
		}
	})
}

// Releasing a machine while its isolation is still pending cancels the
// isolation first, so that it cannot complete after the release.
func TestUndoCancelsPendingOpposite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, setup{})
		m := h.machine(onlineWindows)
		iso, err := h.svc.Respond(t.Context(), mdebridge.ActionRequest{Operation: mdebridge.OpIsolate, Targets: []string{m.ID}, Comment: "contain"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		rel, err := h.svc.Respond(t.Context(), mdebridge.ActionRequest{Operation: mdebridge.OpUnisolate, Targets: []string{m.ID},
			Comment: "false positive", Wait: true}, nil)
		if err != nil || rel.Outcomes[0].Action.Status != mdebridge.ActionStatusSucceeded {
			t.Fatalf("%v %+v", err, rel)
		}
		got, _ := h.client.GetMachineAction(t.Context(), iso.Outcomes[0].Action.ID)
		if got.Status != mdebridge.ActionStatusCancelled {
			t.Errorf("the pending isolation is %s", got.Status)
		}
		time.Sleep(time.Minute)
		if st, _ := h.emu.MachineResponseState(m.ID); st.Isolation != "" {
			t.Errorf("the machine ended isolated: %+v", st)
		}
	})
}

func TestBadInputsSendNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, setup{machines: 200})
		var twin string
		seen := map[string]bool{}
		ms, _, _ := h.store.FindMachines(t.Context(), mdebridge.MachineFilter{})
		for _, m := range ms {
			host, _, _ := strings.Cut(m.ComputerDNSName, ".")
			if seen[host] {
				twin = host
			}
			seen[host] = true
		}
		tests := []struct {
			name string
			req  mdebridge.ActionRequest
			want func(error) bool
		}{
			{"no comment", mdebridge.ActionRequest{Operation: mdebridge.OpIsolate, Targets: []string{ms[0].ID}, Comment: "  "}, isUsage},
			{"unknown host", mdebridge.ActionRequest{Operation: mdebridge.OpIsolate, Targets: []string{ms[0].ComputerDNSName + "-nope"}, Comment: "x"},
				func(err error) bool {
					var nf *mdebridge.NotFoundError
					return errors.As(err, &nf) && len(nf.Near) > 0
				}},
			{"unknown IP", mdebridge.ActionRequest{Operation: mdebridge.OpScan, Targets: []string{"203.0.113.250"}, Comment: "x"}, isNotFound},
			{"bad scan type", mdebridge.ActionRequest{Operation: mdebridge.OpScan, Targets: []string{ms[0].ID}, Comment: "x", ScanType: "deep"}, isUsage},
			{"bad sha1", mdebridge.ActionRequest{Operation: mdebridge.OpQuarantineFile, Targets: []string{ms[0].ID}, Comment: "x", Sha1: "abc"}, isUsage},
			{"no commands", mdebridge.ActionRequest{Operation: mdebridge.OpLiveResponse, Targets: []string{ms[0].ID}, Comment: "x"}, isUsage},
			{"download without wait", mdebridge.ActionRequest{Operation: mdebridge.OpCollect, Targets: []string{ms[0].ID}, Comment: "x", DownloadDir: t.TempDir()}, isUsage},
			{"no target", mdebridge.ActionRequest{Operation: mdebridge.OpScan, Comment: "x"}, isUsage},
			{"empty tag", mdebridge.ActionRequest{Operation: mdebridge.OpScan, Tag: "no-such-tag", Comment: "x"}, func(err error) bool { return err != nil }},
			{"one good one bad", mdebridge.ActionRequest{Operation: mdebridge.OpScan, Targets: []string{ms[0].ID, "nope-nope"}, Comment: "x"}, isNotFound},
		}
		if twin != "" {
			tests = append(tests, struct {
				name string
				req  mdebridge.ActionRequest
				want func(error) bool
			}{"ambiguous host", mdebridge.ActionRequest{Operation: mdebridge.OpIsolate, Targets: []string{twin}, Comment: "x"}, func(err error) bool {
				var amb *mdebridge.AmbiguousError
				return errors.As(err, &amb) && len(amb.Candidates) == 2
			}})
		}
		for _, tt := range tests {
			if _, err := h.svc.Respond(t.Context(), tt.req, nil); !tt.want(err) {
				t.Errorf("%s: %v", tt.name, err)
			}
		}
		for k, n := range h.emu.Stats().Calls {
			if strings.HasPrefix(k, "POST /api/") && n > 0 {
				t.Errorf("%s was called %d times", k, n)
			}
		}
		if es := h.audit(mdebridge.AuditFilter{}); len(es) != 0 {
			t.Errorf("the audit log has %d entries for requests that were refused", len(es))
		}
	})
}

func isUsage(err error) bool {
	var u *mdebridge.InputError
	return errors.As(err, &u)
}

func isNotFound(err error) bool { return errors.Is(err, mdebridge.ErrNotFound) }

func TestDryRunAndMissingPermission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, setup{roles: []string{"Machine.Read.All"}})
		m := h.machine(onlineWindows)
		rep, err := h.svc.Respond(t.Context(), mdebridge.ActionRequest{Operation: mdebridge.OpOffboard, Targets: []string{m.ID}, Comment: "bye", DryRun: true}, nil)
		if err != nil || rep.Outcomes[0].Result != mdebridge.AuditDryRun || h.calls("POST /api/machines/{id}/offboard") != 0 {
			t.Fatalf("dry run: %v %+v", err, rep)
		}
		_, err = h.svc.Respond(t.Context(), mdebridge.ActionRequest{Operation: mdebridge.OpOffboard, Targets: []string{m.ID}, Comment: "bye"}, nil)
		var pe *mdebridge.PermissionError
		if !errors.As(err, &pe) || pe.Missing[0] != "Machine.Offboard" {
			t.Fatalf("missing permission: %v", err)
		}
		es := h.audit(mdebridge.AuditFilter{Operation: mdebridge.OpOffboard})
		if got := results(es); got != "dry-run,requested,failed" || !strings.Contains(es[0].Error, "Machine.Offboard") {
			t.Errorf("audit: %s %+v", got, es[0])
		}
	})
}

// collect --wait --download and live-response --wait --download save the
// package and the results with their SHA-256.
func TestDownloadsWithChecksums(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, setup{})
		m := h.machine(onlineWindows)
		dir := t.TempDir()
		rep, err := h.svc.Respond(t.Context(), mdebridge.ActionRequest{Operation: mdebridge.OpCollect, Targets: []string{m.ID}, Comment: "forensics",
			Wait: true, DownloadDir: dir}, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkDownloads(t, rep.Outcomes[0].Downloads, 1)
		rep, err = h.svc.Respond(t.Context(), mdebridge.ActionRequest{Operation: mdebridge.OpLiveResponse, Targets: []string{m.ID}, Comment: "triage",
			Wait: true, DownloadDir: dir, Commands: []mdebridge.LiveResponseSpec{
				{Type: "RunScript", Params: []mdebridge.LiveResponseKV{{Key: "ScriptName", Value: "triage.ps1"}}},
				{Type: "PutFile", Params: []mdebridge.LiveResponseKV{{Key: "FileName", Value: "cleanup-tool.exe"}}},
				{Type: "GetFile", Params: []mdebridge.LiveResponseKV{{Key: "Path", Value: `C:\Windows\Temp\..\evil.dll`}}},
			}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkDownloads(t, rep.Outcomes[0].Downloads, 2)
		if d := rep.Outcomes[0].Downloads; !strings.HasSuffix(d[0].Path, "-0-runscript.json") || !strings.HasSuffix(d[1].Path, "-2-getfile-evil.dll") {
			t.Errorf("names: %s, %s", d[0].Path, d[1].Path)
		}
		if es := h.audit(mdebridge.AuditFilter{Operation: mdebridge.OpLiveResponse + ".download"}); len(es) != 2 || !strings.Contains(string(es[0].Details), "sha256") {
			t.Errorf("downloads are not in the audit log: %+v", es)
		}
	})
}

func checkDownloads(t *testing.T, ds []mdebridge.Download, n int) {
	t.Helper()
	if len(ds) != n {
		t.Fatalf("%d downloads, want %d", len(ds), n)
	}
	for _, d := range ds {
		data, err := os.ReadFile(d.Path)
		if err != nil || int64(len(data)) != d.Bytes || d.Bytes == 0 {
			t.Fatalf("%s: %v, %d bytes, want %d", d.Path, err, len(data), d.Bytes)
		}
		sum := sha256.Sum256(data)
		side, _ := os.ReadFile(d.Path + ".sha256")
		if hex.EncodeToString(sum[:]) != d.SHA256 || string(side) != d.SHA256+"  "+filepath.Base(d.Path)+"\n" {
			t.Errorf("%s: checksum %s, sidecar %q", d.Path, d.SHA256, side)
		}
	}
}

func TestCancelActionAndSynchronousOperations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, setup{})
		m := h.machine(onlineWindows)
		rep, err := h.svc.Respond(t.Context(), mdebridge.ActionRequest{Operation: mdebridge.OpRestrict, Targets: []string{m.ID}, Comment: "restrict"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.svc.CancelAction(t.Context(), rep.Outcomes[0].Action.ID, "", "bob"); !isUsage(err) {
			t.Errorf("cancel without a comment: %v", err)
		}
		a, err := h.svc.CancelAction(t.Context(), rep.Outcomes[0].Action.ID, "changed my mind", "bob")
		if err != nil || a.Status != mdebridge.ActionStatusCancelled {
			t.Fatalf("cancel: %v %+v", err, a)
		}
		if es := h.audit(mdebridge.AuditFilter{Operation: "actions.cancel"}); len(es) != 2 || es[0].Status != "Cancelled" || es[0].TargetID != m.ID {
			t.Errorf("cancel audit: %+v", es)
		}
		rep, err = h.svc.Respond(t.Context(), mdebridge.ActionRequest{Operation: mdebridge.OpTag, Targets: []string{m.ID}, Comment: "label", TagValue: "Quarantined"}, nil)
		if err != nil || rep.Outcomes[0].Machine == nil || !contains(rep.Outcomes[0].Machine.MachineTags, "Quarantined") {
			t.Fatalf("tag: %v %+v", err, rep)
		}
		rep, err = h.svc.Respond(t.Context(), mdebridge.ActionRequest{Operation: mdebridge.OpInvestigate, Targets: []string{m.ID}, Comment: "look"}, nil)
		if err != nil || rep.Outcomes[0].Investigation == nil || rep.Outcomes[0].Investigation.State != "Running" {
			t.Fatalf("investigate: %v %+v", err, rep)
		}
	})
}

func contains(ss []string, s string) bool {
	for _, v := range ss {
		if v == s {
			return true
		}
	}
	return false
}
