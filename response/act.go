package response

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/mde"
)

// opposite is the action type that undoes each reversible type. An undo
// requested while the action it undoes is still pending would be overtaken
// when that one completes later (MicrosoftDocs/microsoft-365-docs#5903: a
// device ends isolated after its release), so the pending one is cancelled
// first.
var opposite = map[string]string{
	mdebridge.ActionIsolate:    mdebridge.ActionUnisolate,
	mdebridge.ActionUnisolate:  mdebridge.ActionIsolate,
	mdebridge.ActionRestrict:   mdebridge.ActionUnrestrict,
	mdebridge.ActionUnrestrict: mdebridge.ActionRestrict,
}

// pendingFilter is the OData filter of the actions of typ (and its
// opposite) on a machine ("" for every machine) that are not final, plus,
// when since is set, every action of typ created since then.
func pendingFilter(machineID, typ string, since time.Time) string {
	types := "type eq " + mde.ODataString(typ)
	if o := opposite[typ]; o != "" {
		types = "(" + types + " or type eq " + mde.ODataString(o) + ")"
	}
	open := "status eq 'Pending' or status eq 'InProgress'"
	if !since.IsZero() {
		open += " or creationDateTimeUtc ge " + since.UTC().Format(time.RFC3339)
	}
	f := types + " and (" + open + ")"
	if machineID != "" {
		f = "machineId eq " + mde.ODataString(machineID) + " and " + f
	}
	return f
}

// listActions returns every action matching filter.
func (s *Service) listActions(ctx context.Context, filter string) ([]mdebridge.MachineAction, error) {
	var out []mdebridge.MachineAction
	err := s.opts.Client.ListMachineActionsFiltered(ctx, filter, func(page []mdebridge.MachineAction) error {
		out = append(out, page...)
		return nil
	})
	return out, err
}

func open(a mdebridge.MachineAction) bool { return !mdebridge.ActionFinal(a.Status) }

// one acts on a single machine: a machine action (joined or issued, then
// waited for and its results downloaded when asked), a tag, or an
// investigation.
func (s *Service) one(ctx context.Context, req mdebridge.ActionRequest, op mdebridge.Operation, requestID string, t Target) (mdebridge.ActionOutcome, error) {
	out := mdebridge.ActionOutcome{MachineID: t.ID, ComputerName: t.Name}
	if err := s.record(ctx, s.audit(req, requestID, t, mdebridge.AuditRequested)); err != nil {
		return out, err
	}
	if op.ActionType == "" {
		return s.synchronous(ctx, req, requestID, t)
	}
	pending, err := s.listActions(ctx, pendingFilter(t.ID, op.ActionType, time.Time{}))
	if err != nil {
		e := s.audit(req, requestID, t, mdebridge.AuditFailed)
		e.Error = err.Error()
		return s.failed(ctx, out, e, err)
	}
	if out, err = s.issue(ctx, req, op, requestID, t, pending); err != nil {
		return out, err
	}
	if req.Wait {
		return s.finish(ctx, req, requestID, t, out)
	}
	return out, nil
}

func (s *Service) failed(ctx context.Context, out mdebridge.ActionOutcome, e *mdebridge.AuditEntry, err error) (mdebridge.ActionOutcome, error) {
	out.Result, out.Error = mdebridge.AuditFailed, err.Error()
	if rerr := s.record(ctx, e); rerr != nil {
		return out, errors.Join(err, rerr)
	}
	return out, err
}

// issue gets an action of the operation's type going on t: it joins one
// already pending (pending lists the open actions on t of the type and its
// opposite, which it cancels), or asks MDE for one and joins what MDE
// answers when it refuses a duplicate. It records the outcome in the audit
// log and the store; a failure is in the outcome and returned.
func (s *Service) issue(ctx context.Context, req mdebridge.ActionRequest, op mdebridge.Operation, requestID string, t Target, pending []mdebridge.MachineAction) (mdebridge.ActionOutcome, error) {
	out := mdebridge.ActionOutcome{MachineID: t.ID, ComputerName: t.Name}
	var entries []*mdebridge.AuditEntry
	defer func() {
		if err := s.record(ctx, entries...); err != nil {
			s.log.Error("the audit log missed entries", "request", requestID, "machine", t.ID, "err", err)
		}
	}()
	for _, p := range pending {
		if p.Type == op.ActionType && open(p) {
			a := p
			out.Result, out.Action = mdebridge.AuditJoined, &a
			e := s.audit(req, requestID, t, mdebridge.AuditJoined)
			e.ActionID, e.Status = a.ID, a.Status
			entries = append(entries, e)
			s.keep(ctx, &a)
			return out, nil
		}
	}
	for _, p := range pending {
		if p.Type == opposite[op.ActionType] && open(p) {
			// Cancel the pending opposite so that it cannot complete after this one.
			c, err := s.opts.Client.CancelMachineAction(ctx, p.ID, mdeComment("Superseded by "+op.ActionType+": "+req.Comment, requestID))
			e := s.audit(req, requestID, t, mdebridge.AuditDone)
			e.Operation, e.ActionID = "actions.cancel", p.ID
			if err != nil {
				e.Result, e.Error = mdebridge.AuditFailed, err.Error()
				s.log.Warn("could not cancel the pending opposite action", "action", p.ID, "err", err)
			} else {
				e.Status = c.Status
				s.keep(ctx, c)
			}
			entries = append(entries, e)
		}
	}
	p := params(req)
	p.Comment = mdeComment(req.Comment, requestID)
	a, err := s.opts.Client.RunAction(ctx, t.ID, op.ActionType, p)
	result := mdebridge.AuditCreated
	switch {
	case mde.IsActiveRequest(err):
		// MDE refused a duplicate: the action it has is the one to follow.
		a, err = s.findPending(ctx, t.ID, op.ActionType)
		result = mdebridge.AuditJoined
	case err == nil && a.RequestorComment != p.Comment:
		// MDE answered with the action that was pending (it does that
		// rather than refuse, sometimes): joined, not created.
		result = mdebridge.AuditJoined
	}
	e := s.audit(req, requestID, t, result)
	if err != nil {
		out.Result, out.Error = mdebridge.AuditFailed, err.Error()
		e.Result, e.Error = mdebridge.AuditFailed, err.Error()
		entries = append(entries, e)
		return out, err
	}
	out.Result, out.Action = result, a
	e.ActionID, e.Status = a.ID, a.Status
	entries = append(entries, e)
	s.keep(ctx, a)
	return out, nil
}

// mdeComment is the comment MDE is sent: the analyst's, tagged with the
// request id, which ties the action in the portal to the audit log and
// tells an action this request created from one it was answered with.
func mdeComment(comment, requestID string) string {
	return comment + " [mdebridge " + requestID + "]"
}

// findPending finds the open action of typ on a machine after MDE said one
// exists; a fresh one may not be listed for a moment, so it looks again.
func (s *Service) findPending(ctx context.Context, machineID, typ string) (*mdebridge.MachineAction, error) {
	for attempt, wait := 0, time.Second; ; attempt, wait = attempt+1, wait*2 {
		list, err := s.listActions(ctx, pendingFilter(machineID, typ, time.Time{}))
		if err != nil {
			return nil, err
		}
		for _, a := range list {
			if a.Type == typ && open(a) {
				return &a, nil
			}
		}
		if attempt == 3 {
			return nil, fmt.Errorf("MDE says a %s action is in progress on %s but does not list it; retry in a minute", typ, machineID)
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// synchronous runs the operations that are not machine actions: a tag
// changes at once, an investigation starts.
func (s *Service) synchronous(ctx context.Context, req mdebridge.ActionRequest, requestID string, t Target) (mdebridge.ActionOutcome, error) {
	out := mdebridge.ActionOutcome{MachineID: t.ID, ComputerName: t.Name}
	e := s.audit(req, requestID, t, mdebridge.AuditDone)
	var err error
	switch req.Operation {
	case mdebridge.OpTag:
		var m *mdebridge.Machine
		if m, err = s.opts.Client.TagMachine(ctx, t.ID, req.TagValue, req.TagRemove); err == nil {
			out.Machine = m
		}
	case mdebridge.OpInvestigate:
		var inv *mdebridge.Investigation
		if inv, err = s.opts.Client.StartInvestigation(ctx, t.ID, req.Comment); err == nil {
			out.Investigation = inv
			e.ActionID, e.Status = inv.ID, inv.State
		}
	default:
		err = fmt.Errorf("operation %s has no synchronous form", req.Operation)
	}
	if err != nil {
		e.Result, e.Error = mdebridge.AuditFailed, err.Error()
		return s.failed(ctx, out, e, err)
	}
	out.Result = mdebridge.AuditDone
	return out, s.record(ctx, e)
}

// finish waits for the outcome's action to end, records how it ended, and
// downloads its results when asked.
func (s *Service) finish(ctx context.Context, req mdebridge.ActionRequest, requestID string, t Target, out mdebridge.ActionOutcome) (mdebridge.ActionOutcome, error) {
	a, final, err := s.wait(ctx, *out.Action, req.Timeout)
	out.Action = &a
	if err != nil {
		return out, err
	}
	if !final {
		out.StillRunning = true
		return out, nil
	}
	e := s.audit(req, requestID, t, mdebridge.AuditCompleted)
	e.ActionID, e.Status = a.ID, a.Status
	if err := s.record(ctx, e); err != nil {
		return out, err
	}
	if req.DownloadDir != "" && a.Status == mdebridge.ActionStatusSucceeded &&
		slices.Contains([]string{mdebridge.ActionCollect, mdebridge.ActionLiveResponse}, a.Type) {
		out.Downloads, err = s.download(ctx, req, requestID, t, a)
	}
	return out, err
}
