package syncer

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mdebridge/mdebridge"
)

type metrics struct {
	runs        *prometheus.CounterVec
	steps       *prometheus.CounterVec
	stepSeconds *prometheus.HistogramVec
	stepItems   *prometheus.GaugeVec
	apiCalls    *prometheus.CounterVec
	lastSuccess prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mdebridge_sync_runs_total", Help: "Sync runs by final status.",
		}, []string{"status"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mdebridge_sync_steps_total", Help: "Sync steps by step and final status.",
		}, []string{"step", "status"}),
		stepSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mdebridge_sync_step_duration_seconds", Help: "How long sync steps take.",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 14),
		}, []string{"step"}),
		stepItems: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mdebridge_sync_step_items", Help: "Items stored by the last run of each step.",
		}, []string{"step"}),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mdebridge_upstream_api_calls_total", Help: "Calls made to Microsoft APIs during syncs, by API.",
		}, []string{"api"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mdebridge_sync_last_success_timestamp_seconds", Help: "When the last fully successful sync finished.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.runs, m.steps, m.stepSeconds, m.stepItems, m.apiCalls, m.lastSuccess} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) observeStep(r mdebridge.StepResult) {
	m.steps.WithLabelValues(r.Name, string(r.Status)).Inc()
	m.stepSeconds.WithLabelValues(r.Name).Observe(float64(r.DurationMS) / 1000)
	if r.Status == mdebridge.StatusSucceeded {
		m.stepItems.WithLabelValues(r.Name).Set(float64(r.Items))
	}
	for api, n := range r.CallsByAPI {
		m.apiCalls.WithLabelValues(api).Add(float64(n))
	}
}
