// Package incident turns MDE alerts into incidents, kept current, and hands
// every change to sinks: a poller that reads alerts by lastUpdateTime
// (keyset-paged, with periodic sweeps for alerts that show up late), a
// store that dedupes by alert id and lastUpdateTime and appends each change
// to an event outbox in the same transaction as the poll checkpoint, one
// dispatcher per sink that follows the outbox at its own pace, and a mirror
// that sends changes made in mdebridge back to MDE.
//
// Delivery is at least once per sink and exactly once to a sink that can
// tell what it already holds (the JSON Lines file): a process killed at any
// point resumes from the store without missing or repeating an alert, and
// every event carries a stable id for receivers that dedupe. It must never
// block one sink on another, nor the poller on any sink.
package incident

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mdebridge/mdebridge"
)

// Store is what the pipeline keeps its state in.
type Store interface {
	mdebridge.IncidentStore
	mdebridge.AlertStore
}

// Options configure a Pipeline.
type Options struct {
	Source mdebridge.AlertSource // required
	Store  Store                 // required
	Sinks  []mdebridge.EventSink
	Logger *slog.Logger
	// Registerer receives the pipeline's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	Now        func() time.Time

	// PollInterval is how often the poller asks for changed alerts
	// (default 5s: the latency target, within the rate budget of 1,500
	// calls an hour with room for bursts and the CLI).
	PollInterval time.Duration
	// SweepInterval is how often a sweep re-reads the Overlap window for
	// alerts that became visible late (default 1m); Overlap defaults to
	// 10m.
	SweepInterval time.Duration
	Overlap       time.Duration
	// FirstFetch is how far back the first poll of a new store reaches
	// (default 72h).
	FirstFetch time.Duration
	// PageSize is the $top of a poll (default and maximum 10,000).
	PageSize int
	// GroupBy is mdebridge.GroupByAlert (default) or GroupByMDEIncident.
	GroupBy string
	Filters mdebridge.IncidentFilters
	// PortalURL is the security portal, for links in events.
	PortalURL string
	// Mirror sends changes made in mdebridge to MDE.
	Mirror bool
	// EventRetention is how long delivered events are kept (default 720h).
	EventRetention time.Duration
	// Owner names this process in the pipeline's lease (default
	// "host:pid"); a lease not renewed for StaleAfter (default 1m) is taken
	// over.
	Owner      string
	StaleAfter time.Duration
	// DispatchBatch is how many events a sink is offered at once
	// (default 500).
	DispatchBatch int
}

const leaseName = "incident-pipeline"

// Pipeline is the incident pipeline of one store.
type Pipeline struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
	service *Service

	mu   sync.Mutex
	wake []chan struct{} // one per dispatcher
}

// New validates the options and returns a pipeline.
func New(opts Options) (*Pipeline, error) {
	if opts.Source == nil || opts.Store == nil {
		return nil, errors.New("incident: Source and Store are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	defaults := []struct {
		d   *time.Duration
		def time.Duration
	}{{&opts.PollInterval, 5 * time.Second}, {&opts.SweepInterval, time.Minute}, {&opts.Overlap, 10 * time.Minute},
		{&opts.FirstFetch, 72 * time.Hour}, {&opts.EventRetention, 720 * time.Hour}, {&opts.StaleAfter, time.Minute}}
	for _, d := range defaults {
		if *d.d <= 0 {
			*d.d = d.def
		}
	}
	if opts.PageSize <= 0 || opts.PageSize > 10000 {
		opts.PageSize = 10000
	}
	if opts.DispatchBatch <= 0 {
		opts.DispatchBatch = 500
	}
	switch opts.GroupBy {
	case "":
		opts.GroupBy = mdebridge.GroupByAlert
	case mdebridge.GroupByAlert, mdebridge.GroupByMDEIncident:
	default:
		return nil, fmt.Errorf("incident: GroupBy %q is not %s or %s", opts.GroupBy, mdebridge.GroupByAlert, mdebridge.GroupByMDEIncident)
	}
	names := map[string]bool{}
	for _, s := range opts.Sinks {
		if names[s.Name()] {
			return nil, fmt.Errorf("incident: two sinks named %q", s.Name())
		}
		names[s.Name()] = true
	}
	if opts.Owner == "" {
		host, _ := os.Hostname()
		opts.Owner = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{opts: opts, log: opts.Logger, metrics: m}
	p.service = &Service{store: opts.Store, source: opts.Source, log: opts.Logger, now: opts.Now, mirror: opts.Mirror,
		ingest: p.ingestOptions(nil), metrics: m, notify: p.notify}
	return p, nil
}

// Service is the pipeline's way to change incidents on a user's behalf;
// the events such changes make reach the sinks at once.
func (p *Pipeline) Service() *Service { return p.service }

func (p *Pipeline) ingestOptions(cp *mdebridge.PollCheckpoint) mdebridge.IngestOptions {
	return mdebridge.IngestOptions{GroupBy: p.opts.GroupBy, Filters: p.opts.Filters, PortalURL: p.opts.PortalURL, Checkpoint: cp}
}

// Run runs the pipeline until ctx ends: it waits for the lease (another
// process may run the pipeline on this store), then polls, dispatches to
// every sink and mirrors changes, each at its own pace. It returns nil
// when ctx ends and closes the sinks.
func (p *Pipeline) Run(ctx context.Context) error {
	defer func() {
		for _, s := range p.opts.Sinks {
			if err := s.Close(); err != nil {
				p.log.Warn("close sink", "sink", s.Name(), "err", err)
			}
		}
	}()
	if !p.acquire(ctx) {
		return nil
	}
	defer func() {
		releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := p.opts.Store.ReleaseLease(releaseCtx, leaseName, p.opts.Owner); err != nil {
			p.log.Warn("release the incident pipeline lease", "err", err)
		}
	}()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := p.heartbeat(ctx); err != nil {
			cancel(err)
		}
	})
	for _, s := range p.opts.Sinks {
		w := p.newWake()
		wg.Go(func() { p.dispatch(ctx, s, w) })
	}
	if p.opts.Mirror {
		wg.Go(func() { p.mirrorLoop(ctx) })
	}
	p.pollLoop(ctx)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func (p *Pipeline) newWake() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := make(chan struct{}, 1)
	p.wake = append(p.wake, w)
	return w
}

// notify tells the dispatchers that there are new events.
func (p *Pipeline) notify() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range p.wake {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// acquire waits until this process holds the pipeline's lease, or ctx
// ends (then false).
func (p *Pipeline) acquire(ctx context.Context) bool {
	warned := false
	for {
		err := p.opts.Store.AcquireLease(ctx, leaseName, p.opts.Owner, p.stale)
		if err == nil {
			p.log.Info("incident pipeline started", "owner", p.opts.Owner, "sinks", len(p.opts.Sinks), "groupBy", p.opts.GroupBy)
			return true
		}
		var held *mdebridge.LeaseHeldError
		switch {
		case errors.As(err, &held) && !warned:
			p.log.Warn("the incident pipeline runs in another process; standing by", "owner", held.Lease.Owner)
			warned = true
		case !errors.As(err, &held) && ctx.Err() == nil:
			p.log.Error("take the incident pipeline lease", "err", err)
		}
		if !sleep(ctx, p.opts.StaleAfter/2) {
			return false
		}
	}
}

func (p *Pipeline) heartbeat(ctx context.Context) error {
	t := time.NewTicker(p.opts.StaleAfter / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := p.opts.Store.RenewLease(ctx, leaseName, p.opts.Owner); err != nil && ctx.Err() == nil {
				p.log.Error("the incident pipeline lost its lease; stopping", "err", err)
				return fmt.Errorf("incident pipeline lease: %w", err)
			}
		}
	}
}

// stale says whether another owner's lease may be taken over: its
// heartbeat is old, or it belongs to a process of this host that is gone
// (killed: the restarted process takes over at once).
func (p *Pipeline) stale(l mdebridge.Lease) bool {
	if p.opts.Now().Sub(l.HeartbeatAt) > p.opts.StaleAfter {
		return true
	}
	host, pidText, ok := strings.Cut(l.Owner, ":")
	me, _, _ := strings.Cut(p.opts.Owner, ":")
	pid, err := strconv.Atoi(pidText)
	if !ok || err != nil || host != me {
		return false
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return true
	}
	err = proc.Signal(syscall.Signal(0))
	return err != nil && !errors.Is(err, syscall.EPERM)
}

// sleep waits d or until ctx ends; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
