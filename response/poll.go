package response

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/mdebridge/mdebridge"
)

// Polling. A wait for an action of T seconds makes at most 1 + T/2 status
// calls (one every two seconds on average) and still sees the end within
// about a second: after one early look it skips ahead to shortly before
// actions of that type usually finish (learnt from the finished actions in
// the store), polls each second around then on the calls it saved, and
// backs off as an overdue action keeps running. TimeOut is final, like
// Succeeded, Failed and Cancelled.
const (
	firstPoll     = time.Second // a fresh action id answers 404 for a moment
	pollSlack     = 200 * time.Millisecond
	maxPollGap    = 30 * time.Second // longest silence, even before the expected end
	freshNotFound = time.Minute      // how long a 404 is taken for "not visible yet"
)

// nextPoll says when to make status call number calls+1 of a wait that
// began at start, whose last call was at last, for an action expected to
// end at expect (zero: no idea).
func nextPoll(start, last time.Time, calls int, expect time.Time) time.Time {
	if calls == 0 {
		// One early look, whatever the expectation: an action can end
		// long before actions of its type usually do.
		return start.Add(firstPoll)
	}
	next := last.Add(time.Second)
	if !expect.IsZero() {
		// Skip ahead to a window around the expected end, a quarter of the
		// expected duration wide before it (estimates err both ways), on a
		// one-second grid that has a poll just after the expected end.
		lead := expect.Sub(start) / 4
		dense := expect.Add(pollSlack).Add(-lead.Truncate(time.Second))
		if next.Before(dense) {
			next = dense
		}
	}
	// Back off once the action runs well past its expected end (half the
	// expected duration again), or as the wait grows without an expectation.
	from := start
	if expect.After(from) {
		from = expect.Add(expect.Sub(start) / 2)
	}
	if overdue := last.Sub(from); overdue > 0 {
		if gap := min(overdue/10, maxPollGap); last.Add(gap).After(next) {
			next = last.Add(gap)
		}
	}
	if calls > 0 && next.After(last.Add(maxPollGap)) {
		next = last.Add(maxPollGap)
	}
	// The budget: call n+1 only once 2n seconds have passed.
	if budget := start.Add(time.Duration(calls) * 2 * time.Second); budget.After(next) {
		next = budget
	}
	return next
}

// expectedDuration is how long actions of typ usually take from creation
// to success: the median of the last 25 in the store, or 0 when it has none.
func (s *Service) expectedDuration(ctx context.Context, typ string) time.Duration {
	as, _, err := s.opts.Store.FindMachineActions(ctx, mdebridge.ActionFilter{Type: typ, Status: mdebridge.ActionStatusSucceeded, Limit: 25})
	if err != nil {
		return 0
	}
	var ds []time.Duration
	for _, a := range as {
		if d := a.LastUpdateTime.Sub(a.CreationTime); d > 0 && d < 6*time.Hour {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// wait polls action a until it is final or timeout passes. final says
// which; the action is the last state seen.
func (s *Service) wait(ctx context.Context, a mdebridge.MachineAction, timeout time.Duration) (mdebridge.MachineAction, bool, error) {
	if mdebridge.ActionFinal(a.Status) {
		return a, true, nil
	}
	start := s.now()
	deadline := start.Add(timeout)
	var expect time.Time
	if d := s.expectedDuration(ctx, a.Type); d > 0 {
		expect = a.CreationTime.Add(d)
		if a.CreationTime.IsZero() || a.CreationTime.After(start) {
			expect = start.Add(d)
		}
	}
	last := start
	for calls := 0; ; calls++ {
		next := nextPoll(start, last, calls, expect)
		if next.After(deadline) {
			next = deadline
		}
		if err := sleep(ctx, next.Sub(s.now())); err != nil {
			return a, false, err
		}
		last = s.now()
		got, err := s.opts.Client.GetMachineAction(ctx, a.ID)
		switch {
		case errors.Is(err, mdebridge.ErrNotFound) && last.Sub(start) < freshNotFound:
			// MDE does not show a new action for a moment.
		case err != nil:
			return a, false, err
		default:
			a = *got
			s.keep(ctx, got)
			if mdebridge.ActionFinal(a.Status) {
				return a, true, nil
			}
		}
		if !last.Before(deadline) {
			return a, false, nil
		}
	}
}
