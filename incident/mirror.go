package incident

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mdebridge/mdebridge"
)

// Service changes incidents on a user's behalf (CLI, REST): the change is
// applied in the store at once, with its event, and sent to MDE. MDE's
// echo of it is silent (the store compares states), so nothing loops.
type Service struct {
	store   Store
	source  mdebridge.AlertSource
	log     *slog.Logger
	now     func() time.Time
	mirror  bool
	ingest  mdebridge.IngestOptions
	metrics *metrics
	notify  func() // wakes the dispatchers of a running pipeline
}

// ServiceOptions configure a Service used without a pipeline (the CLI).
type ServiceOptions struct {
	Store     Store                 // required
	Source    mdebridge.AlertSource // required when Mirror
	Logger    *slog.Logger
	Now       func() time.Time
	Mirror    bool
	GroupBy   string
	Filters   mdebridge.IncidentFilters
	PortalURL string
}

// NewService returns a Service.
func NewService(o ServiceOptions) (*Service, error) {
	if o.Store == nil || o.Mirror && o.Source == nil {
		return nil, errors.New("incident: Store (and Source, to mirror) are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m, _ := newMetrics(nil)
	return &Service{store: o.Store, source: o.Source, log: o.Logger, now: o.Now, mirror: o.Mirror, metrics: m,
		ingest: mdebridge.IngestOptions{GroupBy: o.GroupBy, Filters: o.Filters, PortalURL: o.PortalURL}}, nil
}

// ChangeIncident applies a change to an incident and sends it to MDE now.
// An error is about the change itself; a failure to reach MDE shows in the
// incident's Mirror status, and the change is retried by the pipeline.
func (s *Service) ChangeIncident(ctx context.Context, id int64, ch mdebridge.IncidentChange) (*mdebridge.Incident, error) {
	res, err := s.store.ChangeIncident(ctx, id, ch, s.ingest)
	if err != nil {
		return nil, err
	}
	if res.Event.Seq != 0 && s.notify != nil {
		s.notify()
	}
	if res.Mirror.ID == 0 || !s.mirror {
		return res.Incident, nil
	}
	claimed, err := s.store.ClaimMirrorChanges(ctx, res.Mirror.ID, s.now(), 1, claimFor)
	if err != nil {
		s.log.Warn("claim the change for MDE; the pipeline will send it", "incident", id, "err", err)
		return res.Incident, nil
	}
	for _, m := range claimed {
		s.send(ctx, m)
	}
	return s.store.GetIncident(ctx, id)
}

// ChangeAlert applies a change to one alert of an incident.
func (s *Service) ChangeAlert(ctx context.Context, alertID string, ch mdebridge.IncidentChange) (*mdebridge.Incident, error) {
	a, err := s.store.GetAlert(ctx, alertID)
	if err != nil {
		return nil, err
	}
	if a.IncidentRef == 0 {
		return nil, fmt.Errorf("alert %s is not part of an incident (it matched no incident filter): %w", a.ID, mdebridge.ErrInvalidUpdate)
	}
	ch.AlertIDs = []string{a.ID}
	return s.ChangeIncident(ctx, a.IncidentRef, ch)
}

var _ mdebridge.IncidentService = (*Service)(nil)

const (
	// claimFor is how long a sender owns a claimed change: if it dies, the
	// change is sent again after this.
	claimFor = 2 * time.Minute
	// maxMirrorAttempts bounds the attempts on one change.
	maxMirrorAttempts = 8
)

// send sends one claimed change to MDE and records the outcome. One alert
// is PATCHed and MDE's answer stored (silently: it is the echo); several
// are sent with batchUpdate and the next poll brings them back.
func (s *Service) send(ctx context.Context, m mdebridge.MirrorChange) {
	var err error
	if len(m.AlertIDs) == 1 {
		var a *mdebridge.Alert
		if a, err = s.source.UpdateAlert(ctx, m.AlertIDs[0], m.Update); err == nil {
			if _, ierr := s.store.IngestAlerts(ctx, []mdebridge.Alert{*a}, s.ingest); ierr != nil {
				s.log.Warn("store MDE's answer to a change; the next poll brings it", "alert", a.ID, "err", ierr)
			}
		}
	} else {
		err = s.source.BatchUpdateAlerts(ctx, m.AlertIDs, m.Update)
	}
	var o mdebridge.MirrorOutcome
	result := "done"
	switch {
	case err == nil:
		o.Done = true
	case permanent(err) || m.Attempts >= maxMirrorAttempts:
		o.Error, result = err.Error(), "failed"
		s.log.Error("a change could not be sent to MDE", "incident", m.IncidentID, "alerts", m.AlertIDs, "attempts", m.Attempts, "err", err)
	default:
		o.Error, result = err.Error(), "retry"
		o.RetryAt = s.now().Add(min(10*time.Second<<(m.Attempts-1), 10*time.Minute))
		s.log.Warn("sending a change to MDE failed; will retry", "incident", m.IncidentID, "attempt", m.Attempts, "retryAt", o.RetryAt, "err", err)
	}
	s.metrics.mirror.WithLabelValues(result).Inc()
	saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.store.CompleteMirrorChange(saveCtx, m.ID, o); err != nil {
		s.log.Error("record the outcome of a change sent to MDE", "change", m.ID, "err", err)
	}
}

// permanent says whether trying again cannot help: a missing permission,
// an alert MDE does not know, a change MDE refuses.
func permanent(err error) bool {
	var pe *mdebridge.PermissionError
	return errors.As(err, &pe) || errors.Is(err, mdebridge.ErrNotFound) || errors.Is(err, mdebridge.ErrInvalidUpdate)
}

// mirrorLoop sends the changes that are due (queued by another process,
// or waiting for a retry) until ctx ends. Changes made through the
// pipeline's Service are sent by the Service itself.
func (p *Pipeline) mirrorLoop(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		changes, err := p.opts.Store.ClaimMirrorChanges(ctx, 0, p.opts.Now(), 10, claimFor)
		if err != nil && ctx.Err() == nil {
			p.log.Error("claim changes for MDE", "err", err)
		}
		for _, m := range changes {
			p.service.send(ctx, m)
		}
		if len(changes) == 10 {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
