package prommetrics_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/memory"
	"github.com/descope-mgmt/ratelimit/limiter/prommetrics"
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
