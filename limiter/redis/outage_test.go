package redis_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/internal/grants"
	"github.com/descope-mgmt/ratelimit/internal/redistest"
	"github.com/descope-mgmt/ratelimit/limiter"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

// The default failure policy is to fail closed: while Redis is gone,
// Acquire returns a wrapped backend error quickly (bounded by the client's
// timeouts) and grants nothing; when Redis is back, grants resume; no
// goroutine is left behind. A restart that loses the data is noticed by the
// first call from a replica that holds a later grant than the key knows,
// and no window ever holds more than the limit.
func TestRedisKilledAndRestartedEmpty(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a redis-server")
	}
	before := runtime.NumGoroutine()
	srv := redistest.Start(t)
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr, DialTimeout: 100 * time.Millisecond,
		ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond, MaxRetries: -1, PoolSize: 64})
	limit := limiter.Limit{Requests: 10, Window: 500 * time.Millisecond}
	rec := &grants.Recorder{}
	l, err := redislimiter.New(c, "q", limit, redislimiter.WithObserver(rec))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	var failures, slowest atomic.Int64
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			for ctx.Err() == nil {
				start := time.Now()
				err := l.Acquire(ctx, 1)
				if err != nil && ctx.Err() == nil {
					failures.Add(1)
					if took := time.Since(start); took > time.Duration(slowest.Load()) {
						slowest.Store(int64(took))
					}
					assert.ErrorContains(t, err, `limiter/redis: key "q"`)
					assert.False(t, errors.Is(err, context.Canceled))
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(time.Second)
	srv.Kill()
	killed := time.Now()
	time.Sleep(time.Second)
	grantsBeforeRestart := rec.Len()
	srv.Restart() // empty: no persistence
	restarted := time.Now()
	time.Sleep(1500 * time.Millisecond)
	cancel()
	wg.Wait()
	require.NoError(t, c.Close())

	record := rec.Grants()
	var during, after []grants.Grant
	firstAfter := time.Duration(-1)
	for _, g := range record {
		switch {
		case g.At.After(killed) && g.At.Before(restarted):
			during = append(during, g)
		case !g.At.Before(restarted):
			after = append(after, g)
			if firstAfter < 0 || g.At.Sub(restarted) < firstAfter {
				firstAfter = g.At.Sub(restarted)
			}
		}
	}
	all := grants.Measure(record, limit.Requests, limit.Window)
	t.Logf("figures: limit %v, 40 goroutines; Redis killed for 1s: %d failed calls, slowest failure %v; grants timed inside the outage %d (reserved before it); "+
		"after an empty restart, first grant %v later; busiest window over the whole run %d (limit %d)",
		limit, failures.Load(), time.Duration(slowest.Load()).Round(time.Millisecond), len(during), firstAfter.Round(time.Millisecond), all.Most, limit.Requests)

	assert.Positive(t, failures.Load(), "calls fail while Redis is gone")
	assert.Less(t, time.Duration(slowest.Load()), time.Second, "and fail quickly, bounded by the client's timeouts")
	var beforeRestart []grants.Grant
	for _, g := range record {
		if g.At.Before(restarted) {
			beforeRestart = append(beforeRestart, g)
		}
	}
	// Reservations made before the outage come due in it, on schedule.
	assert.LessOrEqual(t, grants.Measure(beforeRestart, limit.Requests, limit.Window).Most, limit.Requests, "exact until the data is lost")
	assert.Greater(t, grantsBeforeRestart, 0)
	assert.NotEmpty(t, after, "grants resume after the restart")
	// The limiter remembers the latest grant it holds; the empty key does
	// not know it, so the script fills the window ending there before
	// granting: the old schedule and the new never share a window.
	assert.LessOrEqual(t, all.Most, limit.Requests, "no fresh window on top of the one before the restart")
	srv.Kill() // its helper goroutines are the test's, not the limiter's
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= before+2 }, 5*time.Second, 20*time.Millisecond,
		"goroutines left behind: %d, before %d", runtime.NumGoroutine(), before)
}
