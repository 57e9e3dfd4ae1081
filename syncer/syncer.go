// Package syncer runs sync steps: each step pulls one kind of entity from a
// source into the store. Steps declare what they need; a step whose
// dependency failed is skipped, the others still run, and what succeeded is
// kept (a partial run). Each run holds a lease in the store so two processes
// never sync the same store at once, and records for every step its status,
// items, API calls and duration.
//
// The engine never retires data itself: a step retires what it no longer sees
// only after a complete pass of its own.
package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mdebridge/mdebridge"
)

// Step is one unit of a sync.
type Step interface {
	// Name identifies the step in summaries, checkpoints and metrics.
	Name() string
	// Needs names the steps that must succeed before this one runs.
	Needs() []string
	// Run does the work. It reports progress through r.
	Run(ctx context.Context, r *StepRun) error
}

// StepRun is what a running step can see and report.
type StepRun struct {
	RunID  int64
	Full   bool
	Logger *slog.Logger
	// Checkpoint is what the step saved last time (any run), for resuming.
	Checkpoint string

	mu         sync.Mutex
	items      int
	retired    int
	checkpoint string
	onProgress func(items int)
}

// AddItems counts n more items stored.
func (r *StepRun) AddItems(n int) {
	r.mu.Lock()
	r.items += n
	items := r.items
	r.mu.Unlock()
	if r.onProgress != nil {
		r.onProgress(items)
	}
}

// SetRetired records how many entities the step retired.
func (r *StepRun) SetRetired(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retired = n
}

// SaveCheckpoint records resumption state, kept with the step's result.
func (r *StepRun) SaveCheckpoint(cp string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checkpoint = cp
}

// Progress is reported while a run goes on.
type Progress struct {
	Step   string
	Status mdebridge.Status
	Items  int
}

// Options configure an Engine.
type Options struct {
	Store  mdebridge.SyncStore // required
	Steps  []Step              // required, at least one
	Logger *slog.Logger
	// Registerer receives the engine's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Owner names this process in run leases; default "host:pid".
	Owner string
	// DescribeError words a step's error for its recorded result (default
	// err.Error()); the composition root adds what to do about it.
	DescribeError func(error) string
	// Heartbeat is how often a running run renews its lease (default 30s);
	// a lease not renewed for StaleAfter (default 3m) is taken over.
	Heartbeat  time.Duration
	StaleAfter time.Duration
}

// Engine runs syncs.
type Engine struct {
	opts    Options
	order   []Step
	log     *slog.Logger
	mu      sync.Mutex // one run at a time in this process
	metrics *metrics
}

// New validates the steps (unique names, known dependencies, no cycles) and
// returns an engine.
func New(opts Options) (*Engine, error) {
	if opts.Store == nil {
		return nil, errors.New("syncer: Store is required")
	}
	if len(opts.Steps) == 0 {
		return nil, errors.New("syncer: no steps")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Owner == "" {
		host, _ := os.Hostname()
		opts.Owner = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if opts.DescribeError == nil {
		opts.DescribeError = func(err error) string { return err.Error() }
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 30 * time.Second
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = 3 * time.Minute
	}
	order, err := topoSort(opts.Steps)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Engine{opts: opts, order: order, log: opts.Logger, metrics: m}, nil
}

func topoSort(steps []Step) ([]Step, error) {
	byName := map[string]Step{}
	for _, s := range steps {
		if _, dup := byName[s.Name()]; dup {
			return nil, fmt.Errorf("syncer: two steps named %q", s.Name())
		}
		byName[s.Name()] = s
	}
	var order []Step
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(s Step, path []string) error
	visit = func(s Step, path []string) error {
		switch state[s.Name()] {
		case 1:
			return fmt.Errorf("syncer: dependency cycle %s", strings.Join(append(path, s.Name()), " -> "))
		case 2:
			return nil
		}
		state[s.Name()] = 1
		for _, n := range s.Needs() {
			dep, ok := byName[n]
			if !ok {
				return fmt.Errorf("syncer: step %q needs unknown step %q", s.Name(), n)
			}
			if err := visit(dep, append(path, s.Name())); err != nil {
				return err
			}
		}
		state[s.Name()] = 2
		order = append(order, s)
		return nil
	}
	for _, s := range steps {
		if err := visit(s, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// Steps names the steps in the order they run.
func (e *Engine) Steps() []string {
	names := make([]string, len(e.order))
	for i, s := range e.order {
		names[i] = s.Name()
	}
	return names
}

// RunOptions select what a run does.
type RunOptions struct {
	Trigger string // cli, schedule, api, demo
	Full    bool   // ignore checkpoints and deltas
	// Only runs these steps (and not their dependencies); empty runs all.
	Only []string
	// Progress, when set, is called as steps start, advance and end.
	Progress func(Progress)
}

// ErrBusy is returned when this process is already running a sync.
var ErrBusy = errors.New("a sync is already running in this process")

// Run performs one sync. It returns the run (also when some steps failed:
// then the run's status is partial or failed) and an error only when the run
// could not start or record its outcome.
func (e *Engine) Run(ctx context.Context, o RunOptions) (*mdebridge.SyncRun, error) {
	if !e.mu.TryLock() {
		return nil, ErrBusy
	}
	defer e.mu.Unlock()
	for _, n := range o.Only {
		if !slices.Contains(e.Steps(), n) {
			return nil, fmt.Errorf("unknown step %q (steps: %s)", n, strings.Join(e.Steps(), ", "))
		}
	}
	run := &mdebridge.SyncRun{Trigger: o.Trigger, Full: o.Full, Owner: e.opts.Owner}
	if err := e.opts.Store.StartRun(ctx, run, e.stale); err != nil {
		return nil, err
	}
	log := e.log.With("run", run.ID)
	log.Info("sync started", "trigger", o.Trigger, "full", o.Full)
	start := time.Now()

	hbCtx, stopHB := context.WithCancel(ctx)
	var hb sync.WaitGroup
	hb.Go(func() { e.heartbeat(hbCtx, run.ID) })
	defer func() { stopHB(); hb.Wait() }()

	failed := map[string]mdebridge.Status{} // steps that did not succeed
	for _, s := range e.order {
		if len(o.Only) > 0 && !slices.Contains(o.Only, s.Name()) {
			continue
		}
		res := e.runStep(ctx, run, s, o, failed, log)
		run.Steps = append(run.Steps, res)
		if res.Status != mdebridge.StatusSucceeded {
			failed[s.Name()] = res.Status
		}
	}
	run.Status = runStatus(ctx, run.Steps)
	// Record the outcome even when ctx was cancelled (Ctrl-C).
	finishCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := e.opts.Store.FinishRun(finishCtx, run); err != nil {
		return run, fmt.Errorf("record run %d: %w", run.ID, err)
	}
	e.metrics.runs.WithLabelValues(string(run.Status)).Inc()
	if run.Status == mdebridge.StatusSucceeded {
		e.metrics.lastSuccess.SetToCurrentTime()
	}
	log.Info("sync finished", "status", run.Status, "took", time.Since(start).Round(time.Millisecond))
	return run, nil
}

func (e *Engine) runStep(ctx context.Context, run *mdebridge.SyncRun, s Step, o RunOptions, failed map[string]mdebridge.Status, log *slog.Logger) mdebridge.StepResult {
	res := mdebridge.StepResult{Name: s.Name(), StartedAt: time.Now(), CallsByAPI: map[string]int{}}
	report := func(status mdebridge.Status, items int) {
		if o.Progress != nil {
			o.Progress(Progress{Step: s.Name(), Status: status, Items: items})
		}
	}
	save := func() {
		saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := e.opts.Store.SaveStep(saveCtx, run.ID, res); err != nil {
			log.Error("record step", "step", s.Name(), "err", err)
		}
	}
	for _, dep := range s.Needs() {
		if st, ok := failed[dep]; ok {
			res.Status, res.Error = mdebridge.StatusSkipped, fmt.Sprintf("skipped: step %s did not succeed", dep)
			if st == mdebridge.StatusNotPermitted {
				res.Status = st // not a failure either
			}
			save()
			report(res.Status, 0)
			return res
		}
	}
	cp := ""
	if !o.Full {
		var err error
		if cp, err = e.opts.Store.LastCheckpoint(ctx, s.Name()); err != nil {
			log.Warn("read checkpoint", "step", s.Name(), "err", err)
		}
	}
	sr := &StepRun{RunID: run.ID, Full: o.Full, Logger: log.With("step", s.Name()), Checkpoint: cp,
		onProgress: func(items int) { report(mdebridge.StatusRunning, items) }}
	res.Status = mdebridge.StatusRunning
	save()
	report(res.Status, 0)

	var calls mdebridge.APICalls
	err := s.Run(mdebridge.WithAPICalls(ctx, &calls), sr)
	res.CallsByAPI, res.APICalls = calls.Snapshot()
	if res.CallsByAPI == nil {
		res.CallsByAPI = map[string]int{}
	}
	sr.mu.Lock()
	res.Items, res.Retired, res.Checkpoint = sr.items, sr.retired, sr.checkpoint
	sr.mu.Unlock()
	res.DurationMS = time.Since(res.StartedAt).Milliseconds()
	var np notPermitted
	switch {
	case err == nil:
		res.Status = mdebridge.StatusSucceeded
	case errors.As(err, &np):
		res.Status, res.Error = mdebridge.StatusNotPermitted, e.opts.DescribeError(np.error)
	case ctx.Err() != nil:
		res.Status, res.Error = mdebridge.StatusInterrupted, "interrupted: "+err.Error()
	default:
		res.Status, res.Error = mdebridge.StatusFailed, e.opts.DescribeError(err)
	}
	save()
	report(res.Status, res.Items)
	e.metrics.observeStep(res)
	switch {
	case res.Status == mdebridge.StatusNotPermitted:
		log.Warn("step not permitted", "step", s.Name(), "err", err)
	case err != nil:
		log.Error("step failed", "step", s.Name(), "err", err)
	default:
		log.Info("step done", "step", s.Name(), "items", res.Items, "retired", res.Retired, "calls", res.APICalls, "took", time.Duration(res.DurationMS)*time.Millisecond)
	}
	return res
}

// NotPermitted marks err, a step's refusal for lack of a permission, as
// concerning an optional feature: the step is recorded as not-permitted
// with err's words and does not count towards the run's status, so an app
// granted only what it uses still syncs cleanly.
func NotPermitted(err error) error { return notPermitted{err} }

type notPermitted struct{ error }

func (e notPermitted) Unwrap() error { return e.error }

func runStatus(ctx context.Context, steps []mdebridge.StepResult) mdebridge.Status {
	ok, counted := 0, 0
	for _, s := range steps {
		if s.Status == mdebridge.StatusNotPermitted {
			continue
		}
		counted++
		if s.Status == mdebridge.StatusSucceeded {
			ok++
		}
	}
	switch {
	case ctx.Err() != nil:
		return mdebridge.StatusInterrupted
	case counted == 0 && len(steps) > 0:
		return mdebridge.StatusFailed // nothing it was permitted to do
	case ok == counted:
		return mdebridge.StatusSucceeded
	case ok == 0:
		return mdebridge.StatusFailed
	}
	return mdebridge.StatusPartial
}

func (e *Engine) heartbeat(ctx context.Context, runID int64) {
	t := time.NewTicker(e.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.opts.Store.Heartbeat(ctx, runID); err != nil && ctx.Err() == nil {
				e.log.Warn("renew sync lease", "run", runID, "err", err)
			}
		}
	}
}

// stale says whether another run's lease may be taken over: its heartbeat
// is old, or it belongs to a process on this host that no longer exists.
func (e *Engine) stale(r mdebridge.SyncRun) bool {
	if time.Since(r.HeartbeatAt) > e.opts.StaleAfter {
		return true
	}
	host, pidStr, ok := strings.Cut(r.Owner, ":")
	me, _, _ := strings.Cut(e.opts.Owner, ":")
	pid, err := strconv.Atoi(pidStr)
	if !ok || err != nil || host != me {
		return false
	}
	if r.Owner == e.opts.Owner {
		// Our own process holds no other run (e.mu), so this one is left over.
		return true
	}
	return !processAlive(pid)
}

func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}
