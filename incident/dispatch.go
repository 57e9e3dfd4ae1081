package incident

import (
	"context"
	"time"

	"github.com/mdebridge/mdebridge"
)

// dispatch follows the outbox for one sink until ctx ends: it offers the
// sink the events after its cursor, in order, and moves the cursor past
// what the sink handled. A sink that fails is offered the same events
// again after a backoff (1 s doubling to a minute); other sinks and the
// poller never wait for it. It also wakes every second, for events that
// another process (the CLI) appended.
func (p *Pipeline) dispatch(ctx context.Context, s mdebridge.EventSink, wake <-chan struct{}) {
	name := s.Name()
	log := p.log.With("sink", name)
	cursor, ok := p.startCursor(ctx, s)
	if !ok {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	backoff := time.Second
	fails := 0
	for ctx.Err() == nil {
		evs, err := p.opts.Store.FindEvents(ctx, mdebridge.EventFilter{After: cursor, Limit: p.opts.DispatchBatch})
		if err != nil {
			if ctx.Err() == nil {
				log.Error("read the event outbox", "err", err)
			}
			sleep(ctx, backoff)
			continue
		}
		if len(evs) == 0 {
			p.metrics.sinkPending.WithLabelValues(name).Set(0)
			select {
			case <-ctx.Done():
			case <-wake:
			case <-tick.C:
			}
			continue
		}
		d, err := s.Deliver(ctx, evs)
		if d.Handled > 0 {
			cursor = evs[d.Handled-1].Seq
			// Record what was handled even when shutting down.
			saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if serr := p.opts.Store.SetSinkCursor(saveCtx, name, cursor); serr != nil {
				log.Error("save the sink cursor", "err", serr)
			}
			cancel()
			now := p.opts.Now()
			for _, e := range evs[:d.Handled] {
				p.metrics.deliveryLag.WithLabelValues(name).Observe(max(now.Sub(e.CreatedAt), 0).Seconds())
			}
			p.metrics.sinkEvents.WithLabelValues(name, "delivered").Add(float64(d.Handled - d.DeadLettered))
			if d.DeadLettered > 0 {
				p.metrics.sinkEvents.WithLabelValues(name, "dead_lettered").Add(float64(d.DeadLettered))
			}
		}
		if last, lerr := p.opts.Store.LastEventSeq(ctx); lerr == nil {
			p.metrics.sinkPending.WithLabelValues(name).Set(float64(max(last-cursor, 0)))
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			fails++
			p.metrics.sinkFailures.WithLabelValues(name).Inc()
			if fails == 1 || fails%10 == 0 {
				log.Warn("sink delivery failed; will retry", "err", err, "handled", d.Handled, "consecutiveFailures", fails, "retryIn", backoff)
			}
			sleep(ctx, backoff)
			backoff = min(backoff*2, time.Minute)
			continue
		}
		fails, backoff = 0, time.Second
	}
}

// startCursor is where a sink starts: after the store's cursor, or after
// what the sink itself holds when it knows (a file written just before
// the process died).
func (p *Pipeline) startCursor(ctx context.Context, s mdebridge.EventSink) (int64, bool) {
	for {
		cursor, err := p.opts.Store.SinkCursor(ctx, s.Name())
		if err == nil {
			if r, ok := s.(mdebridge.EventSinkResumer); ok {
				held, rerr := r.Delivered()
				switch {
				case rerr != nil:
					p.log.Warn("read what the sink holds; resuming from the store's cursor", "sink", s.Name(), "err", rerr)
				case held > cursor:
					p.log.Info("sink holds events past its cursor; resuming after them", "sink", s.Name(), "cursor", cursor, "holds", held)
					cursor = held
					if err := p.opts.Store.SetSinkCursor(ctx, s.Name(), cursor); err != nil {
						p.log.Warn("save the sink cursor", "sink", s.Name(), "err", err)
					}
				}
			}
			return cursor, true
		}
		if ctx.Err() != nil {
			return 0, false
		}
		p.log.Error("read the sink cursor", "sink", s.Name(), "err", err)
		if !sleep(ctx, time.Second) {
			return 0, false
		}
	}
}
