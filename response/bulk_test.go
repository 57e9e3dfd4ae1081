package response_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/mde"
	"github.com/mdebridge/mdebridge/response"
)

const postScan = "POST /api/machines/{id}/runAntiVirusScan"

// A bulk scan runs at the documented rate without a 429, stops when told,
// and resumes without sending anything twice — also for a target whose
// request reached MDE but whose answer was never recorded.
func TestBulkScanInterruptAndResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, setup{machines: 400})
		group := biggestGroup(t, h)
		ms, n, _ := h.store.FindMachines(t.Context(), mdebridge.MachineFilter{RBACGroup: group})
		if n < 120 {
			t.Fatalf("group %s has %d machines", group, n)
		}
		before := map[string]int{}
		for _, m := range ms {
			before[m.ID] = h.emu.MachineActionCount(m.ID, mdebridge.ActionScan)
		}
		ctx, cancel := context.WithCancel(t.Context())
		var last mdebridge.BulkProgress
		req := mdebridge.ActionRequest{Operation: mdebridge.OpScan, Group: group, Comment: "sweep", Actor: "alice", Concurrency: 4}
		start := time.Now()
		rep, err := h.svc.Respond(ctx, req, func(p mdebridge.BulkProgress) {
			last = p
			if p.Done == 50 {
				cancel()
			}
		})
		var ie *response.InterruptedError
		if !errors.As(err, &ie) || ie.JobID == "" || rep.JobID != ie.JobID {
			t.Fatalf("interrupted run: %v %+v", err, rep)
		}
		if last.Total != n || last.Done < 50 {
			t.Errorf("progress %+v", last)
		}
		job, err := h.store.GetBulkJob(t.Context(), ie.JobID)
		if err != nil || job.Status != mdebridge.BulkInterrupted {
			t.Fatalf("job: %v %+v", err, job)
		}
		// A target whose request MDE got but whose answer was lost: its action
		// even finished before the resume, so a second POST would make another.
		var lost mdebridge.BulkTarget
		for _, bt := range job.Targets {
			if bt.State == mdebridge.TargetPending {
				lost = bt
				break
			}
		}
		if _, err := h.client.RunAction(t.Context(), lost.MachineID, mdebridge.ActionScan, mde.ActionParams{Comment: "sweep", ScanType: "Quick"}); err != nil {
			t.Fatal(err)
		}
		lost.State = mdebridge.TargetSending
		if err := h.store.UpdateBulkTargets(t.Context(), ie.JobID, []mdebridge.BulkTarget{lost}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)

		rep, err = h.svc.Resume(t.Context(), ie.JobID, "bob", func(p mdebridge.BulkProgress) { last = p })
		if err != nil {
			t.Fatal(err)
		}
		if last.Done != n || last.Failed != 0 || len(rep.Outcomes) != n {
			t.Errorf("after resume: %+v, %d outcomes", last, len(rep.Outcomes))
		}
		for _, m := range ms {
			if got := h.emu.MachineActionCount(m.ID, mdebridge.ActionScan); got != before[m.ID]+1 {
				t.Errorf("%s has %d new scans, want 1", m.ComputerDNSName, got-before[m.ID])
			}
		}
		if st := h.emu.Stats(); st.Throttled != 0 || st.Calls[postScan] != n {
			t.Errorf("throttled %d, %d scan requests for %d machines (one of them sent by the test)", st.Throttled, st.Calls[postScan], n)
		}
		// 100 a minute: n requests take at least (n-100)/100 minutes.
		if took, least := time.Since(start), time.Duration(n-100)*time.Minute/100; took < least {
			t.Errorf("%d scans in %v: faster than the limit allows", n, took)
		}
		job, _ = h.store.GetBulkJob(t.Context(), ie.JobID)
		if job.Status != mdebridge.BulkDone || job.Counts[mdebridge.TargetIssued] != n {
			t.Errorf("job after resume: %s %v", job.Status, job.Counts)
		}
		if es := h.audit(mdebridge.AuditFilter{RequestID: ie.JobID, Actor: "bob"}); len(es) == 0 {
			t.Error("the resumed requests are not in the audit log under the resumer")
		}
	})
}

func biggestGroup(t *testing.T, h *harness) string {
	t.Helper()
	ms, _, _ := h.store.FindMachines(t.Context(), mdebridge.MachineFilter{})
	count := map[string]int{}
	best := ""
	for _, m := range ms {
		if m.RBACGroupName == "" {
			continue
		}
		count[m.RBACGroupName]++
		if count[m.RBACGroupName] > count[best] {
			best = m.RBACGroupName
		}
	}
	return best
}

// A bulk job whose credentials lack the permission stops at the first
// refusal instead of failing every target.
func TestBulkStopsOnMissingPermission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, setup{machines: 200, roles: []string{"Machine.Read.All"}})
		_, err := h.svc.Respond(t.Context(), mdebridge.ActionRequest{Operation: mdebridge.OpScan, Group: biggestGroup(t, h), Comment: "sweep", Concurrency: 2}, nil)
		var pe *mdebridge.PermissionError
		var ie *response.InterruptedError
		if !errors.As(err, &pe) || !errors.As(err, &ie) {
			t.Fatalf("got %v", err)
		}
		if n := h.calls(postScan); n > 2 {
			t.Errorf("%d requests after the first refusal", n)
		}
	})
}

// A bulk job with --wait polls the job's actions with one listing per round.
func TestBulkWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, setup{machines: 100})
		var ids []string
		ms, _, _ := h.store.FindMachines(t.Context(), mdebridge.MachineFilter{HealthStatus: "Active"})
		for _, m := range ms {
			if m.OnboardingStatus == "Onboarded" && len(ids) < 12 {
				ids = append(ids, m.ID)
			}
		}
		rep, err := h.svc.Respond(t.Context(), mdebridge.ActionRequest{Operation: mdebridge.OpScan, Targets: ids, Comment: "sweep", Wait: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range rep.Outcomes {
			if o.Action == nil || !mdebridge.ActionFinal(o.Action.Status) {
				t.Errorf("%s: %+v", o.ComputerName, o.Action)
			}
		}
		if n := h.calls(getAction); n != 0 {
			t.Errorf("%d single-action polls; a bulk wait lists", n)
		}
		if n := h.calls("GET /api/machineactions"); n > 12 {
			t.Errorf("%d listings for a bulk wait", n)
		}
	})
}
