package response

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"sync"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/indicators"
)

// Enrichment kinds.
const (
	KindFile   = "file"
	KindIP     = "ip"
	KindDomain = "domain"
	KindURL    = "url"
	KindUser   = "user"
)

// DetectKind says what an observable is: a file hash, an IP address, a URL,
// a domain name, or (a bare name) a user account.
func DetectKind(v string) (string, error) {
	v = strings.TrimSpace(v)
	t, err := indicators.DetectType(v)
	switch {
	case err == nil && (t == mdebridge.IndicatorFileSha1 || t == mdebridge.IndicatorFileSha256 || t == mdebridge.IndicatorFileMd5):
		return KindFile, nil
	case err == nil && t == mdebridge.IndicatorIPAddress:
		return KindIP, nil
	case err == nil && t == mdebridge.IndicatorURL:
		return KindURL, nil
	case err == nil && t == mdebridge.IndicatorDomainName:
		return KindDomain, nil
	}
	if v != "" && !strings.ContainsAny(v, " /:@") {
		return KindUser, nil
	}
	return "", usage("%q is not a SHA-1, SHA-256, IP address, domain, URL or account name", v)
}

// Enrich gathers what MDE knows about an observable, detecting its kind.
func (s *Service) Enrich(ctx context.Context, value string) (*mdebridge.Enrichment, error) {
	kind, err := DetectKind(value)
	if err != nil {
		return nil, err
	}
	return s.EnrichAs(ctx, kind, value)
}

// EnrichAs gathers, in one view, what MDE knows about an observable of a
// given kind: its profile (files), its prevalence in the organisation, the
// machines that saw it, the alerts that name it, and the custom indicators
// on it. The parts are asked for at once; a part that fails (a missing
// permission, say) is named in Errors and the others are still shown.
func (s *Service) EnrichAs(ctx context.Context, kind, value string) (*mdebridge.Enrichment, error) {
	value = strings.TrimSpace(value)
	e := &mdebridge.Enrichment{Kind: kind, Value: value, Machines: []json.RawMessage{}, Alerts: []json.RawMessage{}, Indicators: []mdebridge.Indicator{}}
	c := s.opts.Client
	var mu sync.Mutex
	var wg sync.WaitGroup
	fail := func(part string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if e.Errors == nil {
			e.Errors = map[string]string{}
		}
		e.Errors[part] = err.Error()
	}
	machines := func(ms []mdebridge.Machine, err error) {
		if err != nil {
			fail("machines", err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ms {
			e.Machines = append(e.Machines, m.Raw)
		}
	}
	alerts := func(as []json.RawMessage, err error) {
		if err != nil {
			fail("alerts", err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		e.Alerts = append(e.Alerts, as...)
	}
	lookups := []string{value}
	switch kind {
	case KindFile:
		hash := strings.ToLower(value)
		if len(hash) == 32 {
			// MDE's file API takes SHA-1 and SHA-256 only.
			fail("info", errors.New("MDE's file profiles are looked up by SHA-1 or SHA-256, not MD5"))
			break
		}
		info, err := c.GetFile(ctx, hash)
		if err != nil {
			fail("info", err)
		} else {
			e.Info = info
			var f struct{ SHA1, SHA256 string }
			json.Unmarshal(info, &f)
			lookups = append(lookups, f.SHA1, f.SHA256)
			if len(hash) == 64 && f.SHA1 != "" {
				hash = f.SHA1 // the machines API takes SHA-1 only
			}
		}
		wg.Go(func() { st, err := c.FileStats(ctx, hash, 0); s.keepStats(e, &mu, st, err, fail) })
		wg.Go(func() { machines(c.FileMachines(ctx, hash)) })
		wg.Go(func() { alerts(c.FileAlerts(ctx, hash)) })
	case KindIP:
		ip, err := netip.ParseAddr(value)
		if err != nil {
			return nil, usage("%q is not an IP address", value)
		}
		value = ip.String()
		wg.Go(func() { st, err := c.IPStats(ctx, value, 0); s.keepStats(e, &mu, st, err, fail) })
		wg.Go(func() { machines(c.FindMachinesByIP(ctx, value, s.now())) })
		wg.Go(func() { alerts(c.IPAlerts(ctx, value)) })
	case KindDomain, KindURL:
		host := strings.ToLower(strings.TrimSuffix(value, "."))
		if kind == KindURL {
			u, err := url.Parse(value)
			if err != nil || u.Hostname() == "" {
				return nil, usage("%q is not a URL", value)
			}
			host = strings.ToLower(u.Hostname())
			lookups = append(lookups, host)
		}
		wg.Go(func() { st, err := c.DomainStats(ctx, host, 0); s.keepStats(e, &mu, st, err, fail) })
		wg.Go(func() { machines(c.DomainMachines(ctx, host)) })
		wg.Go(func() { alerts(c.DomainAlerts(ctx, host)) })
	case KindUser:
		name := value
		if i := strings.LastIndex(name, `\`); i >= 0 {
			name = name[i+1:] // MDE names users by account name alone
		}
		wg.Go(func() { machines(c.UserMachines(ctx, name)) })
		wg.Go(func() { alerts(c.UserAlerts(ctx, name)) })
	default:
		return nil, usage("kind %q is not file, ip, domain, url or user", kind)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, v := range lookups {
		if v == "" {
			continue
		}
		in, err := s.opts.Store.FindIndicator(ctx, v)
		var amb *mdebridge.AmbiguousError
		switch {
		case err == nil:
			e.Indicators = append(e.Indicators, *in)
		case errors.As(err, &amb):
			ins, _, ferr := s.opts.Store.FindIndicators(ctx, mdebridge.IndicatorFilter{Value: v})
			if ferr == nil {
				for _, in := range ins {
					if strings.EqualFold(in.IndicatorValue, v) {
						e.Indicators = append(e.Indicators, in)
					}
				}
			}
		case !errors.Is(err, mdebridge.ErrNotFound):
			return nil, fmt.Errorf("indicators on %s: %w", v, err)
		}
	}
	return e, nil
}

func (s *Service) keepStats(e *mdebridge.Enrichment, mu *sync.Mutex, st json.RawMessage, err error, fail func(string, error)) {
	if err != nil {
		fail("stats", err)
		return
	}
	mu.Lock()
	defer mu.Unlock()
	e.Stats = st
}
