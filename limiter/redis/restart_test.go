package redis_test

import (
	"context"
	"sync"
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

// replica is one process sharing the quota: its own client, pause watcher
// and limiter, and the grants it made.
type replica struct {
	l   *redislimiter.Limiter
	rec grants.Recorder
}

// threeReplicas starts a redis-server and three replicas of one quota on it.
func threeReplicas(t *testing.T, limit limiter.Limit) (*redistest.Server, []*replica) {
	srv := redistest.Start(t)
	var rs []*replica
	for range 3 {
		c := goredis.NewClient(&goredis.Options{Addr: srv.Addr, DialTimeout: 200 * time.Millisecond,
			ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond, MaxRetries: -1})
		t.Cleanup(func() { c.Close() })
		w, err := redislimiter.NewWatcher(t.Context(), c)
		require.NoError(t, err)
		t.Cleanup(func() { w.Close() })
		r := &replica{}
		r.l, err = redislimiter.New(c, "q", limit, redislimiter.WithWatcher(w), redislimiter.WithObserver(&r.rec))
		require.NoError(t, err)
		rs = append(rs, r)
	}
	return srv, rs
}

// drive has every replica acquire one unit at a time from 2 goroutines for
// d, after first (a replica's index, or -1) made the first call.
func drive(t *testing.T, rs []*replica, first int, d time.Duration) {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	if first >= 0 {
		_, err := rs[first].l.TryAcquire(ctx, 1)
		require.NoError(t, err, "the first call after the restart")
	}
	var waits []func() int64
	for _, r := range rs { // a failed call (Redis still coming back) pauses its goroutine 20ms
		waits = append(waits, grants.Drive(ctx, 2, func(ctx context.Context) error { return r.l.Acquire(ctx, 1) }))
	}
	for _, wait := range waits {
		wait()
	}
}

// restartEmpty kills the server and starts it again with no data, and
// returns the server's clock at the restart.
func restartEmpty(t *testing.T, srv *redistest.Server) time.Time {
	srv.Kill()
	srv.Restart()
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer c.Close()
	now, err := c.Time(t.Context()).Result()
	require.NoError(t, err)
	return now
}

// Three replicas share a quota, and Redis restarts empty in each phase of
// it. A replica's next call carries its latest grant and the latest
// reservation its last answer showed; the script, finding the key lost,
// fills every limit at that time (or now, if later), and a pause any
// replica heard of is written back. The promise that holds through a
// restart, exactly: a window holds more than the limit only by units
// reserved before the loss later than what the first replica to call knew
// of, and by no more.
func TestThreeReplicasAcrossARestart(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a redis-server")
	}
	limit := limiter.Limit{Requests: 10, Window: 2 * time.Second}
	measure := func(rs []*replica) (all []grants.Grant, most int) {
		for _, r := range rs {
			all = append(all, r.rec.Grants()...)
		}
		return all, grants.Measure(all, limit.Requests, limit.Window).Most
	}

	t.Run("full window", func(t *testing.T) {
		srv, rs := threeReplicas(t, limit)
		for i, n := range []int{4, 3, 3} {
			require.NoError(t, rs[i].l.Acquire(t.Context(), n))
		}
		restartEmpty(t, srv)
		drive(t, rs, -1, 3*time.Second)
		all, most := measure(rs)
		t.Logf("figures: %v, window filled by 3 replicas, then an empty restart; %d grants, busiest window %d", limit, len(all), most)
		assert.Equal(t, limit.Requests, most, "no window over the limit, and the limit is used")
	})

	// Replica 0 holds the whole window and 5 units queued a window on. The
	// refill after the restart covers the queue when the replica that calls
	// first knew of it: replica 0 itself, or one whose last answer showed
	// the queue. A replica that never called knows nothing: its grants can
	// share a window with everything reserved before the loss.
	queued := func(t *testing.T, first int, othersCalled bool) (most, unknown int) {
		srv, rs := threeReplicas(t, limit)
		require.NoError(t, rs[0].l.Acquire(t.Context(), 10))
		due := rs[0].rec.Grants()[0].At.Add(limit.Window) // when the queued units are reserved for
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() { assert.NoError(t, rs[0].l.Acquire(t.Context(), 1)) }) // reserved a window on
		}
		time.Sleep(300 * time.Millisecond) // the 5 are reserved and asleep
		if othersCalled {
			for _, r := range rs[1:] {
				d, err := r.l.TryAcquire(t.Context(), 1)
				require.NoError(t, err)
				require.False(t, d.Allowed)
			}
		}
		at := restartEmpty(t, srv)
		require.True(t, due.After(at), "the queued units are still ahead at the restart")
		drive(t, rs, first, 4*time.Second)
		wg.Wait()
		all, most := measure(rs)
		if first != 0 && !othersCalled {
			unknown = 15 // everything reserved in the window before the loss
		}
		t.Logf("figures: %v; replica 0 holds 10 and has 5 queued; empty restart; replica %d calls first (others called before: %v): %d grants, busiest window %d",
			limit, first, othersCalled, len(all), most)
		return most, unknown
	}
	t.Run("queue, its owner first", func(t *testing.T) {
		most, _ := queued(t, 0, false)
		assert.Equal(t, limit.Requests, most, "exact: the refill is at the owner's latest reservation")
	})
	t.Run("queue, another replica first, that knew of it", func(t *testing.T) {
		most, _ := queued(t, 1, true)
		assert.Equal(t, limit.Requests, most, "exact: the refill is at the latest reservation the first caller knew")
	})
	t.Run("queue, a replica that never called first", func(t *testing.T) {
		most, unknown := queued(t, 1, false)
		assert.LessOrEqual(t, most, limit.Requests+unknown, "the bound: the limit plus what the first caller did not know of")
		assert.Greater(t, most, limit.Requests, "the bound is reached: a replica with no history gets a fresh window")
	})

	t.Run("pause", func(t *testing.T) {
		srv, rs := threeReplicas(t, limit)
		require.NoError(t, rs[0].l.Acquire(t.Context(), 2))
		c := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
		defer c.Close()
		before, err := c.Time(t.Context()).Result()
		require.NoError(t, err)
		const pause = 2 * time.Second
		require.NoError(t, rs[0].l.Pause(t.Context(), pause))
		time.Sleep(100 * time.Millisecond) // every replica's watcher heard it
		at := restartEmpty(t, srv)
		drive(t, rs, 2, 3*time.Second)
		all, most := measure(rs)
		var inside int
		for _, g := range all {
			if g.At.After(at) && g.At.Before(before.Add(pause)) {
				inside++
			}
		}
		t.Logf("figures: %v; a %v pause heard by 3 replicas, an empty restart %v into it: %d grants inside the pause, busiest window %d",
			limit, pause, at.Sub(before).Round(time.Millisecond), inside, most)
		assert.Zero(t, inside, "the pause outlives the key")
		assert.LessOrEqual(t, most, limit.Requests)
		assert.Greater(t, len(all), 2, "grants resume after the pause")
	})
}
