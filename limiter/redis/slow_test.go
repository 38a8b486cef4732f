package redis_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/internal/redistest"
	"github.com/descope-mgmt/ratelimit/limiter"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

// A slow or silent Redis: with ContextTimeoutEnabled the caller's deadline
// bounds every call; without it, the client's ReadTimeout does. The errors
// say what happened and name the key; nothing is granted.
func TestSlowAndSilentRedis(t *testing.T) {
	proxy := redistest.StartProxy(t, redistest.Addr(t))
	limit := limiter.PerSecond(100)
	newLimiter := func(opts *goredis.Options) *redislimiter.Limiter {
		opts.Addr = proxy.Addr
		c := goredis.NewClient(opts)
		t.Cleanup(func() { _ = c.Close() })
		l, err := redislimiter.New(c, redistest.Key(t), limit)
		require.NoError(t, err)
		require.NoError(t, l.Load(t.Context()))
		return l
	}
	withCtx := newLimiter(&goredis.Options{ContextTimeoutEnabled: true, MaxRetries: -1})
	withTimeout := newLimiter(&goredis.Options{ReadTimeout: 300 * time.Millisecond, MaxRetries: -1})

	proxy.SetDelay(50 * time.Millisecond)
	start := time.Now()
	require.NoError(t, withCtx.Acquire(t.Context(), 1), "slow but within the deadline")
	slow := time.Since(start)
	assert.GreaterOrEqual(t, slow, 100*time.Millisecond, "a round trip through the delaying proxy")

	proxy.SetSilent(true)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	err := withCtx.Acquire(ctx, 1)
	took := time.Since(start)
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "the caller's deadline: %v", err)
	assert.Less(t, took, 400*time.Millisecond, "bounded by the deadline")

	start = time.Now()
	err2 := withTimeout.Acquire(t.Context(), 1)
	took2 := time.Since(start)
	require.Error(t, err2)
	assert.Contains(t, err2.Error(), "limiter/redis: key")
	assert.Contains(t, err2.Error(), "i/o timeout")
	assert.Less(t, took2, time.Second, "bounded by ReadTimeout")
	// Many callers with short deadlines queue behind the silent call; they
	// leave at their deadlines, and once Redis answers again the limiter
	// works (no caller left holding the lead).
	var wg sync.WaitGroup
	var left atomic.Int64
	for i := range 20 {
		wg.Go(func() {
			dctx, stop := context.WithTimeout(t.Context(), time.Duration(50+10*i)*time.Millisecond)
			defer stop()
			if err := withCtx.Acquire(dctx, 1); errors.Is(err, context.DeadlineExceeded) {
				left.Add(1)
			}
		})
	}
	wg.Wait()
	assert.EqualValues(t, 20, left.Load(), "every caller left at its deadline")
	proxy.SetSilent(false)
	rctx, stop := context.WithTimeout(t.Context(), 2*time.Second)
	defer stop()
	require.NoError(t, withCtx.Acquire(rctx, 1), "Redis answers again: the limiter grants")

	t.Logf("figures: 50ms each way: Acquire %v; silent Redis: %v with a 200ms deadline (%v); %v with ReadTimeout 300ms (%v)",
		slow.Round(time.Millisecond), took.Round(time.Millisecond), err, took2.Round(time.Millisecond), err2)
}

// Callers share a coalesced call, and Redis goes silent: with go-redis's
// defaults (retries on, no ContextTimeoutEnabled, a 3s ReadTimeout) the
// call itself can hang for many seconds, yet each caller leaves at its own
// deadline, whether it leads the call or joins it.
func TestEveryCallerLeavesAtItsOwnDeadline(t *testing.T) {
	proxy := redistest.StartProxy(t, redistest.Addr(t))
	c := goredis.NewClient(&goredis.Options{Addr: proxy.Addr})
	t.Cleanup(func() { _ = c.Close() })
	l, err := redislimiter.New(c, redistest.Key(t), limiter.PerSecond(100))
	require.NoError(t, err)
	require.NoError(t, l.Load(t.Context()))
	const deadline = 800 * time.Millisecond
	timed := func() (time.Duration, error) {
		ctx, cancel := context.WithTimeout(t.Context(), deadline)
		defer cancel()
		start := time.Now()
		err := l.Acquire(ctx, 1)
		return time.Since(start), err
	}
	var wg sync.WaitGroup
	first, stopFirst := context.WithCancel(t.Context())
	second, stopSecond := context.WithCancel(t.Context())
	defer func() { stopFirst(); stopSecond(); proxy.SetSilent(false); wg.Wait() }()

	proxy.SetSilent(true)
	// The caller without a deadline leads; the timed one joins its call.
	wg.Go(func() { _ = l.Acquire(first, 1) })
	time.Sleep(20 * time.Millisecond)
	joined, err := timed()
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, joined, deadline+50*time.Millisecond, "a caller that joined")

	// The timed caller leads; one without a deadline joins.
	proxy.SetSilent(false)
	stopFirst()
	wg.Wait()
	proxy.SetSilent(true)
	type result struct {
		took time.Duration
		err  error
	}
	leader := make(chan result, 1)
	wg.Go(func() { took, err := timed(); leader <- result{took, err} })
	time.Sleep(20 * time.Millisecond)
	wg.Go(func() { _ = l.Acquire(second, 1) })
	r := <-leader
	led := r.took
	assert.ErrorIs(t, r.err, context.DeadlineExceeded)
	assert.Less(t, led, deadline+50*time.Millisecond, "the caller that led the call")
	t.Logf("figures: silent Redis, go-redis defaults, %v deadlines: the caller that joined a call left after %v, the one that led it after %v",
		deadline, joined.Round(time.Millisecond), led.Round(time.Millisecond))
}
