package redis_test

import (
	"context"
	"sync"
	"testing"
	"time"

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
