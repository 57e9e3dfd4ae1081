package response

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/mde"
)

// Bulk jobs. A request on several machines becomes a job in the store with
// one row per target. Before a target's request goes to MDE the row says
// "sending"; after MDE answers it says "issued" (with the action) or
// "failed". A job cut short (Ctrl-C, a crash) is resumed with Resume: rows
// still "sending" are in doubt, and one listing of the actions of the type
// created since the job began tells which of them MDE did receive. So no
// action is issued twice. Calls go out with bounded concurrency and the
// client's limiter paces them at the documented rate, so none meets a 429.

func (s *Service) startBulk(ctx context.Context, req mdebridge.ActionRequest, op mdebridge.Operation, rep *mdebridge.ActionReport,
	targets []Target, progress func(mdebridge.BulkProgress)) (*mdebridge.ActionReport, error) {
	stored := req
	stored.Actor = ""
	body, err := json.Marshal(stored)
	if err != nil {
		return nil, err
	}
	job := &mdebridge.BulkJob{ID: rep.RequestID, Operation: req.Operation, Request: body, Actor: req.Actor, Comment: req.Comment}
	for _, t := range targets {
		job.Targets = append(job.Targets, mdebridge.BulkTarget{MachineID: t.ID, ComputerName: t.Name})
	}
	if err := s.opts.Store.CreateBulkJob(ctx, job); err != nil {
		return nil, fmt.Errorf("record bulk job: %w", err)
	}
	rep.JobID = job.ID
	return s.runBulk(ctx, job, req, op, rep, progress)
}

// Resume carries on a bulk job that was interrupted: targets already
// answered are left alone, those in doubt are checked against MDE, the
// rest are sent. actor is who resumes it (the audit log's actor from now on).
func (s *Service) Resume(ctx context.Context, jobID, actor string, progress func(mdebridge.BulkProgress)) (*mdebridge.ActionReport, error) {
	job, err := s.opts.Store.GetBulkJob(ctx, jobID)
	if err != nil {
		return nil, err
	}
	var req mdebridge.ActionRequest
	if err := json.Unmarshal(job.Request, &req); err != nil {
		return nil, fmt.Errorf("bulk job %s: unreadable request: %w", jobID, err)
	}
	req.Actor = actor
	if req.Actor == "" {
		req.Actor = job.Actor
	}
	op, err := mdebridge.LookupOperation(req.Operation)
	if err != nil || op.ActionType == "" {
		return nil, fmt.Errorf("bulk job %s: operation %q cannot run as a job", jobID, req.Operation)
	}
	rep := &mdebridge.ActionReport{RequestID: job.ID, JobID: job.ID, Operation: req.Operation}
	if err := s.opts.Store.SetBulkJobStatus(ctx, job.ID, mdebridge.BulkRunning); err != nil {
		return nil, err
	}
	return s.runBulk(ctx, job, req, op, rep, progress)
}

func (s *Service) runBulk(ctx context.Context, job *mdebridge.BulkJob, req mdebridge.ActionRequest, op mdebridge.Operation,
	rep *mdebridge.ActionReport, progress func(mdebridge.BulkProgress)) (*mdebridge.ActionReport, error) {
	outcomes := make([]mdebridge.ActionOutcome, len(job.Targets))
	var mu sync.Mutex
	prog := mdebridge.BulkProgress{JobID: job.ID, Total: len(job.Targets)}
	var todo []int
	for i, t := range job.Targets {
		outcomes[i] = mdebridge.ActionOutcome{MachineID: t.MachineID, ComputerName: t.ComputerName}
		switch t.State {
		case mdebridge.TargetIssued:
			outcomes[i].Result, outcomes[i].Action = mdebridge.AuditCreated, &mdebridge.MachineAction{ID: t.ActionID, MachineID: t.MachineID}
			prog.Done++
		case mdebridge.TargetFailed:
			outcomes[i].Result, outcomes[i].Error = mdebridge.AuditFailed, t.Error
			prog.Done++
			prog.Failed++
		default:
			todo = append(todo, i)
		}
	}
	report := func() {
		if progress != nil {
			progress(prog)
		}
	}
	report()
	// One listing answers, for every target: is an action of the type (or
	// its opposite) open on it, and did an earlier run of this job get one
	// created without recording it?
	since := job.CreatedAt.Add(-time.Minute)
	existing, err := s.listActions(ctx, pendingFilter("", op.ActionType, since))
	if err != nil {
		return rep, s.interrupt(ctx, job, rep, outcomes, err)
	}
	byMachine := map[string][]mdebridge.MachineAction{}
	for _, a := range existing {
		k := strings.ToLower(a.MachineID)
		byMachine[k] = append(byMachine[k], a)
	}
	// MDE does not list an action for a moment after creating it: when a
	// target in doubt was sent just now, look again once that moment has passed.
	if doubt := s.unresolved(job, todo, byMachine, op.ActionType, since); doubt && s.now().Sub(job.UpdatedAt) < freshInvisible {
		if err := sleep(ctx, freshInvisible-s.now().Sub(job.UpdatedAt)); err != nil {
			return rep, s.interrupt(ctx, job, rep, outcomes, err)
		}
		if existing, err = s.listActions(ctx, pendingFilter("", op.ActionType, since)); err != nil {
			return rep, s.interrupt(ctx, job, rep, outcomes, err)
		}
		clear(byMachine)
		for _, a := range existing {
			k := strings.ToLower(a.MachineID)
			byMachine[k] = append(byMachine[k], a)
		}
	}
	var resolved []mdebridge.BulkTarget
	var send []int
	for _, i := range todo {
		t := job.Targets[i]
		if t.State == mdebridge.TargetSending {
			if a := newestOfType(byMachine[strings.ToLower(t.MachineID)], op.ActionType, since); a != nil {
				t.State, t.ActionID = mdebridge.TargetIssued, a.ID
				resolved = append(resolved, t)
				outcomes[i].Result, outcomes[i].Action = mdebridge.AuditJoined, a
				prog.Done++
				continue
			}
		}
		send = append(send, i)
	}
	if len(resolved) > 0 {
		if err := s.opts.Store.UpdateBulkTargets(ctx, job.ID, resolved); err != nil {
			return rep, s.interrupt(ctx, job, rep, outcomes, err)
		}
		s.log.Info("bulk job: targets in doubt were received by MDE", "job", job.ID, "count", len(resolved))
		report()
	}

	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(req.Concurrency, max(1, len(send))) {
		wg.Go(func() {
			for i := range jobs {
				o, st, fatal := s.bulkTarget(runCtx, job, req, op, job.Targets[i], byMachine[strings.ToLower(job.Targets[i].MachineID)])
				mu.Lock()
				outcomes[i] = o
				if st != mdebridge.TargetSending {
					prog.Done++
				}
				if st == mdebridge.TargetFailed {
					prog.Failed++
				}
				report()
				mu.Unlock()
				if fatal != nil {
					stop(fatal)
				}
			}
		})
	}
feed:
	for _, i := range send {
		select {
		case jobs <- i:
		case <-runCtx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if cause := context.Cause(runCtx); cause != nil {
		return rep, s.interrupt(ctx, job, rep, outcomes, cause)
	}
	if err := s.setJobStatus(ctx, job.ID, mdebridge.BulkDone); err != nil {
		return rep, err
	}
	rep.Outcomes = outcomes
	if req.Wait {
		return rep, s.waitBulk(ctx, req, job, rep)
	}
	return rep, nil
}

// freshInvisible is how long a new action may take to be listed.
const freshInvisible = 5 * time.Second

// unresolved reports whether some target in doubt has no action listed.
func (s *Service) unresolved(job *mdebridge.BulkJob, todo []int, byMachine map[string][]mdebridge.MachineAction, typ string, since time.Time) bool {
	for _, i := range todo {
		t := job.Targets[i]
		if t.State == mdebridge.TargetSending && newestOfType(byMachine[strings.ToLower(t.MachineID)], typ, since) == nil {
			return true
		}
	}
	return false
}

// newestOfType returns the newest action of typ created at or after since.
func newestOfType(as []mdebridge.MachineAction, typ string, since time.Time) *mdebridge.MachineAction {
	var best *mdebridge.MachineAction
	for i := range as {
		a := &as[i]
		if a.Type == typ && !a.CreationTime.Before(since) && (best == nil || a.CreationTime.After(best.CreationTime)) {
			best = a
		}
	}
	return best
}

// bulkTarget sends one target's request and records its state. It returns
// the target's new state and, when the whole job must stop (a missing
// permission would fail every other target too), why.
func (s *Service) bulkTarget(ctx context.Context, job *mdebridge.BulkJob, req mdebridge.ActionRequest, op mdebridge.Operation,
	bt mdebridge.BulkTarget, pending []mdebridge.MachineAction) (mdebridge.ActionOutcome, string, error) {
	t := Target{ID: bt.MachineID, Name: bt.ComputerName}
	out := mdebridge.ActionOutcome{MachineID: t.ID, ComputerName: t.Name}
	if ctx.Err() != nil {
		return out, mdebridge.TargetSending, nil
	}
	bt.State = mdebridge.TargetSending
	if err := s.opts.Store.UpdateBulkTargets(ctx, job.ID, []mdebridge.BulkTarget{bt}); err != nil {
		return out, mdebridge.TargetSending, err
	}
	if err := s.record(ctx, s.audit(req, job.ID, t, mdebridge.AuditRequested)); err != nil {
		return out, mdebridge.TargetSending, err
	}
	var open []mdebridge.MachineAction
	for _, a := range pending {
		if !mdebridge.ActionFinal(a.Status) {
			open = append(open, a)
		}
	}
	out, err := s.issue(ctx, req, op, job.ID, t, open)
	var fatal error
	var pe *mdebridge.PermissionError
	switch {
	case err == nil:
		bt.State, bt.ActionID = mdebridge.TargetIssued, out.Action.ID
	case ctx.Err() != nil || errors.Is(err, mde.ErrTransient) || errors.Is(err, mde.ErrThrottled):
		// MDE may or may not have it: a resume will look.
		return out, mdebridge.TargetSending, nil
	default:
		bt.State, bt.Error = mdebridge.TargetFailed, out.Error
		if errors.As(err, &pe) {
			fatal = err // every other target would fail the same way
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.opts.Store.UpdateBulkTargets(sctx, job.ID, []mdebridge.BulkTarget{bt}); err != nil {
		return out, bt.State, err
	}
	return out, bt.State, fatal
}

// interrupt marks a job interrupted and returns the error that stopped it,
// worded so that the user knows how to carry on.
func (s *Service) interrupt(ctx context.Context, job *mdebridge.BulkJob, rep *mdebridge.ActionReport, outcomes []mdebridge.ActionOutcome, cause error) error {
	rep.Outcomes = outcomes
	if err := s.setJobStatus(ctx, job.ID, mdebridge.BulkInterrupted); err != nil {
		return errors.Join(cause, err)
	}
	return &InterruptedError{JobID: job.ID, Err: cause}
}

func (s *Service) setJobStatus(ctx context.Context, id, status string) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return s.opts.Store.SetBulkJobStatus(sctx, id, status)
}

// InterruptedError is a bulk job that stopped before every target was
// sent; Resume(JobID) carries on.
type InterruptedError struct {
	JobID string
	Err   error
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("bulk job %s stopped: %v; resume it with 'mdebridge actions resume %s' (nothing is sent twice)", e.JobID, e.Err, e.JobID)
}

func (e *InterruptedError) Unwrap() error { return e.Err }

// waitBulk polls a job's actions with one listing per round (the actions of
// the type updated since the job began) until all are final or the wait
// times out; rounds start 5 seconds apart and back off to 30.
func (s *Service) waitBulk(ctx context.Context, req mdebridge.ActionRequest, job *mdebridge.BulkJob, rep *mdebridge.ActionReport) error {
	deadline := s.now().Add(req.Timeout)
	open := map[string]int{}
	for i, o := range rep.Outcomes {
		if o.Action != nil && !mdebridge.ActionFinal(o.Action.Status) {
			open[strings.ToLower(o.Action.ID)] = i
		}
	}
	typ := ""
	if op, err := mdebridge.LookupOperation(req.Operation); err == nil {
		typ = op.ActionType
	}
	filter := "type eq " + mde.ODataString(typ) + " and lastUpdateDateTimeUtc ge " + job.CreatedAt.Add(-time.Minute).UTC().Format(time.RFC3339)
	gap := 5 * time.Second
	for len(open) > 0 {
		wait := min(gap, deadline.Sub(s.now()))
		if wait <= 0 {
			break
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		gap = min(gap*3/2, maxPollGap)
		list, err := s.listActions(ctx, filter)
		if err != nil {
			return err
		}
		var done []*mdebridge.MachineAction
		var entries []*mdebridge.AuditEntry
		for _, a := range list {
			i, ok := open[strings.ToLower(a.ID)]
			if !ok || !mdebridge.ActionFinal(a.Status) {
				continue
			}
			delete(open, strings.ToLower(a.ID))
			a := a
			rep.Outcomes[i].Action = &a
			done = append(done, &a)
			e := s.audit(req, job.ID, Target{ID: a.MachineID, Name: a.ComputerDNSName}, mdebridge.AuditCompleted)
			e.ActionID, e.Status = a.ID, a.Status
			entries = append(entries, e)
		}
		s.keep(ctx, done...)
		if err := s.record(ctx, entries...); err != nil {
			return err
		}
		for _, a := range done {
			i := indexOf(rep.Outcomes, a.ID)
			if req.DownloadDir != "" && a.Status == mdebridge.ActionStatusSucceeded && (a.Type == mdebridge.ActionCollect || a.Type == mdebridge.ActionLiveResponse) {
				t := Target{ID: a.MachineID, Name: rep.Outcomes[i].ComputerName}
				d, err := s.download(ctx, req, job.ID, t, *a)
				rep.Outcomes[i].Downloads = d
				if err != nil {
					return err
				}
			}
		}
	}
	for _, i := range open {
		rep.Outcomes[i].StillRunning = true
	}
	return nil
}

func indexOf(outcomes []mdebridge.ActionOutcome, actionID string) int {
	for i, o := range outcomes {
		if o.Action != nil && strings.EqualFold(o.Action.ID, actionID) {
			return i
		}
	}
	return 0
}
