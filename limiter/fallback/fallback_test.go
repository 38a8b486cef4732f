package fallback_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/fallback"
	"github.com/descope-mgmt/ratelimit/limiter/memory"
)

var errDown = errors.New("redis: connection refused")

// switchable is a primary that can be taken down, and counts its calls.
type switchable struct {
	mu    sync.Mutex
	down  bool
	calls int
	inner limiter.Limiter
}

func (s *switchable) set(down bool) { s.mu.Lock(); s.down = down; s.mu.Unlock() }

func (s *switchable) count() int { s.mu.Lock(); defer s.mu.Unlock(); return s.calls }

func (s *switchable) enter() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.down {
		return errDown
	}
	return nil
}

func (s *switchable) Acquire(ctx context.Context, n int) error {
	if err := s.enter(); err != nil {
		return err
	}
	return s.inner.Acquire(ctx, n)
}

func (s *switchable) TryAcquire(ctx context.Context, n int) (limiter.Decision, error) {
	if err := s.enter(); err != nil {
		return limiter.Decision{}, err
	}
	return s.inner.TryAcquire(ctx, n)
}

func TestFallsBackToTheShareAndProbesItsWayBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner, err := memory.New(limiter.PerSecond(100))
		require.NoError(t, err)
		primary := &switchable{inner: inner}
		var events []limiter.EventKind
		l, err := fallback.New(primary, fallback.Share(limiter.PerSecond(6), 3), fallback.WithCoolDown(5*time.Second),
			fallback.WithObserver(limiter.ObserverFunc(func(e limiter.Event) {
				if e.Kind == limiter.EventFallbackEnter || e.Kind == limiter.EventFallbackLeave {
					events = append(events, e.Kind)
				}
			})))
		require.NoError(t, err)
		ctx := t.Context()
		try := func() bool {
			d, err := l.TryAcquire(ctx, 1)
			require.NoError(t, err)
			return d.Allowed
		}

		assert.True(t, try())
		assert.Equal(t, 1, primary.count(), "healthy: the primary decides")

		primary.set(true)
		assert.True(t, try(), "the failing call is served from the share")
		assert.True(t, try())
		assert.False(t, try(), "the share is 6/3 = 2 per second")
		assert.Equal(t, 2, primary.count(), "one failure, then the primary is left alone")
		assert.True(t, l.InFallback())

		time.Sleep(5 * time.Second)
		assert.True(t, try(), "the probe fails: served from the share again")
		assert.Equal(t, 3, primary.count())
		assert.True(t, try())
		assert.Equal(t, 3, primary.count(), "no second probe within the cool-down")

		primary.set(false)
		time.Sleep(5 * time.Second)
		assert.True(t, try(), "the probe answers")
		assert.False(t, l.InFallback())
		assert.True(t, try())
		assert.Equal(t, 5, primary.count(), "back on the primary")
		assert.Equal(t, []limiter.EventKind{limiter.EventFallbackEnter, limiter.EventFallbackLeave}, events)
	})
}

func TestCallerErrorsDoNotTripTheBreaker(t *testing.T) {
	inner, err := memory.New(limiter.PerHour(1))
	require.NoError(t, err)
	primary := &switchable{inner: inner}
	l, err := fallback.New(primary, limiter.PerSecond(100))
	require.NoError(t, err)
	ctx := t.Context()
	require.NoError(t, l.Acquire(ctx, 1))
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	assert.ErrorIs(t, l.Acquire(dctx, 1), limiter.ErrWouldPassDeadline, "the primary's refusal comes back")
	assert.ErrorIs(t, l.Acquire(ctx, 5), limiter.ErrExceedsLimit)
	cctx, stop := context.WithCancel(ctx)
	stop()
	assert.ErrorIs(t, l.Acquire(cctx, 1), context.Canceled)
	assert.False(t, l.InFallback(), "none of these is a backend failure")
}

func TestShare(t *testing.T) {
	assert.Equal(t, limiter.PerMinute(33), fallback.Share(limiter.PerMinute(100), 3))
	assert.Equal(t, limiter.PerMinute(1), fallback.Share(limiter.PerMinute(2), 5), "at least one unit")
	assert.Equal(t, limiter.PerMinute(100), fallback.Share(limiter.PerMinute(100), 0))
	_, err := fallback.New(nil, limiter.PerSecond(1))
	assert.Error(t, err)
}
