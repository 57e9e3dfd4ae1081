package incident

import (
	"context"
	"fmt"
	"time"

	"github.com/mdebridge/mdebridge"
)

// A pass reads alerts in lastUpdateTime order, page by page, from a
// position and stores each page with the position after it. Pages are
// keyed on the last timestamp seen rather than on a growing $skip: an alert
// updated while a pass pages moves to the end of the order, and with
// $skip alone the alert after it would slide into the part already read
// and be missed. Within one timestamp (a burst larger than a page shares
// one) $skip counts the alerts already read, less a margin that re-reads a
// few in case one of them moved away meanwhile; dedupe drops the re-reads.

// position is where reading stands: every alert version stamped before at
// has been read, and the first ties stamped exactly at it (in the
// service's order). ties == 0 means those at at are all read too, so the
// next read is strictly after at.
type position struct {
	at   time.Time
	ties int
}

func (p position) checkpoint(sweepFrom time.Time) mdebridge.PollCheckpoint {
	return mdebridge.PollCheckpoint{Watermark: p.at, Ties: p.ties, SweepFrom: sweepFrom}
}

// before reports whether p is behind q.
func (p position) before(q position) bool {
	if !p.at.Equal(q.at) {
		return p.at.Before(q.at)
	}
	if p.ties == 0 {
		return false // all of at is read: nothing at at is further
	}
	return q.ties == 0 || p.ties < q.ties
}

// margin is how many of the alerts already read at one timestamp a page
// of top reads again: a tenth of them, at least 10 but at most a tenth of
// the page, so that every page moves on by nine tenths at least however
// large the burst.
func margin(ties, top int) int { return min(ties, max(ties/10, 10), top/10) }

// query is the page request that continues from p.
func (p position) query(top int) mdebridge.AlertPageQuery {
	if p.ties == 0 {
		return mdebridge.AlertPageQuery{Since: p.at, Strict: true, Top: top, ExpandEvidence: true}
	}
	return mdebridge.AlertPageQuery{Since: p.at, Skip: p.ties - margin(p.ties, top), Top: top, ExpandEvidence: true}
}

// pollState is the poller's view of the checkpoint.
type pollState struct {
	main      position
	sweepFrom time.Time
	saved     bool // the checkpoint is in the store as it is here
}

// loadState reads the checkpoint, or starts one FirstFetch back.
func (p *Pipeline) loadState(ctx context.Context) (pollState, error) {
	cp, ok, err := p.opts.Store.PollCheckpoint(ctx)
	if err != nil {
		return pollState{}, fmt.Errorf("read the poll checkpoint: %w", err)
	}
	if !ok {
		now := p.opts.Now().UTC()
		// Nothing can be late for a poll that has not happened: the first
		// sweep looks back Overlap from now.
		return pollState{main: position{at: now.Add(-p.opts.FirstFetch)}, sweepFrom: now}, nil
	}
	return pollState{main: position{at: cp.Watermark, ties: cp.Ties}, sweepFrom: cp.SweepFrom, saved: true}, nil
}

// pollLoop polls every PollInterval and sweeps every SweepInterval until
// ctx ends. Failures back off (to 5 minutes): a missing permission must not
// be asked about 720 times an hour.
func (p *Pipeline) pollLoop(ctx context.Context) {
	var st pollState
	loaded := false
	lastSweep := p.opts.Now()
	lastPrune := time.Time{}
	fails := 0
	for {
		if !loaded {
			var err error
			if st, err = p.loadState(ctx); err == nil {
				loaded = true
			} else if ctx.Err() == nil {
				p.log.Error("incident poll", "err", err)
			}
		}
		if loaded {
			sweep := p.opts.Now().Sub(lastSweep) >= p.opts.SweepInterval
			err := p.pass(ctx, &st, sweep)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				fails++
				p.logFailure("incident poll", err, fails)
			default:
				fails = 0
				if sweep {
					lastSweep = p.opts.Now()
				}
			}
			if p.opts.Now().Sub(lastPrune) > 10*time.Minute {
				p.prune(ctx)
				lastPrune = p.opts.Now()
			}
		}
		wait := p.opts.PollInterval
		if fails > 0 {
			wait = min(p.opts.PollInterval<<min(fails, 10), 5*time.Minute)
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

// logFailure logs the first failure of a run of them, then every tenth.
func (p *Pipeline) logFailure(what string, err error, fails int) {
	if fails == 1 || fails%10 == 0 {
		p.log.Error(what, "err", err, "consecutiveFailures", fails)
	}
}

// pass reads every page from the main position (or, for a sweep, from the
// overlap window before the last sweep) to the end, storing each page
// with the checkpoint it reaches.
func (p *Pipeline) pass(ctx context.Context, st *pollState, sweep bool) error {
	kind := "poll"
	pos := st.main
	if sweep {
		kind = "sweep"
		pos = position{at: st.sweepFrom.Add(-p.opts.Overlap)}
	}
	start := p.opts.Now()
	var calls mdebridge.APICalls
	ctx = mdebridge.WithAPICalls(ctx, &calls)
	defer func() {
		by, _ := calls.Snapshot()
		for api, n := range by {
			p.metrics.apiCalls.WithLabelValues(api).Add(float64(n))
		}
		p.metrics.pollSeconds.WithLabelValues(kind).Observe(p.opts.Now().Sub(start).Seconds())
	}()
	first := true
	for page := 1; ; page++ {
		q := pos.query(p.opts.PageSize)
		if sweep && first {
			q.Strict = false // the overlap window starts at its first instant
		}
		first = false
		alerts, items, err := p.opts.Source.ListAlertsPage(ctx, q)
		if err != nil {
			p.metrics.polls.WithLabelValues(kind, "error").Inc()
			return fmt.Errorf("%s page %d: %w", kind, page, err)
		}
		// Where this page leaves reading: the last timestamp and how many
		// alerts at it have been read, counting those skipped.
		next := position{at: q.Since, ties: q.Skip}
		if q.Strict {
			next.ties = 0
		}
		valid := alerts[:0:0]
		for i := range alerts {
			a := &alerts[i]
			v := a.Version()
			if v.IsZero() {
				p.metrics.alerts.WithLabelValues("invalid").Inc()
				p.log.Warn("alert without lastUpdateTime or alertCreationTime left out", "alert", a.ID)
				continue
			}
			switch {
			case v.Equal(next.at):
				next.ties++
			case v.After(next.at):
				next = position{at: v, ties: 1}
			}
			valid = append(valid, *a)
		}
		short := items < q.Top
		if short {
			next.ties = 0 // everything at and before next.at is read
		}
		newState := *st
		if st.main.before(next) {
			newState.main = next
		}
		if sweep && short {
			newState.sweepFrom = newState.main.at
		}
		if err := p.store(ctx, valid, newState, *st); err != nil {
			p.metrics.polls.WithLabelValues(kind, "error").Inc()
			return fmt.Errorf("%s page %d: %w", kind, page, err)
		}
		newState.saved = true
		*st = newState
		if short {
			p.metrics.polls.WithLabelValues(kind, "ok").Inc()
			return nil
		}
		pos = next
	}
}

// store ingests one page with the state it reaches; an empty page whose
// state is already saved costs no write.
func (p *Pipeline) store(ctx context.Context, alerts []mdebridge.Alert, next, prev pollState) error {
	if len(alerts) == 0 && prev.saved && next.main == prev.main && next.sweepFrom.Equal(prev.sweepFrom) {
		return nil
	}
	cp := next.main.checkpoint(next.sweepFrom)
	res, err := p.opts.Store.IngestAlerts(ctx, alerts, p.ingestOptions(&cp))
	if err != nil {
		return err
	}
	now := p.opts.Now()
	for i, v := range res.Verdicts {
		p.metrics.alerts.WithLabelValues(string(v)).Inc()
		if v == mdebridge.VerdictNew || v == mdebridge.VerdictChanged {
			p.metrics.ingestLag.Observe(max(now.Sub(alerts[i].Version()), 0).Seconds())
		}
	}
	p.metrics.watermark.Set(float64(next.main.at.UnixNano()) / 1e9)
	if res.Events > 0 {
		p.metrics.events.Add(float64(res.Events))
		p.metrics.lastSeq.Set(float64(res.LastSeq))
		p.notify()
	}
	return nil
}

// prune deletes events older than the retention that every sink has
// handled.
func (p *Pipeline) prune(ctx context.Context) {
	delivered, err := p.opts.Store.LastEventSeq(ctx)
	if err != nil {
		return
	}
	for _, s := range p.opts.Sinks {
		c, err := p.opts.Store.SinkCursor(ctx, s.Name())
		if err != nil {
			return
		}
		delivered = min(delivered, c)
	}
	n, err := p.opts.Store.PruneEvents(ctx, p.opts.Now().Add(-p.opts.EventRetention), delivered)
	if err != nil {
		p.log.Warn("prune incident events", "err", err)
	} else if n > 0 {
		p.log.Info("pruned delivered incident events", "count", n, "olderThan", p.opts.EventRetention)
	}
}
