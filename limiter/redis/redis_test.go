package redis_test

import (
	"context"
	"crypto/sha1"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/internal/redishook"
	"github.com/descope-mgmt/ratelimit/internal/redistest"
	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/limitertest"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
	"github.com/descope-mgmt/ratelimit/scripts/lua"
)

// conformance runs the suite with a fresh client (and pause watcher) per
// replica handle.
func conformance(t *testing.T, newClient func(t *testing.T) goredis.UniversalClient) {
	limitertest.Run(t, limitertest.Backend{
		NewQuota: func(t *testing.T, limit limiter.Limit) func() limiter.Limiter {
			key := redistest.Key(t)
			return func() limiter.Limiter {
				l, err := redislimiter.New(newClient(t), key, limit)
				require.NoError(t, err)
				return l
			}
		},
		Open: func(t *testing.T) func(quotas ...limiter.Quota) limiter.Limiter {
			tag := "{" + redistest.Key(t) + "}:" // one slot for the namespace
			return func(quotas ...limiter.Quota) limiter.Limiter {
				c := newClient(t)
				w, err := redislimiter.NewWatcher(t.Context(), c)
				require.NoError(t, err)
				t.Cleanup(func() { _ = w.Close() })
				named := make([]limiter.Quota, len(quotas))
				for i, q := range quotas {
					named[i] = limiter.Quota{Key: tag + q.Key, Limits: q.Limits}
				}
				l, err := redislimiter.NewComposite(c, named, redislimiter.WithWatcher(w))
				require.NoError(t, err)
				return l
			}
		},
	})
}

func newClient(t *testing.T, addr string) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestConformanceMiniredis(t *testing.T) {
	m := miniredis.RunT(t) // no SetTime: TIME follows the real clock, like a server
	conformance(t, func(t *testing.T) goredis.UniversalClient { return newClient(t, m.Addr()) })
}

func TestConformanceRedisServer(t *testing.T) {
	addr := redistest.Addr(t)
	conformance(t, func(t *testing.T) goredis.UniversalClient { return newClient(t, addr) })
}

func TestConformanceRedisCluster(t *testing.T) {
	nodes := redistest.Cluster(t, 3)
	// Once the (parallel) cases are done: window.lua ran as a function on
	// every master, loaded on each.
	var admins []*goredis.Client
	for _, n := range nodes {
		admins = append(admins, newClient(t, n.Addr))
	}
	t.Cleanup(func() {
		for _, c := range admins {
			fcalls, evals := commandCalls(t, c, "fcall"), commandCalls(t, c, "evalsha")+commandCalls(t, c, "eval")
			t.Logf("figures: %s: %d FCALL, %d EVAL and EVALSHA calls", c.Options().Addr, fcalls, evals)
			assert.Positive(t, fcalls, "FCALL on %s", c.Options().Addr)
			assert.Zero(t, evals, "scripts on %s", c.Options().Addr)
		}
	})
	conformance(t, func(t *testing.T) goredis.UniversalClient { return redistest.ClusterClient(t, nodes) })
}

func TestTimeComesFromTheServer(t *testing.T) {
	m := miniredis.RunT(t)
	serverNow := time.Date(2031, 5, 4, 3, 2, 1, 0, time.UTC) // far from the client's clock
	m.SetTime(serverNow)
	var (
		mu     sync.Mutex
		grants []time.Time
	)
	l, err := redislimiter.New(newClient(t, m.Addr()), "q", limiter.PerMinute(1),
		redislimiter.WithObserver(limiter.ObserverFunc(func(e limiter.Event) {
			mu.Lock()
			defer mu.Unlock()
			if e.Kind == limiter.EventGrant {
				grants = append(grants, e.At)
			}
		})))
	require.NoError(t, err)
	ctx := t.Context()
	d, err := l.TryAcquire(ctx, 1)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Len(t, grants, 1)
	assert.True(t, serverNow.Equal(grants[0]), "grant time %v, want the server's %v", grants[0], serverNow)

	m.SetTime(serverNow.Add(20 * time.Second)) // only the server's clock moves
	d, err = l.TryAcquire(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, limiter.Decision{RetryAfter: 40 * time.Second}, d)

	m.SetTime(serverNow.Add(time.Minute))
	d, err = l.TryAcquire(ctx, 1)
	require.NoError(t, err)
	assert.True(t, d.Allowed, "a minute later on the server's clock")
}

// window.lua runs as a function where Redis has functions (redis-server 7)
// and as a script where it has not (miniredis, like Redis 6). Code flushed
// from the server (FUNCTION FLUSH, SCRIPT FLUSH, a restart) is loaded
// again by the next call, and the key's state is kept.
func TestSurvivesFlushedCode(t *testing.T) {
	for _, srv := range []struct {
		name      string
		addr      func(t *testing.T) string
		functions bool
	}{
		// Flushing a shared server's code would affect others: both servers
		// here are this test's own.
		{"miniredis", func(t *testing.T) string { return miniredis.RunT(t).Addr() }, false},
		{"redis-server", func(t *testing.T) string { return redistest.Start(t).Addr }, true}, // even with REDIS_ADDR
	} {
		t.Run(srv.name, func(t *testing.T) {
			c := goredis.NewClient(&goredis.Options{Addr: srv.addr(t)})
			t.Cleanup(func() { _ = c.Close() })
			fcalls, evals := countWays(c)
			l, err := redislimiter.New(c, "flushed", limiter.PerHour(4))
			require.NoError(t, err)
			ctx := t.Context()
			require.NoError(t, l.Acquire(ctx, 1))
			require.NoError(t, c.ScriptFlush(ctx).Err())
			if srv.functions {
				require.NoError(t, c.FunctionFlush(ctx).Err())
			}
			loaded, err := c.ScriptExists(ctx, fmt.Sprintf("%x", sha1.Sum([]byte(lua.Window)))).Result()
			require.NoError(t, err)
			require.Equal(t, []bool{false}, loaded, "the script is gone")
			for want := 2; want >= 1; want-- {
				d, err := l.TryAcquire(ctx, 1)
				require.NoError(t, err)
				assert.Equal(t, limiter.Decision{Allowed: true, Remaining: want}, d, "the code is loaded again and the state kept")
			}
			if srv.functions {
				libs, err := c.FunctionList(ctx, goredis.FunctionListQuery{LibraryNamePattern: lua.Function}).Result()
				require.NoError(t, err)
				require.Len(t, libs, 1, "the library is loaded")
				assert.Zero(t, evals.Load(), "never run as a script")
				// Each flush costs one call that finds no function: the first
				// grant, and the first after the flush.
				assert.EqualValues(t, 3+2, fcalls.Load(), "FCALL for every grant, and again after each load")
			} else {
				assert.EqualValues(t, 1, fcalls.Load(), "FCALL tried once, then the script for good")
				assert.GreaterOrEqual(t, evals.Load(), int64(3), "a script call for every grant")
			}
		})
	}
}

// A server that refuses FUNCTION LOAD for a while (a replica, before a
// failover promotes it) makes that call fail as a script would; the
// limiter does not give up on functions for good, and runs as one once
// the server takes writes.
func TestFunctionsSurviveAReadOnlySpell(t *testing.T) {
	master, srv := redistest.Start(t), redistest.Start(t)
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	ctx := t.Context()
	require.NoError(t, c.Do(ctx, "REPLICAOF", "127.0.0.1", master.Port).Err())
	fcalls, evals := countWays(c)
	l, err := redislimiter.New(c, "spell", limiter.PerHour(3))
	require.NoError(t, err)
	_, err = l.TryAcquire(ctx, 1)
	require.ErrorContains(t, err, "READONLY", "a replica takes no writes, as a function or a script")
	require.Positive(t, evals.Load(), "that call ran as a script")

	require.NoError(t, c.Do(ctx, "REPLICAOF", "NO", "ONE").Err())
	scripts := evals.Load()
	for want := 2; want >= 1; want-- {
		d, err := l.TryAcquire(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, limiter.Decision{Allowed: true, Remaining: want}, d)
	}
	assert.Equal(t, scripts, evals.Load(), "no script once the server takes writes")
	t.Logf("figures: %d FCALL, %d EVAL and EVALSHA calls", fcalls.Load(), evals.Load())
}

// countWays counts the calls c sends that run window.lua as a function
// (FCALL) and as a script (EVALSHA, EVAL).
func countWays(c *goredis.Client) (fcalls, evals *redishook.Counter) {
	fcalls = &redishook.Counter{Match: func(name string) bool { return name == "fcall" }}
	evals = &redishook.Counter{Match: func(name string) bool { return name == "evalsha" || name == "eval" }}
	c.AddHook(fcalls)
	c.AddHook(evals)
	return fcalls, evals
}

// The key lives a window after its newest grant, or 20s after the newest
// request id it remembers (so a client's retry of a call is still
// recognised), whichever is later, plus at most 5s: its expiry is set that
// far ahead, so most calls need not move it.
func TestKeyExpiresAWindowAfterTheLastGrant(t *testing.T) {
	const slack = 5 * time.Second
	c := redistest.Client(t)
	ctx := t.Context()
	for _, window := range []time.Duration{10 * time.Second, time.Minute} {
		key := redistest.Key(t) + window.String()
		l, err := redislimiter.New(c, key, limiter.Limit{Requests: 2, Window: window})
		require.NoError(t, err)
		start := time.Now()
		require.NoError(t, l.Acquire(ctx, 2))
		life := max(window, 20*time.Second)
		ttl, err := c.PTTL(ctx, key).Result()
		require.NoError(t, err)
		assert.Greater(t, ttl, life-time.Since(start), "window %v", window)
		assert.LessOrEqual(t, ttl, life+slack+2*time.Millisecond, "window %v", window)

		// A reservation in the future keeps the key as long after it.
		deadline, cancel := context.WithTimeout(ctx, time.Hour)
		go func() { _ = l.Acquire(deadline, 1) }() // reserved a window on
		require.Eventually(t, func() bool {
			ttl, err = c.PTTL(ctx, key).Result()
			return err == nil && ttl > window+life-time.Since(start)
		}, 5*time.Second, 5*time.Millisecond)
		assert.LessOrEqual(t, ttl, window+life+slack+2*time.Millisecond, "window %v", window)
		cancel()
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	var typedNil *goredis.Client
	for _, tc := range []struct {
		name   string
		client goredis.Scripter
		key    string
		limit  limiter.Limit
		want   error
		text   string
	}{
		{"nil client", nil, "k", limiter.PerSecond(1), limiter.ErrInvalidConfig, "client is nil"},
		{"typed nil client", typedNil, "k", limiter.PerSecond(1), limiter.ErrInvalidConfig, "client is nil"},
		{"empty key", c, "", limiter.PerSecond(1), limiter.ErrInvalidConfig, "key is empty"},
		{"zero limit", c, "k", limiter.Limit{}, limiter.ErrInvalidLimit, "requests=0"},
		{"no window", c, "k", limiter.Limit{Requests: 1}, limiter.ErrInvalidLimit, "window=0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := redislimiter.New(tc.client, tc.key, tc.limit)
			assert.Nil(t, l)
			assert.ErrorIs(t, err, tc.want)
			assert.ErrorContains(t, err, tc.text)
		})
	}
}

func TestBackendErrorIsQuickAndNamesTheKey(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	var errs int
	l, err := redislimiter.New(c, "some-quota", limiter.PerSecond(5),
		redislimiter.WithObserver(limiter.ObserverFunc(func(e limiter.Event) {
			if e.Kind == limiter.EventError {
				errs++
			}
		})))
	require.NoError(t, err)
	start := time.Now()
	err = l.Acquire(t.Context(), 1)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `key "some-quota"`)
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Equal(t, 1, errs, "the observer sees the failure")
}

func TestMemoryPerUnitOfTheLimit(t *testing.T) {
	c := redistest.Client(t)
	ctx := t.Context()
	for _, requests := range []int{100, 10_000} {
		key := redistest.Key(t)
		l, err := redislimiter.New(c, key, limiter.PerHour(requests))
		require.NoError(t, err)
		for range requests / 100 {
			require.NoError(t, l.Acquire(ctx, 100))
		}
		used, err := c.MemoryUsage(ctx, key).Result()
		require.NoError(t, err)
		perUnit := float64(used) / float64(requests)
		t.Logf("figures: MEMORY USAGE of a full %d/1h quota: %d bytes, %.1f bytes per unit", requests, used, perUnit)
		assert.Less(t, perUnit, 16.0)
	}
}

func TestChangingTheLimitKeepsTheHistory(t *testing.T) {
	c := redistest.Client(t)
	key := redistest.Key(t)
	ctx := t.Context()
	five, err := redislimiter.New(c, key, limiter.PerHour(5))
	require.NoError(t, err)
	require.NoError(t, five.Acquire(ctx, 5))

	three, err := redislimiter.New(c, key, limiter.PerHour(3))
	require.NoError(t, err)
	d, err := three.TryAcquire(ctx, 1)
	require.NoError(t, err)
	assert.False(t, d.Allowed, "the last hour already holds more than 3")

	ten, err := redislimiter.New(c, key, limiter.PerHour(10))
	require.NoError(t, err)
	d, err = ten.TryAcquire(ctx, 1)
	require.NoError(t, err)
	// All 5 grants are still held: 10 leaves 5 free, 4 after this one.
	assert.Equal(t, limiter.Decision{Allowed: true, Remaining: 4}, d)
}

func TestScriptRejectsBadArgumentsByItself(t *testing.T) {
	// Direct callers (redis-cli --eval) get a clear error, not a corrupt key.
	c := redistest.Client(t)
	for _, args := range [][]any{
		{"reserve", 0, 1, 0, -1, 0, 1, 5, 1000},
		{"reserve", 0, 1, 6, -1, 0, 1, 5, 1000},
		{"reserve", 0, 1, 1, -1, 0, 1, 0, 1000},
		{"nonsense"},
	} {
		err := c.Eval(t.Context(), lua.Window, []string{redistest.Key(t)}, args...).Err()
		require.Error(t, err, "%v", args)
		assert.True(t, strings.Contains(err.Error(), "window.lua:"), "%v: %v", args, err)
	}
}

// WithMargin spaces a quota's units a window and the margin apart, in
// every replica that uses it; a margin that pushes a window past the
// longest allowed fails before any I/O.
func TestMarginWidensEveryWindow(t *testing.T) {
	c := newClient(t, miniredis.RunT(t).Addr())
	ctx := t.Context()
	l, err := redislimiter.New(c, "q", limiter.PerSecond(2), redislimiter.WithMargin(500*time.Millisecond))
	require.NoError(t, err)
	require.NoError(t, l.Acquire(ctx, 2))
	d, err := l.TryAcquire(ctx, 1)
	require.NoError(t, err)
	assert.False(t, d.Allowed)
	assert.InDelta(t, 1500*time.Millisecond, d.RetryAfter, float64(50*time.Millisecond))
	st, err := l.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, limiter.Limit{Requests: 2, Window: 1500 * time.Millisecond}, st.Limit, "the key holds the widened limit")

	_, err = redislimiter.New(c, "q", limiter.PerSecond(2), redislimiter.WithMargin(0))
	assert.ErrorIs(t, err, limiter.ErrInvalidConfig)
	_, err = redislimiter.New(goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"}), "q",
		limiter.Limit{Requests: 1, Window: limiter.MaxWindow}, redislimiter.WithMargin(time.Second))
	assert.ErrorIs(t, err, limiter.ErrInvalidLimit)
}

// The schedule follows the Redis server's clock (TIME). A step of that
// clock moves every window with it: forward by d, the units of the current
// window are released d early in real time; back by d, no grant comes for
// d more. The README says what to do: slew, never step, Redis hosts' clocks.
func TestServerClockStepsMoveTheSchedule(t *testing.T) {
	m := miniredis.RunT(t)
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	m.SetTime(base)
	c := newClient(t, m.Addr())
	ctx := t.Context()
	l, err := redislimiter.New(c, "q", limiter.PerSecond(5))
	require.NoError(t, err)
	d, err := l.TryAcquire(ctx, 5)
	require.NoError(t, err)
	require.True(t, d.Allowed)

	m.SetTime(base.Add(800 * time.Millisecond)) // a step forward, no real time passed
	d, err = l.TryAcquire(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, limiter.Decision{RetryAfter: 200 * time.Millisecond}, d, "the window ends 800ms early in real time")

	m.SetTime(base.Add(-30 * time.Second)) // a step back
	d, err = l.TryAcquire(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, limiter.Decision{RetryAfter: 31 * time.Second}, d, "no grant until the clock is back where it was, and a window on")
}
