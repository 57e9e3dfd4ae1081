package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mdebridge/mdebridge"
)

// Action builds a machine action with raw JSON that reflects its fields.
func Action(i int, mods ...func(*mdebridge.MachineAction)) mdebridge.MachineAction {
	a := mdebridge.MachineAction{
		ID:               fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
		Type:             []string{mdebridge.ActionIsolate, mdebridge.ActionScan, mdebridge.ActionLiveResponse}[i%3],
		Status:           mdebridge.ActionStatusSucceeded,
		MachineID:        fmt.Sprintf("%040x", i%4+1),
		ComputerDNSName:  fmt.Sprintf("host-%04d.contoso.local", i%4),
		Requestor:        "analyst@contoso.com",
		RequestorComment: "comment",
		CreationTime:     t0.Add(time.Duration(i) * time.Minute),
		LastUpdateTime:   t0.Add(time.Duration(i)*time.Minute + 20*time.Second),
		Commands:         []mdebridge.LiveResponseCommand{},
	}
	if a.Type == mdebridge.ActionLiveResponse {
		a.Commands = []mdebridge.LiveResponseCommand{{Index: 0, CommandStatus: "Completed", Errors: []string{},
			Command: mdebridge.LiveResponseSpec{Type: "RunScript", Params: []mdebridge.LiveResponseKV{{Key: "ScriptName", Value: "x.ps1"}}}}}
	}
	for _, f := range mods {
		f(&a)
	}
	a.Raw, _ = json.Marshal(a)
	return a
}

// Indicator builds an indicator with raw JSON.
func Indicator(i int, mods ...func(*mdebridge.Indicator)) mdebridge.Indicator {
	in := mdebridge.Indicator{
		ID:             fmt.Sprint(1000 + i),
		IndicatorValue: fmt.Sprintf("%040x", i+1),
		IndicatorType:  mdebridge.IndicatorFileSha1,
		Action:         []string{"Block", "Audit", "Allowed"}[i%3],
		Severity:       []string{"High", "Low"}[i%2],
		Title:          fmt.Sprintf("indicator %d", i),
		Description:    "d",
		CreationTime:   t0.Add(time.Duration(i) * time.Hour),
		RBACGroupNames: []string{"g1"},
	}
	for _, f := range mods {
		f(&in)
	}
	in.Raw, _ = json.Marshal(in)
	return in
}

func testMachineActions(t *testing.T, open Opener) {
	s, _ := openAt(t, open)
	ctx := t.Context()
	var all []mdebridge.MachineAction
	for i := range 12 {
		all = append(all, Action(i))
	}
	if err := s.UpsertMachineActions(ctx, all); err != nil {
		t.Fatal(err)
	}
	got, total, err := s.FindMachineActions(ctx, mdebridge.ActionFilter{MachineID: all[1].MachineID})
	if err != nil || total != 3 || len(got) != 3 || got[0].CreationTime.Before(got[2].CreationTime) {
		t.Fatalf("by machine: %v %d %+v", err, total, got)
	}
	if diff := cmp.Diff(all[9], got[0], cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if _, n, _ := s.FindMachineActions(ctx, mdebridge.ActionFilter{Type: "runantivirusscan"}); n != 4 {
		t.Errorf("by type: %d", n)
	}
	if page, n, _ := s.FindMachineActions(ctx, mdebridge.ActionFilter{Limit: 5, Offset: 10}); n != 12 || len(page) != 2 {
		t.Errorf("paging: %d of %d", len(page), n)
	}
	// An older update never replaces a newer one.
	newer := Action(0, func(a *mdebridge.MachineAction) {
		a.Status, a.LastUpdateTime = mdebridge.ActionStatusCancelled, t0.Add(time.Hour)
	})
	older := Action(0, func(a *mdebridge.MachineAction) { a.Status = mdebridge.ActionStatusRunning })
	if err := s.UpsertMachineActions(ctx, []mdebridge.MachineAction{newer}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertMachineActions(ctx, []mdebridge.MachineAction{older}); err != nil {
		t.Fatal(err)
	}
	a, err := s.GetMachineAction(ctx, newer.ID)
	if err != nil || a.Status != mdebridge.ActionStatusCancelled || string(a.Raw) != string(newer.Raw) {
		t.Errorf("newer kept: %v %+v", err, a)
	}
	if _, err := s.GetMachineAction(ctx, "00000000-0000-4000-8000-999999999999"); !errors.Is(err, mdebridge.ErrNotFound) {
		t.Errorf("unknown action: %v", err)
	}
	if c, _ := s.Counts(ctx); c["machine_actions"] != 12 {
		t.Errorf("counts: %v", c)
	}
}

func testIndicators(t *testing.T, open Opener) {
	s, now := openAt(t, open)
	ctx := t.Context()
	var all []mdebridge.Indicator
	for i := range 9 {
		all = append(all, Indicator(i))
	}
	start1 := *now
	*now = now.Add(time.Second)
	if err := s.UpsertIndicators(ctx, 1, all); err != nil {
		t.Fatal(err)
	}
	got, total, err := s.FindIndicators(ctx, mdebridge.IndicatorFilter{Action: "block"})
	if err != nil || total != 3 || len(got) != 3 {
		t.Fatalf("by action: %v %d", err, total)
	}
	if diff := cmp.Diff(all[6], got[0], cmpopts.IgnoreFields(mdebridge.Indicator{}, "SyncedAt"), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if n, _ := s.RetireIndicatorsNotSeen(ctx, 1, start1); n != 0 {
		t.Errorf("retired %d after a pass that saw all", n)
	}
	// Run 2 starts, a push lands meanwhile, run 2 sees all but two.
	start2 := now.Add(time.Minute)
	*now = start2.Add(time.Second)
	pushed := Indicator(50)
	if err := s.UpsertIndicators(ctx, 0, []mdebridge.Indicator{pushed}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertIndicators(ctx, 2, all[2:]); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RetireIndicatorsNotSeen(ctx, 2, start2); err != nil || n != 2 {
		t.Errorf("retired %d, want the 2 run 2 did not see (and not the pushed one): %v", n, err)
	}
	in, err := s.FindIndicator(ctx, pushed.IndicatorValue)
	if err != nil || in.ID != pushed.ID {
		t.Errorf("pushed indicator: %v %+v", err, in)
	}
	if _, err := s.FindIndicator(ctx, all[0].ID); !errors.Is(err, mdebridge.ErrNotFound) {
		t.Errorf("retired indicator found: %v", err)
	}
	if _, n, _ := s.FindIndicators(ctx, mdebridge.IndicatorFilter{IncludeRetired: true}); n != 10 {
		t.Errorf("with retired: %d", n)
	}
	if err := s.RetireIndicators(ctx, []string{pushed.ID}); err != nil {
		t.Fatal(err)
	}
	if _, n, _ := s.FindIndicators(ctx, mdebridge.IndicatorFilter{Value: "0000000000"}); n != 7 {
		t.Errorf("live after a delete: %d", n)
	}
	// Two live indicators with one value (a hash pushed as two types).
	twin := Indicator(60, func(in *mdebridge.Indicator) {
		in.IndicatorValue, in.IndicatorType = all[5].IndicatorValue, mdebridge.IndicatorCertificate
	})
	s.UpsertIndicators(ctx, 0, []mdebridge.Indicator{twin})
	var amb *mdebridge.AmbiguousError
	if _, err := s.FindIndicator(ctx, twin.IndicatorValue); !errors.As(err, &amb) || len(amb.Candidates) != 2 {
		t.Errorf("ambiguous value: %v", err)
	}
}

func testAudit(t *testing.T, open Opener) {
	s, now := openAt(t, open)
	ctx := t.Context()
	e1 := &mdebridge.AuditEntry{Actor: "alice", Operation: mdebridge.OpIsolate, TargetID: "m1", TargetName: "host1",
		Comment: "contain", RequestID: "r1", Result: mdebridge.AuditRequested}
	e2 := &mdebridge.AuditEntry{Actor: "alice", Operation: mdebridge.OpIsolate, TargetID: "m1", TargetName: "host1",
		Comment: "contain", RequestID: "r1", ActionID: "a1", Result: mdebridge.AuditCreated, Status: "Pending",
		Details: json.RawMessage(`{"isolationType":"Full"}`)}
	if err := s.AppendAudit(ctx, e1, e2); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(time.Hour)
	e3 := &mdebridge.AuditEntry{Actor: "bob", Operation: mdebridge.OpScan, TargetID: "m2", Comment: "scan", RequestID: "r2", Result: mdebridge.AuditFailed, Error: "403"}
	if err := s.AppendAudit(ctx, e3); err != nil {
		t.Fatal(err)
	}
	if e1.ID == 0 || e2.ID <= e1.ID || e3.ID <= e2.ID || !e1.At.Equal(t0) {
		t.Errorf("ids %d %d %d, at %v", e1.ID, e2.ID, e3.ID, e1.At)
	}
	got, err := s.FindAudit(ctx, mdebridge.AuditFilter{RequestID: "r1"})
	if err != nil || len(got) != 2 || got[0].ID != e2.ID {
		t.Fatalf("by request: %v %+v", err, got)
	}
	if diff := cmp.Diff(*e2, got[0]); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if got, _ := s.FindAudit(ctx, mdebridge.AuditFilter{Since: t0.Add(time.Minute)}); len(got) != 1 || got[0].Actor != "bob" {
		t.Errorf("since: %+v", got)
	}
	if got, _ := s.FindAudit(ctx, mdebridge.AuditFilter{Limit: 1}); len(got) != 1 || got[0].ID != e3.ID {
		t.Errorf("newest first: %+v", got)
	}
}

func testBulkJobs(t *testing.T, open Opener) {
	s, _ := openAt(t, open)
	ctx := t.Context()
	job := &mdebridge.BulkJob{ID: "job-1", Operation: mdebridge.OpScan, Request: json.RawMessage(`{"operation":"scan"}`), Actor: "alice", Comment: "sweep"}
	for i := range 5 {
		job.Targets = append(job.Targets, mdebridge.BulkTarget{MachineID: fmt.Sprintf("%040X", i), ComputerName: fmt.Sprintf("h%d", i)})
	}
	if err := s.CreateBulkJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateBulkTargets(ctx, "job-1", []mdebridge.BulkTarget{
		{MachineID: job.Targets[0].MachineID, State: mdebridge.TargetIssued, ActionID: "a0"},
		{MachineID: job.Targets[3].MachineID, State: mdebridge.TargetSending},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateBulkTargets(ctx, "job-1", []mdebridge.BulkTarget{{MachineID: "nope", State: mdebridge.TargetIssued}}); err == nil {
		t.Error("an unknown target was updated")
	}
	if err := s.SetBulkJobStatus(ctx, "job-1", mdebridge.BulkInterrupted); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetBulkJob(ctx, "job-1")
	if err != nil || got.Status != mdebridge.BulkInterrupted || len(got.Targets) != 5 || got.Targets[0].ActionID != "a0" ||
		got.Targets[3].State != mdebridge.TargetSending || got.Targets[4].ComputerName != "h4" || got.Counts[mdebridge.TargetPending] != 3 {
		t.Fatalf("job: %v %+v", err, got)
	}
	if string(got.Request) != `{"operation":"scan"}` {
		t.Errorf("request: %s", got.Request)
	}
	if _, err := s.GetBulkJob(ctx, "job-2"); !errors.Is(err, mdebridge.ErrNotFound) {
		t.Errorf("unknown job: %v", err)
	}
	jobs, err := s.ListBulkJobs(ctx, 10)
	if err != nil || len(jobs) != 1 || jobs[0].Counts[mdebridge.TargetIssued] != 1 || len(jobs[0].Targets) != 0 {
		t.Errorf("list: %v %+v", err, jobs)
	}
}
