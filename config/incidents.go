package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Incidents configures the incident pipeline that runs in serve and demo:
// how it polls MDE, which alerts become incidents, and where the events go.
type Incidents struct {
	// Enabled runs the pipeline in serve (default true).
	Enabled bool `yaml:"enabled"`
	// PollInterval between polls (default 5s); SweepInterval between
	// sweeps of the Overlap window for alerts that show up late (defaults
	// 1m and 10m).
	PollInterval  Duration `yaml:"poll_interval"`
	SweepInterval Duration `yaml:"sweep_interval"`
	Overlap       Duration `yaml:"overlap"`
	// FirstFetch is how far back the first poll reaches (default 72h).
	FirstFetch Duration `yaml:"first_fetch"`
	// PageSize is the $top of a poll (default and at most 10000).
	PageSize int `yaml:"page_size"`
	// GroupBy is alert (one incident per alert, default) or mde_incident.
	GroupBy string `yaml:"group_by"`
	// Mirror sends changes made in mdebridge to MDE (default true; needs
	// Alert.ReadWrite.All).
	Mirror bool `yaml:"mirror"`
	// EventRetention is how long delivered events are kept (default 720h).
	EventRetention Duration        `yaml:"event_retention"`
	Filters        IncidentFilters `yaml:"filters"`
	Sinks          []Sink          `yaml:"sinks"`
}

// IncidentFilters say which alerts become incidents; empty lets all
// through. Once an incident exists, all its changes flow.
type IncidentFilters struct {
	Severities       []string `yaml:"severities,omitempty"`
	Statuses         []string `yaml:"statuses,omitempty"`
	DetectionSources []string `yaml:"detection_sources,omitempty"`
	DeviceGroups     []string `yaml:"device_groups,omitempty"`
}

// Sink is one destination of incident events.
type Sink struct {
	// Name identifies the sink (default its type, numbered when repeated).
	Name string `yaml:"name,omitempty"`
	// Type is webhook, syslog, file or stdout.
	Type string `yaml:"type"`

	// webhook
	URL         string            `yaml:"url,omitempty"`
	HMACKey     Secret            `yaml:"hmac_key,omitempty"`
	Headers     map[string]Secret `yaml:"headers,omitempty"`
	Timeout     Duration          `yaml:"timeout,omitempty"`      // per attempt (default 10s)
	MaxAttempts int               `yaml:"max_attempts,omitempty"` // before the dead-letter file (default 5)
	DeadLetter  string            `yaml:"dead_letter,omitempty"`  // default <name>-dead-letter.jsonl
	Concurrency int               `yaml:"concurrency,omitempty"`  // incidents at once (default 4)

	// syslog
	Network  string `yaml:"network,omitempty"` // udp (default), tcp, tls
	Address  string `yaml:"address,omitempty"` // host:port
	Format   string `yaml:"format,omitempty"`  // json (default) or cef
	Facility int    `yaml:"facility,omitempty"`

	// webhook and syslog over TLS: an extra CA to trust.
	CAFile string `yaml:"ca_file,omitempty"`

	// file
	Path      string `yaml:"path,omitempty"`
	MaxSizeMB int    `yaml:"max_size_mb,omitempty"` // rotate at (default 100)
	MaxFiles  int    `yaml:"max_files,omitempty"`   // rotated files kept (default 10)
}

// SinkTypes lists the accepted sink types.
var SinkTypes = []string{"webhook", "syslog", "file", "stdout"}

// DefaultIncidents is the pipeline's configuration when the file is silent.
func DefaultIncidents() Incidents {
	return Incidents{Enabled: true, PollInterval: Duration(5 * time.Second), SweepInterval: Duration(time.Minute),
		Overlap: Duration(10 * time.Minute), FirstFetch: Duration(72 * time.Hour), PageSize: 10000, GroupBy: "alert",
		Mirror: true, EventRetention: Duration(720 * time.Hour)}
}

// resolvePaths names unnamed sinks, defaults dead-letter files, and makes
// the sinks' paths relative to dir.
func (in *Incidents) resolvePaths(dir string) {
	counts := map[string]int{}
	for _, s := range in.Sinks {
		counts[s.Type]++
	}
	seen := map[string]int{}
	for i := range in.Sinks {
		s := &in.Sinks[i]
		if s.Name == "" {
			seen[s.Type]++
			s.Name = s.Type
			if counts[s.Type] > 1 {
				s.Name = fmt.Sprintf("%s-%d", s.Type, seen[s.Type])
			}
		}
		if s.Type == "webhook" && s.DeadLetter == "" {
			s.DeadLetter = s.Name + "-dead-letter.jsonl"
		}
		for _, p := range []*string{&s.Path, &s.DeadLetter, &s.CAFile} {
			if *p != "" && !filepath.IsAbs(*p) && dir != "" {
				*p = filepath.Join(dir, *p)
			}
		}
	}
}

func oneOf(v string, list []string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, v) })
}

// validate reports each problem through bad.
func (in *Incidents) validate(bad func(key, format string, args ...any)) {
	if d := time.Duration(in.PollInterval); d < time.Second {
		bad("incidents.poll_interval", "%s is too short (at least 1s)", d)
	}
	if time.Duration(in.SweepInterval) < time.Duration(in.PollInterval) {
		bad("incidents.sweep_interval", "%s is shorter than poll_interval", time.Duration(in.SweepInterval))
	}
	if d := time.Duration(in.Overlap); d < time.Minute {
		bad("incidents.overlap", "%s is too short (at least 1m: alerts show up minutes late)", d)
	}
	if time.Duration(in.FirstFetch) < 0 {
		bad("incidents.first_fetch", "is negative")
	}
	if in.PageSize < 1 || in.PageSize > 10000 {
		bad("incidents.page_size", "%d is not from 1 to 10000", in.PageSize)
	}
	if in.GroupBy != "alert" && in.GroupBy != "mde_incident" {
		bad("incidents.group_by", "%q is not alert or mde_incident", in.GroupBy)
	}
	if d := time.Duration(in.EventRetention); d < time.Hour {
		bad("incidents.event_retention", "%s is too short (at least 1h)", d)
	}
	known := map[string][]string{"severities": {"UnSpecified", "Informational", "Low", "Medium", "High"},
		"statuses": {"Unknown", "New", "InProgress", "Resolved"}}
	for key, values := range map[string][]string{"severities": in.Filters.Severities, "statuses": in.Filters.Statuses} {
		for _, v := range values {
			if !oneOf(v, known[key]) {
				bad("incidents.filters."+key, "%q is not one of %s", v, strings.Join(known[key], ", "))
			}
		}
	}
	names := map[string]bool{}
	for i, s := range in.Sinks {
		key := fmt.Sprintf("incidents.sinks[%d]", i)
		if names[s.Name] {
			bad(key+".name", "%q is used twice", s.Name)
		}
		names[s.Name] = true
		switch s.Type {
		case "webhook":
			u, err := url.Parse(s.URL)
			switch {
			case s.URL == "" || err != nil || u.Host == "":
				bad(key+".url", "required: the receiver's URL")
			case u.Scheme == "http" && !loopbackHost(u.Hostname()):
				bad(key+".url", "must be https:// (http only to this host), not http://%s", u.Host)
			case u.Scheme != "http" && u.Scheme != "https":
				bad(key+".url", "%s:// is not http(s)", u.Scheme)
			}
			if s.MaxAttempts < 0 || s.Concurrency < 0 || s.Timeout < 0 {
				bad(key, "max_attempts, concurrency and timeout must not be negative")
			}
		case "syslog":
			if _, _, err := net.SplitHostPort(s.Address); err != nil {
				bad(key+".address", "%q is not host:port", s.Address)
			}
			if s.Network != "" && !slices.Contains([]string{"udp", "tcp", "tls"}, s.Network) {
				bad(key+".network", "%q is not udp, tcp or tls", s.Network)
			}
			if s.Format != "" && s.Format != "json" && s.Format != "cef" {
				bad(key+".format", "%q is not json or cef", s.Format)
			}
			if s.Facility < 0 || s.Facility > 23 {
				bad(key+".facility", "%d is not from 0 to 23", s.Facility)
			}
		case "file":
			if s.Path == "" {
				bad(key+".path", "required: the JSON Lines file")
			}
			if s.MaxSizeMB < 0 || s.MaxFiles < 0 {
				bad(key, "max_size_mb and max_files must not be negative")
			}
		case "stdout":
		default:
			bad(key+".type", "%q is not one of %s", s.Type, strings.Join(SinkTypes, ", "))
		}
	}
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
