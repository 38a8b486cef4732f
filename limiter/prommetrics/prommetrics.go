// Package prommetrics exports what limiters do as Prometheus metrics, through
// the limiter.Observer hook. The core packages do not import Prometheus;
// only programs that use this package do.
//
// Metrics, each labelled with the limiter's name:
//
//	ratelimit_grants_total             grants (calls that got their units)
//	ratelimit_granted_units_total      units granted
//	ratelimit_denials_total            TryAcquire refusals and Acquire refusals at a deadline
//	ratelimit_cancellations_total      reservations given back by callers that stopped waiting
//	ratelimit_backend_errors_total     failed calls to the backend (Redis)
//	ratelimit_wait_seconds             histogram of how long granted callers waited
//
// And, for a quota read at every scrape ([NewQuotaCollector]), its gauges:
// the configured limit, the units in the current window, the units queued.
package prommetrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/descope-mgmt/ratelimit/limiter"
)

// Metrics holds the collectors. Create one per registry with [New], then
// one Observer per limiter with [Metrics.Observer].
type Metrics struct {
	grants, units, denials, cancels, errors *prometheus.CounterVec
	wait                                    *prometheus.HistogramVec
}

// New creates the collectors and registers them with reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ratelimit", Name: name, Help: help}, []string{"limiter"})
	}
	m := &Metrics{
		grants:  counter("grants_total", "Calls that were granted their units."),
		units:   counter("granted_units_total", "Units granted."),
		denials: counter("denials_total", "Requests refused: TryAcquire denials, and Acquire calls whose grant would pass their deadline."),
		cancels: counter("cancellations_total", "Reservations given back by callers that stopped waiting."),
		errors:  counter("backend_errors_total", "Failed calls to the backend."),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ratelimit", Name: "wait_seconds",
			Help:    "How long granted callers waited for their units.",
			Buckets: append([]float64{0}, prometheus.ExponentialBuckets(0.001, 4, 10)...), // 0, 1ms .. ~4.4min
		}, []string{"limiter"}),
	}
	for _, c := range []prometheus.Collector{m.grants, m.units, m.denials, m.cancels, m.errors, m.wait} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("prommetrics: register: %w", err)
		}
	}
	return m, nil
}

// Observer returns an observer that counts the events of the limiter called
// name (a key or a route, say).
func (m *Metrics) Observer(name string) limiter.Observer {
	grants, units := m.grants.WithLabelValues(name), m.units.WithLabelValues(name)
	denials, cancels, errs := m.denials.WithLabelValues(name), m.cancels.WithLabelValues(name), m.errors.WithLabelValues(name)
	wait := m.wait.WithLabelValues(name)
	return limiter.ObserverFunc(func(e limiter.Event) {
		switch e.Kind {
		case limiter.EventGrant:
			grants.Inc()
			units.Add(float64(e.N))
			wait.Observe(e.Wait.Seconds())
		case limiter.EventDeny:
			denials.Inc()
		case limiter.EventCancel:
			cancels.Inc()
		case limiter.EventError:
			errs.Inc()
		}
	})
}
