package syncer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/storetest"
	"github.com/mdebridge/mdebridge/syncer"
)

// logonSource is a fake MDE for logon users.
type logonSource struct {
	hunt       [][]mdebridge.LogonUser // pages of a hunting pass
	huntErr    error                   // returned after the first page
	denyHunt   bool
	denyAPI    bool
	perMachine map[string][]mdebridge.LogonUser
	expected   []int    // what each hunting pass was told to expect
	asked      []string // machines asked one by one
}

var errDenied = &mdebridge.PermissionError{API: "POST /api/advancedqueries/run", Missing: []string{"AdvancedQuery.Read.All"}}

func (s *logonSource) HuntLogonUsers(ctx context.Context, expected int, page func([]mdebridge.LogonUser) error) error {
	s.expected = append(s.expected, expected)
	if s.denyHunt {
		return fmt.Errorf("logon users of all devices: %w", errDenied)
	}
	for i, p := range s.hunt {
		if i == 1 && s.huntErr != nil {
			return s.huntErr
		}
		if err := page(p); err != nil {
			return err
		}
	}
	return nil
}

func (s *logonSource) MachineLogonUsers(ctx context.Context, id string) ([]mdebridge.LogonUser, error) {
	s.asked = append(s.asked, id)
	if s.denyAPI {
		return nil, &mdebridge.PermissionError{API: "GET /api/machines/{id}/logonusers", Missing: []string{"User.Read.All"}}
	}
	users, ok := s.perMachine[id]
	if !ok {
		return nil, fmt.Errorf("GET /api/machines/{id}/logonusers: 404: %w", mdebridge.ErrNotFound)
	}
	return users, nil
}

var lt0 = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

func user(machine int, name string) mdebridge.LogonUser {
	return storetest.LogonUser(storetest.Machine(machine).ID, "contoso", name, lt0.Add(-48*time.Hour), lt0)
}

func liveUsers(t *testing.T, db interface {
	Counts(context.Context) (mdebridge.Counts, error)
}) int {
	t.Helper()
	c, err := db.Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return c["machine_logon_users"]
}

func TestLogonUsersStepByHunting(t *testing.T) {
	db := openStore(t)
	if err := db.UpsertMachines(t.Context(), 1, machines(0, 10)); err != nil {
		t.Fatal(err)
	}
	src := &logonSource{hunt: [][]mdebridge.LogonUser{
		{user(0, "alex"), user(1, "alex"), user(1, "sam")},
		{user(2, "adm-helpdesk"), user(3, "adm-helpdesk")},
	}}
	e := logonEngine(t, db, syncer.LogonUsersStep{Source: src, Store: db, PerMachineBudget: 100})
	run, _ := e.Run(t.Context(), syncer.RunOptions{})
	if run.Steps[1].Status != mdebridge.StatusSucceeded || run.Steps[1].Items != 5 || liveUsers(t, db) != 5 {
		t.Fatalf("first sync: %+v, %d live", run.Steps[1], liveUsers(t, db))
	}
	// The quota runs out after the first page: the step fails with the
	// quota's words, and the users the first page no longer lists stay.
	src.hunt[0] = src.hunt[0][:1]
	src.huntErr = &mdebridge.HuntingQuotaError{CPU: true, RetryAfter: 40 * time.Minute, Message: "Query CPU quota exceeded!"}
	run, _ = e.Run(t.Context(), syncer.RunOptions{})
	if run.Steps[1].Status != mdebridge.StatusFailed || !strings.Contains(run.Steps[1].Error, "CPU quota") || liveUsers(t, db) != 5 {
		t.Fatalf("failed sync: %+v, %d live", run.Steps[1], liveUsers(t, db))
	}
	// A complete pass retires them.
	src.huntErr = nil
	run, _ = e.Run(t.Context(), syncer.RunOptions{})
	if run.Steps[1].Status != mdebridge.StatusSucceeded || run.Steps[1].Retired != 2 || liveUsers(t, db) != 3 {
		t.Fatalf("complete sync: %+v, %d live", run.Steps[1], liveUsers(t, db))
	}
	// The first pass expected 3 users a machine; later ones what was stored.
	if !slices.Equal(src.expected, []int{30, 5, 5}) {
		t.Errorf("expected rows %v, want [30 5 5]", src.expected)
	}
	if len(src.asked) != 0 {
		t.Errorf("asked machines one by one while hunting works: %v", src.asked)
	}
}

func TestLogonUsersStepFallsBackPerMachine(t *testing.T) {
	db := openStore(t)
	if err := db.UpsertMachines(t.Context(), 1, machines(0, 10)); err != nil {
		t.Fatal(err)
	}
	src := &logonSource{denyHunt: true, perMachine: map[string][]mdebridge.LogonUser{}}
	for i := range 10 {
		if i == 7 {
			continue // gone from MDE: 404
		}
		src.perMachine[storetest.Machine(i).ID] = []mdebridge.LogonUser{user(i, "alex"), user(i, fmt.Sprintf("user%d", i))}
	}
	e := logonEngine(t, db, syncer.LogonUsersStep{Source: src, Store: db, PerMachineBudget: 4})
	id := func(i int) string { return storetest.Machine(i).ID }
	var asked [][]string
	for range 4 {
		src.asked = nil
		run, _ := e.Run(t.Context(), syncer.RunOptions{})
		if run.Steps[1].Status != mdebridge.StatusSucceeded {
			t.Fatalf("sync: %+v", run.Steps[1])
		}
		asked = append(asked, src.asked)
	}
	// Four machines a sync, in id order, resuming; the pass ends after the
	// last machine and the next one starts over.
	ids := func(is ...int) []string {
		var out []string
		for _, i := range is {
			out = append(out, id(i))
		}
		return out
	}
	want := [][]string{ids(0, 1, 2, 3), ids(4, 5, 6, 7), ids(8, 9), ids(0, 1, 2, 3)}
	for i := range want {
		if !slices.Equal(asked[i], want[i]) {
			t.Errorf("sync %d asked %v, want %v", i+1, asked[i], want[i])
		}
	}
	if n := liveUsers(t, db); n != 18 {
		t.Errorf("%d live edges, want 18 (9 machines, 2 users each)", n)
	}
	// A machine's list replaces its edges.
	src.perMachine[id(0)] = src.perMachine[id(0)][:1]
	src.asked = nil
	run, _ := e.Run(t.Context(), syncer.RunOptions{Full: true}) // a full sync starts the pass over
	if run.Steps[1].Retired != 1 || !slices.Equal(src.asked, ids(0, 1, 2, 3)) {
		t.Errorf("full sync: %+v, asked %v", run.Steps[1], src.asked)
	}
}

func TestLogonUsersStepWithoutPermission(t *testing.T) {
	db := openStore(t)
	if err := db.UpsertMachines(t.Context(), 1, machines(0, 3)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		src    *logonSource
		budget int
		want   []string
	}{
		{"neither permitted", &logonSource{denyHunt: true, denyAPI: true}, 10, []string{"AdvancedQuery.Read.All", "User.Read.All"}},
		{"fallback off", &logonSource{denyHunt: true}, 0, []string{"AdvancedQuery.Read.All"}},
	} {
		step := syncer.LogonUsersStep{Source: tt.src, Store: db, PerMachineBudget: tt.budget}
		e := logonEngine(t, db, step)
		run, _ := e.Run(t.Context(), syncer.RunOptions{})
		var pe *mdebridge.PermissionError
		err := step.Run(t.Context(), &syncer.StepRun{RunID: 99, Logger: discard()})
		if run.Steps[1].Status != mdebridge.StatusNotPermitted || run.Status != mdebridge.StatusSucceeded || !errors.As(err, &pe) || !slices.Equal(pe.Missing, tt.want) {
			t.Errorf("%s: %+v; %v", tt.name, run.Steps[1], err)
		}
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// logonEngine runs the step after a machines step that does nothing (the
// machines are in the store already).
func logonEngine(t *testing.T, db syncer.LogonUserStore, step syncer.LogonUsersStep) *syncer.Engine {
	t.Helper()
	e, err := syncer.New(syncer.Options{Store: db.(mdebridge.SyncStore), Steps: []syncer.Step{fakeStep{name: "machines"}, step}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}
