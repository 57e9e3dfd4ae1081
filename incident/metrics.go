package incident

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	polls        *prometheus.CounterVec
	pollSeconds  *prometheus.HistogramVec
	apiCalls     *prometheus.CounterVec
	alerts       *prometheus.CounterVec
	ingestLag    prometheus.Histogram
	watermark    prometheus.Gauge
	events       prometheus.Counter
	lastSeq      prometheus.Gauge
	sinkEvents   *prometheus.CounterVec
	sinkFailures *prometheus.CounterVec
	sinkPending  *prometheus.GaugeVec
	deliveryLag  *prometheus.HistogramVec
	mirror       *prometheus.CounterVec
}

// newMetrics makes the pipeline's metrics and registers them with reg
// (none when reg is nil).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	lagBuckets := []float64{0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120, 300, 900}
	m := &metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mdebridge_incident_polls_total", Help: "Alert polls (kind poll or sweep) by result.",
		}, []string{"kind", "result"}),
		pollSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mdebridge_incident_poll_duration_seconds", Help: "How long a poll or sweep takes, every page included.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}, []string{"kind"}),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mdebridge_incident_api_calls_total", Help: "Calls the incident pipeline made to MDE, by API.",
		}, []string{"api"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mdebridge_incident_alerts_total", Help: "Alert versions read, by what ingesting them did (new, changed, silent, duplicate, stale, filtered, invalid).",
		}, []string{"verdict"}),
		ingestLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mdebridge_incident_ingest_lag_seconds", Help: "From an alert's lastUpdateTime in MDE to its change stored as an event.",
			Buckets: lagBuckets,
		}),
		watermark: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mdebridge_incident_watermark_timestamp_seconds", Help: "The lastUpdateTime up to which alerts have been read.",
		}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mdebridge_incident_events_total", Help: "Incident events appended to the outbox by polls.",
		}),
		lastSeq: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mdebridge_incident_last_event_sequence", Help: "The sequence number of the newest incident event.",
		}),
		sinkEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mdebridge_incident_sink_events_total", Help: "Events a sink handled, by result (delivered, dead_lettered).",
		}, []string{"sink", "result"}),
		sinkFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mdebridge_incident_sink_failures_total", Help: "Deliveries to a sink that failed and will be retried.",
		}, []string{"sink"}),
		sinkPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mdebridge_incident_sink_pending_events", Help: "Events appended that a sink has not handled yet.",
		}, []string{"sink"}),
		deliveryLag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mdebridge_incident_delivery_lag_seconds", Help: "From an event appended to the outbox to the sink handling it.",
			Buckets: lagBuckets,
		}, []string{"sink"}),
		mirror: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mdebridge_incident_mirror_total", Help: "Changes made in mdebridge sent to MDE, by result (done, retry, failed).",
		}, []string{"result"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.polls, m.pollSeconds, m.apiCalls, m.alerts, m.ingestLag, m.watermark, m.events,
			m.lastSeq, m.sinkEvents, m.sinkFailures, m.sinkPending, m.deliveryLag, m.mirror} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
