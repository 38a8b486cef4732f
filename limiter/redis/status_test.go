package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	assert.Equal(t, redislimiter.Status{Now: now.Local()}, st, "an unused quota")
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
		assert.Equal(t, redislimiter.Status{Now: now.Add(20 * time.Second).Local(), Used: 5, Queued: 2, NextFree: 40 * time.Second}, st)
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
	assert.Equal(t, redislimiter.Status{Now: now.Local(), Used: 2, NextFree: time.Minute}, st, "create binds: 2 per minute")
}
