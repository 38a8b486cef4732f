package prommetrics_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	_ "github.com/descope-mgmt/ratelimit/internal/redistest" // quiets go-redis's logger
	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/memory"
	"github.com/descope-mgmt/ratelimit/limiter/prommetrics"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

func TestExportsEveryKindOfEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		m, err := prommetrics.New(reg)
		require.NoError(t, err)
		l, err := memory.New(limiter.PerSecond(2), memory.WithObserver(m.Observer("users")))
		require.NoError(t, err)
		ctx := t.Context()
		require.NoError(t, l.Acquire(ctx, 2)) // granted, no wait
		_, err = l.TryAcquire(ctx, 1)         // denied
		require.NoError(t, err)
		require.NoError(t, l.Acquire(ctx, 1)) // granted after 1s
		cctx, cancel := context.WithCancel(ctx)
		go func() { time.Sleep(100 * time.Millisecond); cancel() }()
		require.Error(t, l.Acquire(cctx, 2)) // must wait a second: given back

		want := `
# HELP ratelimit_cancellations_total Reservations given back by callers that stopped waiting.
# TYPE ratelimit_cancellations_total counter
ratelimit_cancellations_total{limiter="users"} 1
# HELP ratelimit_denials_total Requests refused: TryAcquire denials, and Acquire calls whose grant would pass their deadline.
# TYPE ratelimit_denials_total counter
ratelimit_denials_total{limiter="users"} 1
# HELP ratelimit_granted_units_total Units granted.
# TYPE ratelimit_granted_units_total counter
ratelimit_granted_units_total{limiter="users"} 3
# HELP ratelimit_grants_total Calls that were granted their units.
# TYPE ratelimit_grants_total counter
ratelimit_grants_total{limiter="users"} 2
`
		assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want),
			"ratelimit_cancellations_total", "ratelimit_denials_total", "ratelimit_granted_units_total", "ratelimit_grants_total"))
		families, err := reg.Gather()
		require.NoError(t, err)
		for _, f := range families {
			if f.GetName() == "ratelimit_wait_seconds" {
				h := f.GetMetric()[0].GetHistogram()
				assert.EqualValues(t, 2, h.GetSampleCount(), "two grants")
				assert.InDelta(t, 1.0, h.GetSampleSum(), 1e-9, "waits of 0s and 1s")
				return
			}
		}
		t.Error("no ratelimit_wait_seconds metric")
	})
}

// A backend failure is counted as one; a caller that gives up while its
// call is in flight is not.
func TestCountsBackendErrorsNotCallersGivingUp(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := prommetrics.New(reg)
	require.NoError(t, err)
	errorsOf := func() float64 {
		families, err := reg.Gather()
		require.NoError(t, err)
		for _, f := range families {
			if f.GetName() == "ratelimit_backend_errors_total" {
				return f.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return 0 // not exported until the first error
	}

	// A server that accepts connections and never answers: a call is
	// certainly in flight when its caller's deadline ends.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	c := goredis.NewClient(&goredis.Options{Addr: silent.Addr().String(), ReadTimeout: 5 * time.Second, MaxRetries: -1})
	defer c.Close()
	l, err := redislimiter.New(c, "q", limiter.PerSecond(1), redislimiter.WithObserver(m.Observer("users")))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = l.TryAcquire(ctx, 1)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Zero(t, errorsOf(), "the caller gave up: no backend error")

	// A server that is gone: a backend error.
	gone := miniredis.RunT(t)
	c2 := goredis.NewClient(&goredis.Options{Addr: gone.Addr(), MaxRetries: -1, DialerRetries: 1})
	defer c2.Close()
	gone.Close()
	l2, err := redislimiter.New(c2, "q", limiter.PerSecond(1), redislimiter.WithObserver(m.Observer("users")))
	require.NoError(t, err)
	_, err = l2.TryAcquire(t.Context(), 1)
	require.Error(t, err)
	assert.Equal(t, 1.0, errorsOf())
}

// The quota gauges read the quota at scrape time.
func TestQuotaGauges(t *testing.T) {
	m := miniredis.RunT(t)
	c := goredis.NewClient(&goredis.Options{Addr: m.Addr()})
	defer c.Close()
	l, err := redislimiter.New(c, "q", limiter.PerMinute(5))
	require.NoError(t, err)
	require.NoError(t, l.Acquire(t.Context(), 3))
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(prommetrics.NewQuotaCollector("q", func(ctx context.Context) (prommetrics.QuotaState, error) {
		st, err := l.Status(ctx)
		return prommetrics.QuotaState{Limit: st.Limit, Used: st.Used, Queued: st.Queued}, err
	})))
	want := `
# HELP ratelimit_quota_limit_units The quota's configured limit: units per window.
# TYPE ratelimit_quota_limit_units gauge
ratelimit_quota_limit_units{quota="q"} 5
# HELP ratelimit_quota_queued_units Units reserved after now by callers waiting for them.
# TYPE ratelimit_quota_queued_units gauge
ratelimit_quota_queued_units{quota="q"} 0
# HELP ratelimit_quota_used_units Units granted in the window ending now.
# TYPE ratelimit_quota_used_units gauge
ratelimit_quota_used_units{quota="q"} 3
# HELP ratelimit_quota_window_seconds The quota's window.
# TYPE ratelimit_quota_window_seconds gauge
ratelimit_quota_window_seconds{quota="q"} 60
`
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want)))
}
