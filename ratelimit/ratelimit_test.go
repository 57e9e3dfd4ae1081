package ratelimit_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mdebridge/mdebridge/ratelimit"
)

func TestAllowSlidingWindow(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := ratelimit.New(func() time.Time { return now }, ratelimit.Window{Limit: 3, Per: time.Minute})
	for i := range 3 {
		if ok, _, _ := l.Allow(); !ok {
			t.Fatalf("call %d refused", i)
		}
		now = now.Add(10 * time.Second)
	}
	// Calls at 0s, 10s, 20s; now is 30s: the next slot frees at 60s.
	ok, wait, full := l.Allow()
	if ok || wait != 30*time.Second || full.Limit != 3 {
		t.Fatalf("got ok=%v wait=%v full=%v; want refused, 30s, the 3/min window", ok, wait, full)
	}
	now = now.Add(30 * time.Second)
	if ok, _, _ := l.Allow(); !ok {
		t.Fatal("refused after the oldest call left the window")
	}
	// Now 60s: calls at 10s, 20s, 60s. Next frees at 70s.
	if _, wait, _ := l.Allow(); wait != 10*time.Second {
		t.Fatalf("wait = %v, want 10s", wait)
	}
}

func TestAllowNeedsEveryWindow(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := ratelimit.New(func() time.Time { return now },
		ratelimit.Window{Limit: 2, Per: time.Minute},
		ratelimit.Window{Limit: 3, Per: time.Hour})
	allowed := 0
	for range 10 {
		if ok, _, _ := l.Allow(); ok {
			allowed++
		}
		now = now.Add(time.Minute)
	}
	if allowed != 3 {
		t.Fatalf("allowed %d calls in 10 minutes, want 3 (the hourly window)", allowed)
	}
	_, wait, full := l.Allow()
	if full.Per != time.Hour || wait != 50*time.Minute {
		t.Fatalf("blocked by %v for %v, want the hourly window for 50m", full, wait)
	}
}

func TestRefusedCallIsNotCounted(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := ratelimit.New(func() time.Time { return now }, ratelimit.Window{Limit: 1, Per: time.Minute})
	l.Allow()
	for range 100 {
		l.Allow()
	}
	now = now.Add(time.Minute)
	if ok, _, _ := l.Allow(); !ok {
		t.Fatal("refused calls were counted against the window")
	}
}

func TestWaitPacesCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := ratelimit.New(nil, ratelimit.Window{Limit: 100, Per: time.Minute}, ratelimit.Window{Limit: 1500, Per: time.Hour})
		start := time.Now()
		for range 250 {
			if err := l.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		// 100 at once, 100 after a minute, 50 after two.
		if got := time.Since(start); got != 2*time.Minute {
			t.Fatalf("250 calls took %v, want 2m", got)
		}
	})
}

func TestWaitHonoursContextAndBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := ratelimit.New(nil, ratelimit.Window{Limit: 10, Per: time.Minute})
		l.BlockFor(30 * time.Second)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if err := l.Wait(ctx); err != context.DeadlineExceeded {
			t.Fatalf("Wait = %v, want deadline exceeded", err)
		}
		start := time.Now()
		if err := l.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 20*time.Second {
			t.Fatalf("waited %v after the block, want the remaining 20s", got)
		}
	})
}

func TestGroupKeepsOneLimiterPerKey(t *testing.T) {
	made := 0
	g := ratelimit.NewGroup(func(string) *ratelimit.Limiter {
		made++
		return ratelimit.New(nil, ratelimit.Window{Limit: 1, Per: time.Hour})
	})
	a := g.Get("a")
	if g.Get("a") != a || made != 1 {
		t.Fatal("Get made a second limiter for the same key")
	}
	g.Get("b")
	if made != 2 {
		t.Fatalf("made %d limiters, want 2", made)
	}
}
