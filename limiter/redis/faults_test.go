package redis_test

import (
	"context"
	"fmt"
	"math"
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

// A slow Redis makes go-redis time out and run the call again; with
// retries off it just times out. Either way the script may have run, more
// than once: each run must record once, and what the failed calls reserved
// must be given back, so nothing stays reserved for nobody.
func TestRetriedAndTimedOutCallsLeaveNothingReserved(t *testing.T) {
	for _, retries := range []int{0, -1} { // 0: go-redis's default, 3 retries
		t.Run(fmt.Sprintf("MaxRetries=%d", retries), func(t *testing.T) {
			srv := redistest.Start(t)
			admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
			defer admin.Close()
			proxy := redistest.StartProxy(t, srv.Addr)
			// Connections made before Redis turns slow, so go-redis's retries
			// reach the server (a new connection's handshake would time out).
			c := goredis.NewClient(&goredis.Options{Addr: proxy.Addr, ReadTimeout: 100 * time.Millisecond, MaxRetries: retries, PoolSize: 150, MinIdleConns: 150})
			defer c.Close()
			var warm sync.WaitGroup
			for range 150 {
				warm.Go(func() { _ = c.Ping(t.Context()).Err() })
			}
			warm.Wait()
			key := redistest.Key(t)
			limit := limiter.Limit{Requests: 40, Window: 10 * time.Second}
			l, err := redislimiter.New(c, key, limit, redislimiter.WithCoalescing(false))
			require.NoError(t, err)
			require.NoError(t, l.Load(t.Context()))
			ctx := t.Context()
			require.NoError(t, admin.ConfigResetStat(ctx).Err())

			proxy.SetReplyDelay(300 * time.Millisecond) // every reply comes after the timeout
			var wg sync.WaitGroup
			var failed atomic.Int64
			for range 30 {
				wg.Go(func() {
					if err := l.Acquire(ctx, 1); err != nil {
						failed.Add(1)
					}
				})
			}
			wg.Wait()
			runs := scriptCalls(t, admin)
			proxy.SetReplyDelay(0)
			// The failed calls give back by id in the background.
			var st redislimiter.Status
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if st, err = l.Status(ctx); err == nil && st.Used == 0 && st.Queued == 0 {
					break
				}
			}
			require.NoError(t, err)
			require.Zero(t, st.Used+st.Queued, "units reserved for nobody: %+v", st)
			d, err := l.TryAcquire(ctx, limit.Requests)
			require.NoError(t, err)
			assert.True(t, d.Allowed, "the whole window is free")
			assert.EqualValues(t, 30, failed.Load(), "every call timed out")
			if retries == 0 {
				assert.Greater(t, runs, 30, "go-redis ran calls again")
			}
			t.Logf("figures: 30 Acquires, replies 300ms late, ReadTimeout 100ms, MaxRetries %d: %d failed, %d script runs on the server, then 0 units held and the whole window (%d) granted at once",
				retries, failed.Load(), runs, limit.Requests)
		})
	}
}

// Callers that give up while they wait leave freed slots; later requests
// take them, so a storm of cancellations still uses the quota.
func TestCancellationStormUsesTheQuota(t *testing.T) {
	c := redistest.Client(t)
	limit := limiter.Limit{Requests: 20, Window: 200 * time.Millisecond}
	rec := &grants.Recorder{}
	l, err := redislimiter.New(c, redistest.Key(t), limit, redislimiter.WithObserver(rec))
	require.NoError(t, err)
	const run = 3 * time.Second
	start := time.Now()
	cancels := grants.Storm(t.Context(), 200, run, 4*limit.Window, func(ctx context.Context) error { return l.Acquire(ctx, 1) })
	gs := rec.Grants()
	possible := float64(limit.Requests) * run.Seconds() / limit.Window.Seconds()
	inRun := grants.Before(gs, start.Add(run))
	used := float64(inRun) / possible
	busiest := grants.Measure(gs, limit.Requests, limit.Window).Most
	assert.LessOrEqual(t, busiest, limit.Requests, "never more than the limit in a window")
	assert.GreaterOrEqual(t, used, 0.9, "the freed slots are taken")
	t.Logf("figures: 200 goroutines on %v for %v, each cancelling at a random time up to 4 windows: %d cancelled, %d granted in the run of %.0f possible (%.1f%%), busiest window %d",
		limit, run, cancels, inRun, possible, 100*used, busiest)
}

// A window too long to add to a time is refused before any I/O.
func TestOverflowingWindowIsRefused(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	_, err := redislimiter.New(c, "q", limiter.Limit{Requests: 3, Window: time.Duration(math.MaxInt64)})
	require.ErrorIs(t, err, limiter.ErrInvalidLimit)
	assert.Contains(t, err.Error(), "want at most 8784h0m0s")
}

// waiter starts an Acquire of one unit that waits (its quota is full) and
// returns the function that makes it give up, which returns once it has.
func waiter(t *testing.T, l *redislimiter.Limiter) (giveUp func()) {
	ctx, cancel := context.WithCancel(t.Context())
	waited := make(chan error, 1)
	go func() { waited <- l.Acquire(ctx, 1) }()
	time.Sleep(100 * time.Millisecond) // reserved, and asleep
	return func() {
		cancel()
		require.ErrorIs(t, <-waited, context.Canceled, "the caller leaves at once")
	}
}

// A caller gives up after Redis came back empty: its give-back meets no key
// and must not make the limiter forget the grants it holds, so the window
// they fill stays full.
func TestGiveBackOnALostKeyKeepsTheWindowFull(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a redis-server")
	}
	srv := redistest.Start(t)
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	limit := limiter.Limit{Requests: 10, Window: 3 * time.Second}
	l, err := redislimiter.New(c, "q", limit)
	require.NoError(t, err)
	ctx := t.Context()
	require.NoError(t, l.Acquire(ctx, 10))
	giveUp := waiter(t, l) // reserved a window on
	srv.Kill()
	srv.Restart() // empty
	giveUp()
	granted := 0
	for range 10 {
		d, err := l.TryAcquire(ctx, 1)
		require.NoError(t, err)
		if d.Allowed {
			granted++
		}
	}
	t.Logf("figures: %v full, a waiter gives up after an empty restart: %d of 10 TryAcquires granted in the window", limit, granted)
	assert.Zero(t, granted, "the window the limiter's grants fill stays full")
}

// A give-back that Redis refuses (memory full, noeviction) is reported as
// an error event naming it; the reservation stays, which only delays.
func TestFailedGiveBackIsReported(t *testing.T) {
	srv := redistest.Start(t)
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr, MaxRetries: -1})
	defer c.Close()
	var mu sync.Mutex
	var errs []error
	obs := limiter.ObserverFunc(func(e limiter.Event) {
		if e.Kind == limiter.EventError {
			mu.Lock()
			errs = append(errs, e.Err)
			mu.Unlock()
		}
	})
	l, err := redislimiter.New(c, "q", limiter.Limit{Requests: 1, Window: time.Minute}, redislimiter.WithObserver(obs))
	require.NoError(t, err)
	ctx := t.Context()
	require.NoError(t, l.Acquire(ctx, 1))
	giveUp := waiter(t, l) // reserved a minute on
	require.NoError(t, c.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err())
	require.NoError(t, c.ConfigSet(ctx, "maxmemory", "1").Err())
	giveUp()
	require.NoError(t, c.ConfigSet(ctx, "maxmemory", "0").Err())
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, errs, 1)
	assert.ErrorContains(t, errs[0], "give back a reservation")
	assert.ErrorContains(t, errs[0], "OOM")
	t.Logf("figures: a give-back refused by a full Redis is reported: %v", errs[0])
}
