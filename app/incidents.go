package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/azure"
	"github.com/mdebridge/mdebridge/config"
	"github.com/mdebridge/mdebridge/incident"
	"github.com/mdebridge/mdebridge/sink"
)

// Pipeline wires the incident pipeline on first use: the MDE client, the
// store and the configured sinks (stdout events go to stdout).
func (a *App) Pipeline(ctx context.Context, stdout io.Writer) (*incident.Pipeline, error) {
	if a.pipeline != nil {
		return a.pipeline, nil
	}
	store, err := a.Store(ctx)
	if err != nil {
		return nil, err
	}
	client, err := a.MDE()
	if err != nil {
		return nil, err
	}
	sinks, err := buildSinks(a.Config.Incidents.Sinks, stdout, a)
	if err != nil {
		return nil, err
	}
	in := a.Config.Incidents
	p, err := incident.New(incident.Options{
		Source: client, Store: store, Sinks: sinks, Logger: a.Log.With("component", "incidents"), Registerer: a.Registry,
		PollInterval: time.Duration(in.PollInterval), SweepInterval: time.Duration(in.SweepInterval), Overlap: time.Duration(in.Overlap),
		FirstFetch: time.Duration(in.FirstFetch), PageSize: in.PageSize, GroupBy: in.GroupBy, Filters: incidentFilters(in.Filters),
		PortalURL: a.Cloud.PortalURL, Mirror: in.Mirror, EventRetention: time.Duration(in.EventRetention),
	})
	if err != nil {
		for _, s := range sinks {
			s.Close()
		}
		return nil, err
	}
	a.pipeline = p
	return p, nil
}

// IncidentService is how a command changes incidents without running the
// pipeline: the change is applied, and sent to MDE when mirroring is on.
func (a *App) IncidentService(ctx context.Context) (*incident.Service, error) {
	store, err := a.Store(ctx)
	if err != nil {
		return nil, err
	}
	in := a.Config.Incidents
	o := incident.ServiceOptions{Store: store, Logger: a.Log, Mirror: in.Mirror, GroupBy: in.GroupBy,
		Filters: incidentFilters(in.Filters), PortalURL: a.Cloud.PortalURL}
	if in.Mirror {
		if o.Source, err = a.MDE(); err != nil {
			return nil, err
		}
	}
	return incident.NewService(o)
}

func incidentFilters(f config.IncidentFilters) mdebridge.IncidentFilters {
	return mdebridge.IncidentFilters{Severities: f.Severities, Statuses: f.Statuses, DetectionSources: f.DetectionSources, DeviceGroups: f.DeviceGroups}
}

// buildSinks makes the configured sinks.
func buildSinks(cfg []config.Sink, stdout io.Writer, a *App) ([]mdebridge.EventSink, error) {
	var out []mdebridge.EventSink
	fail := func(err error) ([]mdebridge.EventSink, error) {
		for _, s := range out {
			s.Close()
		}
		return nil, err
	}
	for _, c := range cfg {
		var s mdebridge.EventSink
		var err error
		switch c.Type {
		case "file":
			s, err = sink.NewFile(sink.FileOptions{Name: c.Name, Path: c.Path, MaxBytes: int64(c.MaxSizeMB) << 20, MaxFiles: c.MaxFiles})
		case "stdout":
			s = sink.NewWriter(c.Name, stdout)
		case "webhook":
			var client *http.Client
			if client, err = azure.NewHTTPClient(c.CAFile); err == nil {
				headers := map[string]string{}
				for k, v := range c.Headers {
					headers[k] = v.Value()
				}
				s, err = sink.NewWebhook(sink.WebhookOptions{Name: c.Name, URL: c.URL, HMACKey: []byte(c.HMACKey.Value()), Headers: headers,
					Timeout: time.Duration(c.Timeout), MaxAttempts: c.MaxAttempts, DeadLetterPath: c.DeadLetter, Concurrency: c.Concurrency,
					HTTPClient: client, Logger: a.Log.With("sink", c.Name)})
			}
		case "syslog":
			// The same trust as for HTTPS: the system's roots and ca_file.
			var client *http.Client
			if client, err = azure.NewHTTPClient(c.CAFile); err == nil {
				s, err = sink.NewSyslog(sink.SyslogOptions{Name: c.Name, Network: c.Network, Address: c.Address, Format: c.Format,
					Facility: c.Facility, TLSConfig: client.Transport.(*http.Transport).TLSClientConfig})
			}
		default:
			err = fmt.Errorf("unknown sink type %q", c.Type)
		}
		if err != nil {
			return fail(fmt.Errorf("incident sink %s: %w", c.Name, err))
		}
		out = append(out, s)
	}
	return out, nil
}
