package syncer

import (
	"context"
	"fmt"

	"github.com/mdebridge/mdebridge"
)

// MachinesStep syncs the machine inventory: every page is stored as it
// arrives, and only after the whole listing succeeded are the machines it
// did not see retired.
type MachinesStep struct {
	Source mdebridge.MachineSource
	Store  mdebridge.MachineStore
}

func (MachinesStep) Name() string    { return "machines" }
func (MachinesStep) Needs() []string { return nil }

// Run lists and stores all machines, then retires the missing ones.
func (s MachinesStep) Run(ctx context.Context, r *StepRun) error {
	seen := 0
	err := pipelined(ctx, s.Source.ListMachines, func(page []mdebridge.Machine) error {
		if err := s.Store.UpsertMachines(ctx, r.RunID, page); err != nil {
			return fmt.Errorf("store machines: %w", err)
		}
		seen += len(page)
		r.AddItems(len(page))
		return nil
	})
	if err != nil {
		return err
	}
	if seen == 0 {
		// An empty listing where machines were known is far more often a
		// service or permission glitch than a tenant that lost every device:
		// keep what we have rather than retire it all.
		_, live, err := s.Store.FindMachines(ctx, mdebridge.MachineFilter{Limit: 1})
		if err != nil {
			return err
		}
		if live > 0 {
			r.Logger.Warn("the service listed no machines; keeping the stored ones", "stored", live)
			return nil
		}
	}
	n, err := s.Store.RetireMachinesNotSeen(ctx, r.RunID)
	if err != nil {
		return fmt.Errorf("retire machines: %w", err)
	}
	r.SetRetired(n)
	return nil
}
