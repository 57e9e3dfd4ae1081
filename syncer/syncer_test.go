package syncer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/sqlite"
	"github.com/mdebridge/mdebridge/storetest"
	"github.com/mdebridge/mdebridge/syncer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openStore(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "s.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// fakeStep does what its fields say.
type fakeStep struct {
	name  string
	needs []string
	run   func(ctx context.Context, r *syncer.StepRun) error
}

func (s fakeStep) Name() string    { return s.name }
func (s fakeStep) Needs() []string { return s.needs }
func (s fakeStep) Run(ctx context.Context, r *syncer.StepRun) error {
	if s.run == nil {
		return nil
	}
	return s.run(ctx, r)
}

func TestDependenciesAndPartialRuns(t *testing.T) {
	db := openStore(t)
	var order []string
	step := func(name string, err error, needs ...string) fakeStep {
		return fakeStep{name: name, needs: needs, run: func(ctx context.Context, r *syncer.StepRun) error {
			order = append(order, name)
			mdebridge.CountAPICall(ctx, "GET /api/"+name)
			r.AddItems(3)
			return err
		}}
	}
	reg := prometheus.NewRegistry()
	e, err := syncer.New(syncer.Options{Store: db, Registerer: reg, Steps: []syncer.Step{
		step("c", nil, "b"), step("b", errors.New("upstream said no"), "a"), step("a", nil), step("d", nil, "a"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	var progress []string
	run, err := e.Run(t.Context(), syncer.RunOptions{Trigger: "test", Progress: func(p syncer.Progress) {
		progress = append(progress, fmt.Sprintf("%s:%s:%d", p.Step, p.Status, p.Items))
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ","); got != "a,b,d" {
		t.Errorf("ran %s, want a,b,d (c skipped)", got)
	}
	if run.Status != mdebridge.StatusPartial {
		t.Errorf("run status %s, want partial", run.Status)
	}
	want := map[string]mdebridge.Status{"a": mdebridge.StatusSucceeded, "b": mdebridge.StatusFailed, "c": mdebridge.StatusSkipped, "d": mdebridge.StatusSucceeded}
	for _, s := range run.Steps {
		if s.Status != want[s.Name] {
			t.Errorf("step %s: %s, want %s", s.Name, s.Status, want[s.Name])
		}
		if s.Status == mdebridge.StatusSucceeded && (s.Items != 3 || s.APICalls != 1 || s.CallsByAPI["GET /api/"+s.Name] != 1) {
			t.Errorf("step %s: %+v", s.Name, s)
		}
	}
	if !strings.Contains(run.Steps[1].Error, "upstream said no") || !strings.Contains(run.Steps[2].Error, "step b did not succeed") {
		t.Errorf("errors: %q, %q", run.Steps[1].Error, run.Steps[2].Error)
	}
	stored, _ := db.LastRuns(t.Context(), 1)
	if stored[0].Status != mdebridge.StatusPartial || len(stored[0].Steps) != 4 {
		t.Errorf("stored run %+v", stored[0])
	}
	if got := strings.Join(progress, " "); !strings.Contains(got, "a:running:3") || !strings.Contains(got, "b:failed:3") || !strings.Contains(got, "c:skipped:0") {
		t.Errorf("progress %s", got)
	}
	if n := testutil.ToFloat64(mustCounter(t, reg, "mdebridge_sync_runs_total")); n != 1 {
		t.Errorf("runs metric %v", n)
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: "x"})
			c.Add(mf.GetMetric()[0].GetCounter().GetValue())
			return c
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}

func TestInvalidSteps(t *testing.T) {
	db := openStore(t)
	for name, steps := range map[string][]syncer.Step{
		"cycle":     {fakeStep{name: "a", needs: []string{"b"}}, fakeStep{name: "b", needs: []string{"a"}}},
		"unknown":   {fakeStep{name: "a", needs: []string{"zz"}}},
		"duplicate": {fakeStep{name: "a"}, fakeStep{name: "a"}},
		"none":      nil,
	} {
		if _, err := syncer.New(syncer.Options{Store: db, Steps: steps}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	e, _ := syncer.New(syncer.Options{Store: db, Steps: []syncer.Step{fakeStep{name: "a"}}})
	if _, err := e.Run(t.Context(), syncer.RunOptions{Only: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), "unknown step") {
		t.Errorf("Only with an unknown step: %v", err)
	}
}

func TestCheckpoints(t *testing.T) {
	db := openStore(t)
	var got []string
	e, _ := syncer.New(syncer.Options{Store: db, Steps: []syncer.Step{fakeStep{name: "s", run: func(ctx context.Context, r *syncer.StepRun) error {
		got = append(got, r.Checkpoint)
		r.SaveCheckpoint(fmt.Sprintf("cp%d", r.RunID))
		return nil
	}}}})
	for _, full := range []bool{false, false, true} {
		if _, err := e.Run(t.Context(), syncer.RunOptions{Full: full}); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(got, ",") != ",cp1," {
		t.Errorf("checkpoints seen %q, want \"\", cp1, and none on the full run", got)
	}
}

func TestOneRunAtATime(t *testing.T) {
	db := openStore(t)
	started, release := make(chan struct{}), make(chan struct{})
	e, _ := syncer.New(syncer.Options{Store: db, Steps: []syncer.Step{fakeStep{name: "slow", run: func(ctx context.Context, r *syncer.StepRun) error {
		close(started)
		<-release
		return nil
	}}}})
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := e.Run(t.Context(), syncer.RunOptions{}); err != nil {
			t.Error(err)
		}
	})
	<-started
	if _, err := e.Run(t.Context(), syncer.RunOptions{}); !errors.Is(err, syncer.ErrBusy) {
		t.Errorf("second run in the process: %v", err)
	}
	// Another process on this host whose pid is alive (1 always is) is refused too.
	other, _ := syncer.New(syncer.Options{Store: db, Owner: hostname() + ":1", Steps: []syncer.Step{fakeStep{name: "x"}}})
	var busy *mdebridge.RunInProgressError
	if _, err := other.Run(t.Context(), syncer.RunOptions{}); !errors.As(err, &busy) {
		t.Errorf("run from another live owner: %v", err)
	}
	close(release)
	wg.Wait()
}

func hostname() string { h, _ := os.Hostname(); return h }

func TestDeadOwnerIsTakenOver(t *testing.T) {
	db := openStore(t)
	dead := &mdebridge.SyncRun{Trigger: "cli", Owner: hostname() + ":999999999"}
	if err := db.StartRun(t.Context(), dead, func(mdebridge.SyncRun) bool { return false }); err != nil {
		t.Fatal(err)
	}
	e, _ := syncer.New(syncer.Options{Store: db, Steps: []syncer.Step{fakeStep{name: "x"}}})
	run, err := e.Run(t.Context(), syncer.RunOptions{})
	if err != nil || run.Status != mdebridge.StatusSucceeded {
		t.Fatalf("run after a dead owner: %v %v", run, err)
	}
	runs, _ := db.LastRuns(t.Context(), 2)
	if runs[1].ID != dead.ID || runs[1].Status != mdebridge.StatusInterrupted {
		t.Errorf("dead run not marked interrupted: %+v", runs[1])
	}
}

func TestCancelledRunIsInterrupted(t *testing.T) {
	db := openStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	e, _ := syncer.New(syncer.Options{Store: db, Steps: []syncer.Step{fakeStep{name: "x", run: func(ctx context.Context, r *syncer.StepRun) error {
		cancel()
		return ctx.Err()
	}}}})
	run, err := e.Run(ctx, syncer.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != mdebridge.StatusInterrupted || run.Steps[0].Status != mdebridge.StatusInterrupted {
		t.Errorf("run %s step %s", run.Status, run.Steps[0].Status)
	}
	stored, _ := db.LastRuns(t.Context(), 1)
	if stored[0].Status != mdebridge.StatusInterrupted {
		t.Errorf("stored %s", stored[0].Status)
	}
}

// pagedSource serves fixed pages and can fail after some.
type pagedSource struct {
	pages   [][]mdebridge.Machine
	failAt  int // page index that fails; -1 never
	listing int
}

func (s *pagedSource) ListMachines(ctx context.Context, page func([]mdebridge.Machine) error) error {
	s.listing++
	for i, p := range s.pages {
		if i == s.failAt {
			return errors.New("GET /api/machines page 2: gave up after 6 attempts: 503")
		}
		if err := page(p); err != nil {
			return err
		}
	}
	return nil
}

func machines(from, to int) []mdebridge.Machine {
	var out []mdebridge.Machine
	for i := from; i < to; i++ {
		out = append(out, storetest.Machine(i))
	}
	return out
}

func TestMachinesStep(t *testing.T) {
	db := openStore(t)
	src := &pagedSource{failAt: -1, pages: [][]mdebridge.Machine{machines(0, 5), machines(5, 10)}}
	e, _ := syncer.New(syncer.Options{Store: db, Steps: []syncer.Step{syncer.MachinesStep{Source: src, Store: db}}})
	live := func() int {
		_, n, err := db.FindMachines(t.Context(), mdebridge.MachineFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	run, _ := e.Run(t.Context(), syncer.RunOptions{})
	if run.Status != mdebridge.StatusSucceeded || run.Steps[0].Items != 10 || live() != 10 {
		t.Fatalf("first sync: %+v, %d live", run, live())
	}
	// The tenant lost machines 8 and 9, but the listing fails on page 2:
	// the step fails and nothing is retired.
	src.pages, src.failAt = [][]mdebridge.Machine{machines(0, 5), machines(5, 8)}, 1
	run, _ = e.Run(t.Context(), syncer.RunOptions{})
	if run.Status != mdebridge.StatusFailed || !strings.Contains(run.Steps[0].Error, "503") || live() != 10 {
		t.Fatalf("failed sync: %+v, %d live", run.Steps[0], live())
	}
	// A complete pass retires them.
	src.failAt = -1
	run, _ = e.Run(t.Context(), syncer.RunOptions{})
	if run.Status != mdebridge.StatusSucceeded || run.Steps[0].Retired != 2 || live() != 8 {
		t.Fatalf("complete sync: %+v, %d live", run.Steps[0], live())
	}
	// An empty listing keeps what is stored.
	src.pages = nil
	run, _ = e.Run(t.Context(), syncer.RunOptions{})
	if run.Status != mdebridge.StatusSucceeded || run.Steps[0].Retired != 0 || live() != 8 {
		t.Fatalf("empty listing: %+v, %d live", run.Steps[0], live())
	}
}

type countingRunner struct {
	mu    sync.Mutex
	times []time.Time
	err   error
}

func (c *countingRunner) Run(ctx context.Context, o syncer.RunOptions) (*mdebridge.SyncRun, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.times = append(c.times, time.Now())
	return &mdebridge.SyncRun{Trigger: o.Trigger}, c.err
}

func TestSchedulerRunsAtStartAndEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &countingRunner{err: errors.New("boom")}
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		var wg sync.WaitGroup
		wg.Go(func() { (&syncer.Scheduler{Engine: r, Interval: time.Hour}).Run(ctx) })
		time.Sleep(3*time.Hour + time.Minute)
		cancel()
		wg.Wait()
		if len(r.times) != 4 {
			t.Fatalf("%d runs in 3h01m, want 4 (at 0, 1h, 2h, 3h)", len(r.times))
		}
		for i, ts := range r.times {
			if got := ts.Sub(start); got != time.Duration(i)*time.Hour {
				t.Errorf("run %d at %v", i, got)
			}
		}
	})
}

func TestPipelinedStopsBothSides(t *testing.T) {
	db := openStore(t)
	// A store failure stops the listing.
	src := &pagedSource{failAt: -1, pages: [][]mdebridge.Machine{machines(0, 2), machines(2, 4), machines(4, 6)}}
	bad := &failingStore{MachineStore: db, failAfter: 1}
	e, _ := syncer.New(syncer.Options{Store: db, Steps: []syncer.Step{syncer.MachinesStep{Source: src, Store: bad}}})
	run, err := e.Run(t.Context(), syncer.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != mdebridge.StatusFailed || !strings.Contains(run.Steps[0].Error, "disk full") {
		t.Errorf("store failure: %+v", run.Steps[0])
	}
}

type failingStore struct {
	mdebridge.MachineStore
	failAfter int
	calls     int
}

func (f *failingStore) UpsertMachines(ctx context.Context, run int64, ms []mdebridge.Machine) error {
	f.calls++
	if f.calls > f.failAfter {
		return errors.New("disk full")
	}
	return f.MachineStore.UpsertMachines(ctx, run, ms)
}
