package syncer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/mdebridge/mdebridge"
)

// Scheduler runs a sync at start and then every Interval until its context
// ends. A run that fails is retried at the next tick, never sooner: the
// upstream rate budget is shared with everything else.
type Scheduler struct {
	Engine   Runner
	Interval time.Duration
	// FirstAfter delays the first run (default: run at once).
	FirstAfter time.Duration
	Logger     *slog.Logger
	// OnRun, when set, sees each finished run.
	OnRun func(*mdebridge.SyncRun, error)
}

// Runner runs one sync; *Engine is one.
type Runner interface {
	Run(ctx context.Context, o RunOptions) (*mdebridge.SyncRun, error)
}

// Run blocks until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTimer(s.FirstAfter)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		run, err := s.Engine.Run(ctx, RunOptions{Trigger: "schedule"})
		var busy *mdebridge.RunInProgressError
		switch {
		case errors.Is(err, ErrBusy), errors.As(err, &busy):
			log.Info("scheduled sync skipped", "reason", err)
		case err != nil && ctx.Err() == nil:
			log.Error("scheduled sync", "err", err)
		}
		if s.OnRun != nil {
			s.OnRun(run, err)
		}
		t.Reset(s.Interval)
	}
}
