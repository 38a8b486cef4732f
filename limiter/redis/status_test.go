package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/internal/redistest"
	"github.com/descope-mgmt/ratelimit/limiter"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

func TestStatusReadsWithoutConsuming(t *testing.T) {
	m := miniredis.RunT(t)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	m.SetTime(now)
	l, err := redislimiter.New(newClient(t, m.Addr()), "q", limiter.PerMinute(5))
	require.NoError(t, err)
	ctx := t.Context()

	st, err := l.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, redislimiter.Status{Now: now.Local(), Limit: limiter.PerMinute(5)}, st, "an unused quota")
	assert.False(t, m.Exists("q"), "reading must not create the key")

	require.NoError(t, l.Acquire(ctx, 3))
	m.SetTime(now.Add(10 * time.Second))
	require.NoError(t, l.Acquire(ctx, 2))
	// Full: the next two wait for the first three to leave at +60s.
	waiting, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- l.Acquire(waiting, 2) }()
	require.Eventually(t, func() bool {
		st, err = l.Status(ctx)
		return err == nil && st.Queued == 2
	}, 5*time.Second, time.Millisecond)

	m.SetTime(now.Add(20 * time.Second))
	for range 3 { // reads change nothing
		st, err = l.Status(ctx)
		require.NoError(t, err)
		assert.Equal(t, redislimiter.Status{Now: now.Add(20 * time.Second).Local(), Limit: limiter.PerMinute(5), Used: 5, Queued: 2, NextFree: 40 * time.Second}, st)
	}
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	st, err = l.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, st.Queued, "the cancelled reservation is gone")
	assert.Equal(t, 40*time.Second, st.NextFree, "the five granted units still fill the window")
}

func TestStatusOfACompositeShowsTheBindingLimit(t *testing.T) {
	m := miniredis.RunT(t)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	m.SetTime(now)
	l, err := redislimiter.NewComposite(newClient(t, m.Addr()), []limiter.Quota{
		{Key: "{p}:create", Limits: []limiter.Limit{limiter.PerMinute(2)}},
		{Key: "{p}:mgmt", Limits: []limiter.Limit{limiter.PerSecond(10), limiter.PerHour(50)}},
	})
	require.NoError(t, err)
	require.NoError(t, l.Acquire(t.Context(), 2))
	st, err := l.Status(t.Context())
	require.NoError(t, err)
	assert.Equal(t, redislimiter.Status{Now: now.Local(), Limit: limiter.PerMinute(2), Used: 2, NextFree: time.Minute}, st, "create binds: 2 per minute")
}

// A quota describes itself: ReadStatus needs no limit, and says when the
// key is missing, holds something else, or replicas disagree on the limit.
func TestReadStatusUsesTheLimitsStoredInTheKey(t *testing.T) {
	m := miniredis.RunT(t)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	m.SetTime(now)
	c := newClient(t, m.Addr())
	ctx := t.Context()

	_, err := redislimiter.ReadStatus(ctx, c, "q")
	assert.ErrorIs(t, err, redislimiter.ErrNoQuota, "never used")

	a, err := redislimiter.New(c, "q", limiter.PerSecond(10))
	require.NoError(t, err)
	require.NoError(t, a.Acquire(ctx, 4))
	st, err := redislimiter.ReadStatus(ctx, c, "q")
	require.NoError(t, err)
	assert.Equal(t, redislimiter.Status{Now: now.Local(), Limit: limiter.PerSecond(10), Used: 4}, st)

	// Another replica with another limit: it says so, at most once a window,
	// and the key then stores its limit and when they changed.
	var differ []limiter.Event
	b, err := redislimiter.New(c, "q", limiter.Limit{Requests: 10, Window: 10 * time.Second},
		redislimiter.WithObserver(limiter.ObserverFunc(func(e limiter.Event) {
			if e.Kind == limiter.EventLimitsDiffer {
				differ = append(differ, e)
			}
		})))
	require.NoError(t, err)
	m.SetTime(now.Add(time.Second))
	for range 3 {
		require.NoError(t, b.Acquire(ctx, 1))
		require.NoError(t, a.Acquire(ctx, 1))
	}
	require.Len(t, differ, 1)
	assert.Equal(t, limiter.Event{Kind: limiter.EventLimitsDiffer, Key: "q", Limit: limiter.Limit{Requests: 10, Window: 10 * time.Second}}, differ[0])
	st, err = redislimiter.ReadStatus(ctx, c, "q")
	require.NoError(t, err)
	assert.Equal(t, limiter.PerSecond(10), st.Limit, "the last writer's")
	assert.Equal(t, now.Add(time.Second).Local(), st.LimitsChangedAt)

	// Keys that are not quotas: never read as one, never overwritten.
	require.NoError(t, c.Set(ctx, "json", `{"user":"x","n":1234567890}`, 0).Err())
	require.NoError(t, c.Set(ctx, "short", "hello", 0).Err())
	require.NoError(t, c.HSet(ctx, "hash", "f", "v").Err())
	for _, key := range []string{"json", "short", "hash"} {
		_, err := redislimiter.ReadStatus(ctx, c, key)
		assert.ErrorIs(t, err, redislimiter.ErrNotAQuota, key)
		l, err := redislimiter.New(c, key, limiter.PerSecond(10))
		require.NoError(t, err)
		_, err = l.TryAcquire(ctx, 1)
		assert.ErrorIs(t, err, redislimiter.ErrNotAQuota, key)
		assert.NotContains(t, err.Error(), "WRONGTYPE")
	}
	assert.Equal(t, `{"user":"x","n":1234567890}`, c.Get(ctx, "json").Val())
	assert.Equal(t, "hello", c.Get(ctx, "short").Val())
	_, err = redislimiter.ReadStatus(ctx, c, "hash")
	assert.ErrorContains(t, err, "limiter/redis: not a quota: key hash holds a hash, not a string; delete it or use another key")
}

// The same on a real redis-server, whose Lua reports WRONGTYPE its own way.
func TestForeignKeysOnARealServer(t *testing.T) {
	c := redistest.Client(t)
	ctx := t.Context()
	base := redistest.Key(t)
	for _, kind := range []string{"json", "short", "hash", "list"} {
		key := base + ":" + kind
		switch kind {
		case "json":
			require.NoError(t, c.Set(ctx, key, `{"user":"x","n":1234567890}`, time.Minute).Err())
		case "short":
			require.NoError(t, c.Set(ctx, key, "hello", time.Minute).Err())
		case "hash":
			require.NoError(t, c.HSet(ctx, key, "f", "v").Err())
		case "list":
			require.NoError(t, c.RPush(ctx, key, "a").Err())
		}
		t.Cleanup(func() { c.Del(context.WithoutCancel(ctx), key) })
		l, err := redislimiter.New(c, key, limiter.PerSecond(10))
		require.NoError(t, err)
		_, err = l.TryAcquire(ctx, 1)
		assert.ErrorIs(t, err, redislimiter.ErrNotAQuota, kind)
		assert.NotContains(t, err.Error(), "WRONGTYPE", kind)
		_, err = redislimiter.ReadStatus(ctx, c, key)
		assert.ErrorIs(t, err, redislimiter.ErrNotAQuota, kind)
	}
	assert.Equal(t, "hello", c.Get(ctx, base+":short").Val(), "never overwritten")
}
