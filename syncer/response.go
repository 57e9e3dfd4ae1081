package syncer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mdebridge/mdebridge"
)

// IndicatorsStep pulls the tenant's custom indicators into the store: every
// page is stored as it arrives, and after a complete listing the indicators
// it no longer saw (deleted in MDE) are retired. Indicators pushed while it
// ran are not.
type IndicatorsStep struct {
	Source mdebridge.IndicatorSource
	Store  mdebridge.IndicatorStore
	// Now is the clock the store stamps writes with (default time.Now).
	Now func() time.Time
}

func (IndicatorsStep) Name() string    { return "indicators" }
func (IndicatorsStep) Needs() []string { return nil }

// Run lists and stores every indicator, then retires the missing ones.
//
// MDE has no read-only indicator permission for applications: reading them
// takes Ti.ReadWrite(.All), which an inventory-only deployment does not
// grant. Refused, the step is not-permitted (it names the permission and
// does not fail the run) and leaves the stored indicators alone.
func (s IndicatorsStep) Run(ctx context.Context, r *StepRun) error {
	now := s.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	err := pipelined(ctx, s.Source.ListIndicators, func(page []mdebridge.Indicator) error {
		if err := s.Store.UpsertIndicators(ctx, r.RunID, page); err != nil {
			return fmt.Errorf("store indicators: %w", err)
		}
		r.AddItems(len(page))
		return nil
	})
	if denied := (*mdebridge.PermissionError)(nil); errors.As(err, &denied) {
		return NotPermitted(err)
	}
	if err != nil {
		return err
	}
	n, err := s.Store.RetireIndicatorsNotSeen(ctx, r.RunID, start)
	if err != nil {
		return err
	}
	r.SetRetired(n)
	return nil
}

// actionsOverlap is how far before the newest update seen last time the
// next incremental listing starts: an action's lastUpdate may be stamped a
// little before it becomes visible.
const actionsOverlap = 10 * time.Minute

// MachineActionsStep pulls machine actions into the store, incrementally:
// after the first (full) pass only the actions updated since the newest one
// seen, with an overlap. Actions are history and are never retired.
type MachineActionsStep struct {
	Source mdebridge.MachineActionSource
	Store  mdebridge.ActionStore
}

func (MachineActionsStep) Name() string    { return "machine-actions" }
func (MachineActionsStep) Needs() []string { return nil }

// Run lists the actions changed since the checkpoint and stores them.
func (s MachineActionsStep) Run(ctx context.Context, r *StepRun) error {
	var since, newest time.Time
	if !r.Full && r.Checkpoint != "" {
		if t, err := time.Parse(time.RFC3339Nano, r.Checkpoint); err == nil {
			since, newest = t.Add(-actionsOverlap), t
		} else {
			r.Logger.Warn("unreadable checkpoint; listing every action", "checkpoint", r.Checkpoint)
		}
	}
	err := pipelined(ctx, func(ctx context.Context, page func([]mdebridge.MachineAction) error) error {
		return s.Source.ListMachineActions(ctx, since, page)
	}, func(page []mdebridge.MachineAction) error {
		if err := s.Store.UpsertMachineActions(ctx, page); err != nil {
			return fmt.Errorf("store machine actions: %w", err)
		}
		for _, a := range page {
			if a.LastUpdateTime.After(newest) {
				newest = a.LastUpdateTime
			}
		}
		r.AddItems(len(page))
		return nil
	})
	if err != nil {
		return err
	}
	if !newest.IsZero() {
		r.SaveCheckpoint(newest.UTC().Format(time.RFC3339Nano))
	}
	return nil
}
