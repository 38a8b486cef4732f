package prommetrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/descope-mgmt/ratelimit/limiter"
)

// QuotaState is a read of one quota, for its gauges.
type QuotaState struct {
	// Limit is the quota's configured limit.
	Limit limiter.Limit
	// Used is the units granted in the window ending now.
	Used int
	// Queued is the units reserved after now by waiting callers.
	Queued int
}

// NewQuotaCollector returns a collector of gauges for the quota called
// name, read with read on every scrape (bounded to 2s; a failed read
// reports nothing that scrape):
//
//	ratelimit_quota_limit_units{quota}     the configured limit's requests
//	ratelimit_quota_window_seconds{quota}  its window
//	ratelimit_quota_used_units{quota}      units granted in the window ending now
//	ratelimit_quota_queued_units{quota}    units reserved by waiting callers
//
// For the Redis backend, read with the limiter's Status:
//
//	prommetrics.NewQuotaCollector(key, func(ctx context.Context) (prommetrics.QuotaState, error) {
//		st, err := l.Status(ctx)
//		return prommetrics.QuotaState{Limit: st.Limit, Used: st.Used, Queued: st.Queued}, err
//	})
func NewQuotaCollector(name string, read func(context.Context) (QuotaState, error)) prometheus.Collector {
	desc := func(metric, help string) *prometheus.Desc {
		return prometheus.NewDesc("ratelimit_quota_"+metric, help, nil, prometheus.Labels{"quota": name})
	}
	return &quotaCollector{
		read:   read,
		limit:  desc("limit_units", "The quota's configured limit: units per window."),
		window: desc("window_seconds", "The quota's window."),
		used:   desc("used_units", "Units granted in the window ending now."),
		queued: desc("queued_units", "Units reserved after now by callers waiting for them."),
	}
}

type quotaCollector struct {
	read                        func(context.Context) (QuotaState, error)
	limit, window, used, queued *prometheus.Desc
}

func (c *quotaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.limit
	ch <- c.window
	ch <- c.used
	ch <- c.queued
}

func (c *quotaCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.read(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(st.Limit.Requests))
	ch <- prometheus.MustNewConstMetric(c.window, prometheus.GaugeValue, st.Limit.Window.Seconds())
	ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(st.Used))
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(st.Queued))
}
