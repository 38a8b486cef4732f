package memory_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/internal/grants"
	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/limitertest"
	"github.com/descope-mgmt/ratelimit/limiter/memory"
)

func TestConformance(t *testing.T) {
	limitertest.Run(t, limitertest.Backend{
		Bubble: true,
		NewQuota: func(t *testing.T, limit limiter.Limit) func() limiter.Limiter {
			l, err := memory.New(limit)
			require.NoError(t, err)
			return func() limiter.Limiter { return l } // one process: every replica is the same limiter
		},
		Open: func(t *testing.T) func(quotas ...limiter.Quota) limiter.Limiter {
			store := memory.NewStore()
			return func(quotas ...limiter.Quota) limiter.Limiter {
				l, err := store.NewComposite(quotas)
				require.NoError(t, err)
				return l
			}
		},
	})
}

func TestNewRejectsInvalidLimits(t *testing.T) {
	for _, tc := range []struct {
		limit limiter.Limit
		text  string
	}{
		{limiter.Limit{}, "requests=0"},
		{limiter.Limit{Requests: -1, Window: time.Second}, "requests=-1"},
		{limiter.Limit{Requests: 5}, "window=0s"},
		{limiter.Limit{Requests: 5, Window: -time.Second}, "window=-1s"},
		{limiter.Limit{Requests: limiter.MaxRequests + 1, Window: time.Second}, "want at most"},
	} {
		l, err := memory.New(tc.limit)
		assert.Nil(t, l)
		assert.ErrorIs(t, err, limiter.ErrInvalidLimit, "%+v", tc.limit)
		assert.ErrorContains(t, err, tc.text)
	}
}

func TestObserverSeesEveryDecision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var events []limiter.Event
		l, err := memory.New(limiter.PerSecond(1), memory.WithObserver(limiter.ObserverFunc(func(e limiter.Event) {
			events = append(events, e)
		})))
		require.NoError(t, err)
		start := time.Now()
		require.NoError(t, l.Acquire(t.Context(), 1))
		_, err = l.TryAcquire(t.Context(), 1)
		require.NoError(t, err)
		require.NoError(t, l.Acquire(t.Context(), 1))
		ctx, cancel := context.WithCancel(t.Context())
		go func() { time.Sleep(100 * time.Millisecond); cancel() }()
		assert.ErrorIs(t, l.Acquire(ctx, 1), context.Canceled)

		require.Len(t, events, 4)
		assert.Equal(t, limiter.Event{Kind: limiter.EventGrant, N: 1, At: start}, events[0])
		assert.Equal(t, limiter.Event{Kind: limiter.EventDeny, N: 1, Wait: time.Second}, events[1])
		assert.Equal(t, limiter.Event{Kind: limiter.EventGrant, N: 1, At: start.Add(time.Second), Wait: time.Second}, events[2])
		assert.Equal(t, limiter.Event{Kind: limiter.EventCancel, N: 1, At: start.Add(2 * time.Second)}, events[3])
	})
}

func TestGrantedPathDoesNotAllocate(t *testing.T) {
	l, err := memory.New(limiter.PerSecond(1 << 20))
	require.NoError(t, err)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		_ = l.Acquire(ctx, 1)
		_, _ = l.TryAcquire(ctx, 1)
	})
	assert.Zero(t, allocs)
}

func BenchmarkAcquire(b *testing.B) {
	l, err := memory.New(limiter.PerSecond(1 << 24))
	require.NoError(b, err)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = l.TryAcquire(ctx, 1)
		}
	})
}

func TestQuotasAndKeysListEveryQuota(t *testing.T) {
	quotas := []limiter.Quota{
		{Key: "create", Limits: []limiter.Limit{limiter.PerMinute(100)}},
		{Key: "users", Limits: []limiter.Limit{limiter.PerMinute(500), limiter.PerHour(10000)}},
	}
	l, err := memory.NewStore().NewComposite(quotas)
	require.NoError(t, err)
	assert.Equal(t, []string{"create", "users"}, l.Keys())
	got := l.Quotas()
	assert.Equal(t, quotas, got)
	got[1].Limits[0] = limiter.PerSecond(1)
	assert.Equal(t, limiter.PerMinute(500), l.Quotas()[1].Limits[0], "a copy: changing it changes nothing")
}

// WithMargin spaces a quota's units a window and the margin apart: 2 per
// second with 500ms of margin grants the third unit at 1.5s, not 1s.
func TestMarginWidensEveryWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := memory.New(limiter.PerSecond(2), memory.WithMargin(500*time.Millisecond))
		require.NoError(t, err)
		start := time.Now()
		require.NoError(t, l.Acquire(t.Context(), 2))
		d, err := l.TryAcquire(t.Context(), 1)
		require.NoError(t, err)
		assert.Equal(t, limiter.Decision{RetryAfter: 1500 * time.Millisecond}, d)
		require.NoError(t, l.Acquire(t.Context(), 1))
		assert.Equal(t, 1500*time.Millisecond, time.Since(start))
		assert.Equal(t, []limiter.Quota{{Limits: []limiter.Limit{limiter.PerSecond(2)}}}, l.Quotas(), "reported as given")
	})
}

func TestMarginMustBePositiveAndFit(t *testing.T) {
	_, err := memory.New(limiter.PerSecond(2), memory.WithMargin(-time.Second))
	assert.ErrorIs(t, err, limiter.ErrInvalidConfig)
	assert.ErrorContains(t, err, "WithMargin(-1s), want more than 0")
	_, err = memory.New(limiter.Limit{Requests: 1, Window: limiter.MaxWindow}, memory.WithMargin(time.Nanosecond))
	assert.ErrorIs(t, err, limiter.ErrInvalidLimit)
	assert.ErrorContains(t, err, "with a margin of 1ns is over")
}

// Callers that give up while they wait leave freed slots; later requests
// take them, so a storm of cancellations still uses the quota, and never
// more than the limit in a window.
func TestCancellationStormUsesTheQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		limit := limiter.Limit{Requests: 20, Window: 200 * time.Millisecond}
		rec := &grants.Recorder{}
		l, err := memory.New(limit, memory.WithObserver(rec))
		require.NoError(t, err)
		const run = 3 * time.Second
		start := time.Now()
		cancels := grants.Storm(t.Context(), 200, run, 4*limit.Window, func(ctx context.Context) error { return l.Acquire(ctx, 1) })
		gs := rec.Grants()
		inRun := grants.Before(gs, start.Add(run))
		f := grants.Measure(gs, limit.Requests, limit.Window)
		possible := float64(limit.Requests) * run.Seconds() / limit.Window.Seconds()
		used := float64(inRun) / possible
		t.Logf("figures: 200 goroutines on %v for %v, each cancelling at a random time up to 4 windows: %d cancelled, %d granted in the run of %.0f possible (%.1f%%), busiest window %d",
			limit, run, cancels, inRun, possible, 100*used, f.Most)
		assert.LessOrEqual(t, f.Most, limit.Requests, "never more than the limit in a window")
		assert.GreaterOrEqual(t, used, 0.9, "the freed slots are taken")
	})
}

// A limit above 256 per window is kept at coarse ticks (a divisor of the
// window, here 4ms for 5000/1s), and a grant is recorded at its tick's end.
// That only delays, and under saturation costs next to nothing: grants a
// window apart stay on ticks.
func TestCoarseTicksKeepUtilisationUnderSaturation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		limit := limiter.Limit{Requests: 5000, Window: time.Second}
		rec := &grants.Recorder{}
		l, err := memory.New(limit, memory.WithObserver(rec))
		require.NoError(t, err)
		ctx, stop := context.WithTimeout(t.Context(), 5*time.Second)
		defer stop()
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				for l.Acquire(ctx, 5) == nil {
				}
			})
		}
		wg.Wait()
		gs := rec.Grants()
		f := grants.Measure(gs, limit.Requests, limit.Window) // sorts gs
		// Utilisation over the first four whole windows: what an exact
		// limiter grants there is four windows' worth.
		units := grants.Before(gs, gs[0].At.Add(4*limit.Window))
		used := float64(units) / float64(4*limit.Requests)
		t.Logf("figures: %v saturated by 64 goroutines taking 5 units at a time: %d units in the first 4 windows of %d possible (%.2f%%), busiest window %d units (limit %d)",
			limit, units, 4*limit.Requests, 100*used, f.Most, limit.Requests)
		assert.LessOrEqual(t, f.Most, limit.Requests)
		assert.GreaterOrEqual(t, used, 0.999)
	})
}
