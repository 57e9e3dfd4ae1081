package response

import (
	"testing"
	"time"
)

// simulate polls an action that ends T after start, with an expectation of
// expect (0: none), and returns the calls made and how late the end was seen.
func simulate(T, expect time.Duration) (calls int, late time.Duration) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var exp time.Time
	if expect > 0 {
		exp = start.Add(expect)
	}
	last := start
	for {
		next := nextPoll(start, last, calls, exp)
		calls++
		last = next
		if !next.Before(start.Add(T)) {
			return calls, next.Sub(start.Add(T))
		}
		if calls > 10000 {
			panic("no end")
		}
	}
}

// The budget holds for every duration, with or without an expectation; an
// accurate expectation sees the end within a second, none within two, and a
// wrong one within the back-off.
func TestPollBudgetAndLatency(t *testing.T) {
	for T := 500 * time.Millisecond; T <= 30*time.Minute; T += T/7 + 300*time.Millisecond {
		for _, tc := range []struct {
			name         string
			expect       time.Duration
			maxLate      time.Duration
			checkLateFor [2]time.Duration // only for T in this range (the budget allows no better below)
		}{
			{"accurate", T, time.Second, [2]time.Duration{0, 24 * time.Hour}},
			{"slightly early", T - 400*time.Millisecond, time.Second, [2]time.Duration{5 * time.Second, 24 * time.Hour}},
			{"slightly late", T + 400*time.Millisecond, time.Second, [2]time.Duration{0, 24 * time.Hour}},
			{"a fifth too long", T * 6 / 5, time.Second, [2]time.Duration{10 * time.Second, 10 * time.Minute}},
			{"a fifth too short", T * 4 / 5, time.Second, [2]time.Duration{10 * time.Second, 10 * time.Minute}},
			{"none", 0, 2 * time.Second, [2]time.Duration{0, 20 * time.Second}},
			{"far too short", T / 3, 2 * time.Second, [2]time.Duration{0, 20 * time.Second}},
		} {
			calls, late := simulate(T, tc.expect)
			if budget := 1 + int(T/(2*time.Second)); calls > budget+1 {
				// +1: the call that sees the end may come after T.
				t.Errorf("T=%v %s: %d calls, budget %d", T, tc.name, calls, budget)
			}
			if T >= tc.checkLateFor[0] && T <= tc.checkLateFor[1] && late > tc.maxLate {
				t.Errorf("T=%v %s: saw the end %v late", T, tc.name, late)
			}
			if late > maxPollGap+time.Second {
				t.Errorf("T=%v %s: silent for %v", T, tc.name, late)
			}
		}
	}
}
