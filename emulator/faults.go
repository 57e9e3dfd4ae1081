package emulator

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault is an injected failure: calls to Route are delayed, refused, or
// answered with a damaged body. The first fault that matches a call and
// fires (see Rate and Count) applies to it.
type Fault struct {
	ID int `json:"id"`
	// Route is a route key ("GET /api/machines"), a route template without
	// a method ("/api/machines/{id}": every method), or "*" / "" for every
	// Microsoft route. Matched case-insensitively; an unknown route is an
	// error.
	Route string `json:"route"`
	// Status answers the call with this status and an error body of the
	// route's service (MDE or Entra) instead of handling it.
	Status int `json:"status,omitempty"`
	// Rate is the probability that a matching call is hit, drawn from a
	// seeded generator so runs repeat; 0 means always.
	Rate float64 `json:"rate,omitempty"`
	// Count is how many calls the fault hits before it retires; 0 means
	// until deleted.
	Count int `json:"count,omitempty"`
	// Skip lets this many matching calls through untouched before the
	// fault starts to apply, e.g. to fail the second page of a listing.
	Skip int `json:"skip,omitempty"`
	// LatencyMs delays the answer.
	LatencyMs int `json:"latencyMs,omitempty"`
	// Throttle answers 429 TooManyRequests with Retry-After: RetryAfter
	// (default 1) seconds, as a quota storm would.
	Throttle   bool `json:"throttle,omitempty"`
	RetryAfter int  `json:"retryAfter,omitempty"`
	// TruncateBody cuts the connection half way through the body.
	TruncateBody bool `json:"truncateBody,omitempty"`
	// MalformedBody sends a complete response whose body is not valid JSON.
	MalformedBody bool `json:"malformedBody,omitempty"`
	// Hits counts the calls the fault has applied to.
	Hits int `json:"hits"`
}

type faultSet struct {
	mu     sync.Mutex
	rng    *rand.Rand
	nextID int
	faults []*Fault
}

func (f *faultSet) init() {
	f.rng = rand.New(rand.NewPCG(1, 2))
	f.nextID = 1
}

// AddFault injects a fault and returns it with its id.
func (s *Server) AddFault(f Fault) (Fault, error) {
	if err := s.checkFault(&f); err != nil {
		return Fault{}, err
	}
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	f.ID, f.Hits = s.faults.nextID, 0
	s.faults.nextID++
	s.faults.faults = append(s.faults.faults, &f)
	s.log.Info("emulator: fault injected", "id", f.ID, "route", f.Route, "status", f.Status, "throttle", f.Throttle,
		"latencyMs", f.LatencyMs, "truncate", f.TruncateBody, "malformed", f.MalformedBody, "rate", f.Rate, "count", f.Count)
	return f, nil
}

func (s *Server) checkFault(f *Fault) error {
	switch {
	case f.Rate < 0 || f.Rate > 1:
		return fmt.Errorf("fault rate %v: want a probability from 0 to 1", f.Rate)
	case f.Count < 0:
		return fmt.Errorf("fault count %d is negative", f.Count)
	case f.Skip < 0:
		return fmt.Errorf("fault skip %d is negative", f.Skip)
	case f.LatencyMs < 0:
		return fmt.Errorf("fault latency %d ms is negative", f.LatencyMs)
	case f.Status != 0 && (f.Status < 100 || f.Status > 599):
		return fmt.Errorf("fault status %d is not an HTTP status", f.Status)
	case f.RetryAfter < 0:
		return fmt.Errorf("fault retryAfter %d is negative", f.RetryAfter)
	case f.Status == 0 && !f.Throttle && f.LatencyMs == 0 && !f.TruncateBody && !f.MalformedBody:
		return errors.New("fault does nothing: set status, throttle, latencyMs, truncateBody or malformedBody")
	}
	if r := strings.TrimSpace(f.Route); r != "" && r != "*" {
		var found bool
		for _, rt := range s.routes.byKey(normalizeRouteKey(r)) {
			found = found || rt.surface != surfaceControl
		}
		if !found {
			return fmt.Errorf("fault route %q: no such route (use a key of GET /_emulator/stats, such as \"GET /api/machines\", or a template such as \"/api/machines/{id}\")", f.Route)
		}
	}
	return nil
}

// normalizeRouteKey collapses the spaces between method and path.
func normalizeRouteKey(k string) string {
	f := strings.Fields(k)
	return strings.Join(f, " ")
}

// Faults lists the injected faults with their hit counts.
func (s *Server) Faults() []Fault {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	out := make([]Fault, 0, len(s.faults.faults))
	for _, f := range s.faults.faults {
		out = append(out, *f)
	}
	return out
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.faults = nil
}

// RemoveFault removes one fault and reports whether it existed.
func (s *Server) RemoveFault(id int) bool {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	i := slices.IndexFunc(s.faults.faults, func(f *Fault) bool { return f.ID == id })
	if i < 0 {
		return false
	}
	s.faults.faults = slices.Delete(s.faults.faults, i, i+1)
	return true
}

func (f *Fault) matches(rt *route) bool {
	r := normalizeRouteKey(f.Route)
	return r == "" || r == "*" || strings.EqualFold(r, rt.key) || strings.EqualFold(r, rt.template)
}

// fire picks the fault that applies to a call of rt, if any, and counts the
// hit. A fault whose Count is used up is dropped.
func (f *faultSet) fire(rt *route) *Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, ft := range f.faults {
		if !ft.matches(rt) {
			continue
		}
		if ft.Skip > 0 {
			ft.Skip--
			continue
		}
		if ft.Rate > 0 && ft.Rate < 1 && f.rng.Float64() >= ft.Rate {
			continue
		}
		ft.Hits++
		hit := *ft
		if ft.Count > 0 && ft.Hits >= ft.Count {
			f.faults = slices.Delete(f.faults, i, i+1)
		}
		return &hit
	}
	return nil
}

// applyFault applies an injected fault to the call. It returns true when
// the fault has answered the call.
func (s *Server) applyFault(x *exchange) bool {
	f := s.faults.fire(x.route)
	if f == nil {
		return false
	}
	s.log.Info("emulator: fault applied", "id", f.ID, "route", x.route.key)
	if f.LatencyMs > 0 {
		t := time.NewTimer(time.Duration(f.LatencyMs) * time.Millisecond)
		select {
		case <-t.C:
		case <-x.r.Context().Done():
			t.Stop()
			x.status = 499 // the client went away
			return true
		}
	}
	switch {
	case f.Throttle:
		s.countThrottled()
		x.w.Header().Set("Retry-After", strconv.Itoa(max(1, f.RetryAfter)))
		if x.route.surface == surfaceEntra {
			x.aadFail(http.StatusTooManyRequests, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.")
			return true
		}
		if x.route.surface == surfaceBlob {
			x.blobError(http.StatusServiceUnavailable, "ServerBusy", "The server is busy.", "")
			return true
		}
		x.mdeError(http.StatusTooManyRequests, "TooManyRequests", "API calls quota exceeded! maximum allowed 100 per 00:01:00")
		return true
	case f.Status != 0:
		if f.Status < 400 {
			x.empty(f.Status)
			return true
		}
		if x.route.surface == surfaceEntra {
			x.aadFail(f.Status, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.")
			return true
		}
		if x.route.surface == surfaceBlob {
			x.injectedBlobError(f.Status)
			return true
		}
		code, msg := errorCodeFor(f.Status)
		x.mdeError(f.Status, code, msg)
		return true
	}
	x.fault = f
	return false
}

// errorCodeFor is the MDE error code and message for an injected status.
func errorCodeFor(status int) (string, string) {
	switch status {
	case http.StatusBadRequest:
		return "BadRequest", "Bad request"
	case http.StatusUnauthorized:
		return "Unauthorized", "Unauthorized"
	case http.StatusForbidden:
		return "Forbidden", "Forbidden"
	case http.StatusNotFound:
		return "NotFound", "Not found"
	case http.StatusTooManyRequests:
		return "TooManyRequests", "API calls quota exceeded! maximum allowed 100 per 00:01:00"
	case http.StatusInternalServerError:
		return "InternalServerError", ""
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable", "The service is temporarily unavailable."
	}
	return strings.ReplaceAll(http.StatusText(status), " ", ""), http.StatusText(status)
}
