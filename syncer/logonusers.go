package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mdebridge/mdebridge"
)

// LogonUsersStep syncs who logs on to which machine. With advanced hunting
// it costs a handful of queries whatever the number of machines, and the
// edges a complete pass no longer sees are retired. Without the hunting
// permission it falls back to one call per machine, at most
// PerMachineBudget calls a sync, resuming where the last sync stopped, and
// replaces each machine's list as it goes.
type LogonUsersStep struct {
	Source mdebridge.LogonUserSource
	Store  LogonUserStore
	// PerMachineBudget bounds the per-machine calls of one sync when
	// hunting is not permitted; 0 turns the fallback off.
	PerMachineBudget int
}

// LogonUserStore is what the step needs of the store.
type LogonUserStore interface {
	mdebridge.LogonUserStore
	mdebridge.StatusStore
}

func (LogonUsersStep) Name() string    { return "logon-users" }
func (LogonUsersStep) Needs() []string { return []string{"machines"} }

// usersPerMachine estimates the edges of a tenant never synced before.
const usersPerMachine = 3

// logonCheckpoint is the step's resumption state.
type logonCheckpoint struct {
	Mode  string `json:"mode"`            // hunting or per-machine
	After string `json:"after,omitempty"` // per-machine: the last machine done
}

func (s LogonUsersStep) Run(ctx context.Context, r *StepRun) error {
	counts, err := s.Store.Counts(ctx)
	if err != nil {
		return err
	}
	expected := counts["machine_logon_users"]
	if expected == 0 {
		expected = usersPerMachine * counts["machines"]
	}
	err = pipelined(ctx, func(ctx context.Context, page func([]mdebridge.LogonUser) error) error {
		return s.Source.HuntLogonUsers(ctx, expected, page)
	}, func(users []mdebridge.LogonUser) error {
		if err := s.Store.UpsertLogonUsers(ctx, r.RunID, users); err != nil {
			return fmt.Errorf("store logon users: %w", err)
		}
		r.AddItems(len(users))
		return nil
	})
	var denied *mdebridge.PermissionError
	switch {
	case errors.As(err, &denied):
		return s.perMachine(ctx, r, denied)
	case err != nil:
		return err
	}
	n, err := s.Store.RetireLogonUsersNotSeen(ctx, r.RunID)
	if err != nil {
		return fmt.Errorf("retire logon users: %w", err)
	}
	r.SetRetired(n)
	r.SaveCheckpoint(encodeCheckpoint(logonCheckpoint{Mode: "hunting"}))
	return nil
}

func encodeCheckpoint(cp logonCheckpoint) string {
	b, _ := json.Marshal(cp)
	return string(b)
}

// perMachine lists logon users one machine at a time, in machine id order
// from where the last sync stopped, within the budget.
func (s LogonUsersStep) perMachine(ctx context.Context, r *StepRun, denied *mdebridge.PermissionError) error {
	if s.PerMachineBudget <= 0 {
		return NotPermitted(fmt.Errorf("logon users: advanced hunting is not permitted and the per-machine fallback is off: %w", denied))
	}
	var cp logonCheckpoint
	if !r.Full && r.Checkpoint != "" {
		_ = json.Unmarshal([]byte(r.Checkpoint), &cp) // a foreign checkpoint starts a new pass
	}
	after := ""
	if cp.Mode == "per-machine" {
		after = cp.After
	}
	r.Logger.Warn("advanced hunting is not permitted; listing logon users one machine at a time",
		"missing", denied.Missing, "budget", s.PerMachineBudget, "resumeAfter", after)
	done, retired := 0, 0
	defer func() { r.SetRetired(retired) }()
	for done < s.PerMachineBudget {
		ids, err := s.Store.LiveMachineIDs(ctx, after, min(500, s.PerMachineBudget-done))
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			// The pass is complete; the next sync starts another.
			after = ""
			break
		}
		for _, id := range ids {
			users, err := s.Source.MachineLogonUsers(ctx, id)
			var pe *mdebridge.PermissionError
			switch {
			case errors.As(err, &pe):
				// An inventory-only app: say what to grant, without failing the run.
				return NotPermitted(&mdebridge.PermissionError{API: "logon users", Missing: []string{"AdvancedQuery.Read.All", "User.Read.All"},
					Message: "neither advanced hunting nor the per-machine logonusers API is permitted"})
			case errors.Is(err, mdebridge.ErrNotFound):
				// Gone from MDE since the machine step: the next machine sync retires it.
				r.Logger.Info("machine not found in MDE; skipping its logon users", "machine", id)
			case err != nil:
				r.SaveCheckpoint(encodeCheckpoint(logonCheckpoint{Mode: "per-machine", After: after}))
				return fmt.Errorf("logon users of machine %s: %w", id, err)
			default:
				n, err := s.Store.ReplaceMachineLogonUsers(ctx, r.RunID, id, users)
				if err != nil {
					return fmt.Errorf("store logon users of machine %s: %w", id, err)
				}
				retired += n
				r.AddItems(len(users))
			}
			after = id
			done++
		}
	}
	r.SaveCheckpoint(encodeCheckpoint(logonCheckpoint{Mode: "per-machine", After: after}))
	r.Logger.Info("per-machine logon users done for this sync", "machines", done, "nextAfter", after)
	return nil
}
