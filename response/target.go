package response

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
)

// Target is a machine a request acts on.
type Target struct {
	ID   string
	Name string
}

func (t Target) isZero() bool { return t.ID == "" }

func targetOf(m mdebridge.Machine) Target { return Target{ID: m.ID, Name: m.ComputerDNSName} }

// Resolve checks a request and returns the machines it would act on, as
// Respond resolves them: for a confirmation prompt before the real thing.
func (s *Service) Resolve(ctx context.Context, req mdebridge.ActionRequest) ([]Target, error) {
	if _, err := s.normalize(&req); err != nil {
		return nil, err
	}
	return s.resolve(ctx, req)
}

// resolve turns the request's targets into machines. Every name must
// resolve to exactly one machine: an unknown one is an error with near
// matches, an ambiguous one an error with the candidates, and either stops
// the request before anything is sent.
//
// Names are looked up in the store first (it knows near matches and every
// machine with one name); one the store does not know is asked of MDE, so
// that a machine onboarded since the last sync can be acted on. An IP with
// a time (At) is MDE's findbyip: the machines that had it then.
func (s *Service) resolve(ctx context.Context, req mdebridge.ActionRequest) ([]Target, error) {
	if req.Tag != "" || req.Group != "" {
		ms, _, err := s.opts.Store.FindMachines(ctx, mdebridge.MachineFilter{Tag: req.Tag, RBACGroup: req.Group})
		if err != nil {
			return nil, err
		}
		if len(ms) == 0 {
			what := "tag " + req.Tag
			if req.Group != "" {
				what = "device group " + req.Group
			}
			return nil, fmt.Errorf("no synced machine has %s (the selection reads the store: run a sync first)", what)
		}
		out := make([]Target, len(ms))
		for i, m := range ms {
			out[i] = targetOf(m)
		}
		return out, nil
	}
	var out []Target
	seen := map[string]bool{}
	for _, key := range req.Targets {
		key = strings.TrimSpace(key)
		if key == "" {
			continue
		}
		ts, err := s.resolveOne(ctx, key, req.At)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			if !seen[strings.ToLower(t.ID)] {
				seen[strings.ToLower(t.ID)] = true
				out = append(out, t)
			}
		}
	}
	if len(out) == 0 {
		return nil, usage("name the machines: ids, computer names or IP addresses")
	}
	return out, nil
}

func (s *Service) resolveOne(ctx context.Context, key string, at time.Time) ([]Target, error) {
	_, ipErr := netip.ParseAddr(key)
	isIP := ipErr == nil
	if isIP && !at.IsZero() {
		return s.findByIP(ctx, key, at)
	}
	m, err := s.opts.Store.FindMachine(ctx, key)
	if err == nil {
		return []Target{targetOf(*m)}, nil
	}
	var amb *mdebridge.AmbiguousError
	if errors.As(err, &amb) || !errors.Is(err, mdebridge.ErrNotFound) {
		return nil, err
	}
	storeErr := err
	if isIP {
		ts, err := s.findByIP(ctx, key, s.now())
		if errors.Is(err, mdebridge.ErrNotFound) {
			return nil, storeErr
		}
		return ts, err
	}
	got, err := s.opts.Client.GetMachine(ctx, key)
	switch {
	case errors.Is(err, mdebridge.ErrNotFound):
		return nil, storeErr
	case err != nil:
		return nil, fmt.Errorf("look %q up in MDE: %w", key, err)
	}
	return []Target{targetOf(*got)}, nil
}

// findByIP asks MDE which machines used ip around at.
func (s *Service) findByIP(ctx context.Context, ip string, at time.Time) ([]Target, error) {
	ms, err := s.opts.Client.FindMachinesByIP(ctx, ip, at)
	if err != nil {
		return nil, fmt.Errorf("find the machine with IP %s: %w", ip, err)
	}
	switch len(ms) {
	case 0:
		return nil, &mdebridge.NotFoundError{Kind: "machine with IP", Key: ip + " at " + at.UTC().Format(time.RFC3339)}
	case 1:
		return []Target{targetOf(ms[0])}, nil
	}
	cands := make([]string, len(ms))
	for i, m := range ms {
		cands[i] = fmt.Sprintf("%s (%s)", m.ComputerDNSName, m.ID)
	}
	return nil, &mdebridge.AmbiguousError{Key: ip, Candidates: cands}
}
