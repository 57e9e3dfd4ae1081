// Package ratelimit counts calls in sliding windows, the way Microsoft's APIs
// count them ("100 calls per minute and 1,500 calls per hour"). The emulator
// uses it to decide when to answer 429 and for how long (Retry-After); the
// clients use the same windows to wait before a call, so that normal operation
// never meets a 429.
//
// A token bucket does not fit: a bucket of 100 refilled at 100/min lets 200
// calls through in the first minute, which the service would throttle. The
// sliding log here keeps the time of the last Limit calls of each window, which
// is exact and small (the largest documented window holds 1,500 entries).
//
// The package must stay free of any notion of HTTP, tenants or endpoints.
package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Window allows Limit calls in any period of length Per.
type Window struct {
	Limit int
	Per   time.Duration
}

func (w Window) String() string { return fmt.Sprintf("%d per %s", w.Limit, w.Per) }

// Limiter enforces several windows at once: a call is allowed only when every
// window has room. The zero value is not usable; call New.
type Limiter struct {
	mu       sync.Mutex
	now      func() time.Time
	windows  []Window
	logs     []ring
	blockTil time.Time
}

// ring holds the times of the most recent calls of one window, oldest first
// from start.
type ring struct {
	times []time.Time
	start int
	n     int
}

func (r *ring) oldest() time.Time { return r.times[r.start] }

func (r *ring) push(t time.Time) {
	if r.n < len(r.times) {
		r.times[(r.start+r.n)%len(r.times)] = t
		r.n++
		return
	}
	r.times[r.start] = t
	r.start = (r.start + 1) % len(r.times)
}

// New returns a limiter for the given windows. now may be nil for time.Now.
// Windows with a Limit below 1 or a Per of 0 are ignored, so New with no
// usable window allows everything.
func New(now func() time.Time, windows ...Window) *Limiter {
	if now == nil {
		now = time.Now
	}
	l := &Limiter{now: now}
	for _, w := range windows {
		if w.Limit < 1 || w.Per <= 0 {
			continue
		}
		l.windows = append(l.windows, w)
		l.logs = append(l.logs, ring{times: make([]time.Time, w.Limit)})
	}
	return l
}

// Windows returns the windows the limiter enforces.
func (l *Limiter) Windows() []Window { return append([]Window(nil), l.windows...) }

// Allow records a call now when every window has room and returns true.
// Otherwise it records nothing and returns how long until a call would be
// allowed and the window that is full.
func (l *Limiter) Allow() (ok bool, wait time.Duration, full Window) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if wait, full = l.waitLocked(now); wait > 0 {
		return false, wait, full
	}
	for i := range l.logs {
		l.logs[i].push(now)
	}
	return true, 0, Window{}
}

func (l *Limiter) waitLocked(now time.Time) (time.Duration, Window) {
	var wait time.Duration
	var full Window
	if d := l.blockTil.Sub(now); d > 0 {
		wait = d
	}
	for i, w := range l.windows {
		r := &l.logs[i]
		if r.n < w.Limit {
			continue
		}
		if d := r.oldest().Add(w.Per).Sub(now); d > wait {
			wait, full = d, w
		}
	}
	return wait, full
}

// Wait blocks until a call is allowed, records it and returns nil, or returns
// the context's error.
func (l *Limiter) Wait(ctx context.Context) error {
	for {
		ok, wait, _ := l.Allow()
		if ok {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// BlockFor makes every call wait at least d from now, as when the service
// answered 429 with Retry-After.
func (l *Limiter) BlockFor(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := l.now().Add(d); until.After(l.blockTil) {
		l.blockTil = until
	}
}

// Group keeps one Limiter per key, made on first use.
type Group struct {
	mu  sync.Mutex
	m   map[string]*Limiter
	new func(key string) *Limiter
}

// NewGroup returns a group whose limiters are made by newLimiter.
func NewGroup(newLimiter func(key string) *Limiter) *Group {
	return &Group{m: make(map[string]*Limiter), new: newLimiter}
}

// Get returns the limiter of key.
func (g *Group) Get(key string) *Limiter {
	g.mu.Lock()
	defer g.mu.Unlock()
	l, ok := g.m[key]
	if !ok {
		l = g.new(key)
		g.m[key] = l
	}
	return l
}

// Reset forgets every limiter.
func (g *Group) Reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	clear(g.m)
}
