package redis_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/internal/grants"
	"github.com/descope-mgmt/ratelimit/internal/redishook"
	"github.com/descope-mgmt/ratelimit/internal/redistest"
	"github.com/descope-mgmt/ratelimit/limiter"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

// Goroutines of one process that ask at once share script calls, and the
// quota stays exact and fully used.
func TestCoalescingSharesScriptCallsAndStaysExact(t *testing.T) {
	c := redistest.Client(t)
	hook := redishook.Scripts()
	c.AddHook(hook)
	limit := limiter.Limit{Requests: 20, Window: 250 * time.Millisecond}
	rec := &grants.Recorder{}
	l, err := redislimiter.New(c, redistest.Key(t), limit, redislimiter.WithObserver(rec))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 48 {
		wg.Go(func() {
			for l.Acquire(ctx, 1) == nil {
			}
		})
	}
	wg.Wait()
	f := grants.Measure(rec.Grants(), limit.Requests, limit.Window)
	calls := hook.Load()
	t.Logf("figures: 48 goroutines on one limiter, %v, 2s: %d grants in %d script calls (%.2f grants per call); busiest window %d (limit %d); utilisation %.1f%%",
		limit, f.Grants, calls, float64(f.Grants)/float64(calls), f.Most, limit.Requests, 100*f.Utilisation)
	assert.LessOrEqual(t, f.Most, limit.Requests)
	assert.GreaterOrEqual(t, f.Utilisation, 0.97)
	assert.Less(t, calls, int64(f.Grants), "requests that arrive together share a call")
}

// A caller cancelled just as its reservation is made (its answer ready,
// its context ended, both at once) must still give the reservation back.
func TestCancelRightAfterTheReservationGivesItBack(t *testing.T) {
	m := miniredis.RunT(t)
	l, err := redislimiter.New(newClient(t, m.Addr()), "q", limiter.PerHour(1))
	require.NoError(t, err)
	require.NoError(t, l.Acquire(t.Context(), 1)) // full for an hour
	for i := range 200 {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- l.Acquire(ctx, 1) }()
		require.Eventually(t, func() bool {
			st, err := l.Status(t.Context())
			return err == nil && st.Queued == 1
		}, 5*time.Second, 50*time.Microsecond)
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		st, err := l.Status(t.Context())
		require.NoError(t, err)
		require.Zero(t, st.Queued, "round %d: the cancelled reservation is still queued", i)
	}
}
