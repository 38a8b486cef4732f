// Package memory is the in-process backend of package limiter: the same
// reservation rule as the Redis backend, for one process and for tests.
package memory

import (
	"context"
	"fmt"
	"time"

	"github.com/descope-mgmt/ratelimit/internal/clock"
	"github.com/descope-mgmt/ratelimit/limiter"
)

// Limiter is a sliding-window limiter held in memory. It is safe for
// concurrent use. Create one with [New], or with [Store.Limiter] for
// quotas shared between limiters.
type Limiter struct {
	store    *Store
	quotas   []*quota
	limits   [][]limiter.Limit // limits[i] apply to quotas[i]
	tightest limiter.Limit
	observer limiter.Observer
}

var (
	_ limiter.Limiter = (*Limiter)(nil)
	_ limiter.Pauser  = (*Limiter)(nil)
)

// New returns a limiter that enforces limit on a quota of its own. It fails
// with an error matching limiter.ErrInvalidLimit if the limit cannot be
// enforced.
func New(limit limiter.Limit, opts ...Option) (*Limiter, error) {
	return NewStore().Limiter([]limiter.Quota{{Limits: []limiter.Limit{limit}}}, opts...)
}

// reserve applies the reservation rule across the limiter's quotas. It
// records the grant and returns its time if the wait is at most maxWait
// (negative: any wait).
func (l *Limiter) reserve(n int, maxWait time.Duration, wantRemaining bool) (at, now int64, granted bool, remaining int) {
	s := l.store
	s.mu.Lock()
	defer s.mu.Unlock()
	now = s.now()
	at = now
	for i, q := range l.quotas {
		at = max(at, q.pausedUntil)
		for _, lim := range l.limits[i] {
			at = max(at, q.ring.Earliest(now, n, lim.Requests, int64(lim.Window)))
		}
	}
	granted = maxWait < 0 || at-now <= int64(maxWait)
	if granted {
		for _, q := range l.quotas {
			q.ring.Record(at, n, now-q.longest)
		}
	}
	if wantRemaining {
		remaining = l.tightest.Requests
		for i, q := range l.quotas {
			for _, lim := range l.limits[i] {
				r := 0
				if q.pausedUntil <= now {
					r = q.ring.Remaining(now, lim.Requests, int64(lim.Window))
				}
				remaining = min(remaining, r)
			}
		}
	}
	return at, now, granted, remaining
}

// cancel gives back n units reserved at at in every quota.
func (l *Limiter) cancel(at int64, n int) {
	l.store.mu.Lock()
	defer l.store.mu.Unlock()
	for _, q := range l.quotas {
		q.ring.Cancel(at, n)
	}
}

// paused reports whether a pause on one of the quotas covers at.
func (l *Limiter) paused(at int64) bool {
	l.store.mu.Lock()
	defer l.store.mu.Unlock()
	for _, q := range l.quotas {
		if q.pausedUntil > at {
			return true
		}
	}
	return false
}

// TryAcquire grants n units if that needs no wait; see [limiter.Limiter].
func (l *Limiter) TryAcquire(ctx context.Context, n int) (limiter.Decision, error) {
	if err := limiter.CheckN(n, l.tightest); err != nil {
		return limiter.Decision{}, err
	}
	if ctx.Err() != nil {
		return limiter.Decision{}, limiter.ContextError(ctx, n)
	}
	at, now, granted, remaining := l.reserve(n, 0, true)
	d := limiter.Decision{Allowed: granted, Remaining: remaining}
	if granted {
		l.observe(limiter.Event{Kind: limiter.Grant, N: n, At: l.store.wallTime(at)})
	} else {
		d.RetryAfter = time.Duration(at - now)
		l.observe(limiter.Event{Kind: limiter.Deny, N: n, Wait: d.RetryAfter})
	}
	return d, nil
}

// Acquire blocks until n units are granted; see [limiter.Limiter]. If a
// pause comes to cover its reserved time while it waits, it gives the
// reservation back and queues again after the pause.
func (l *Limiter) Acquire(ctx context.Context, n int) error {
	if err := limiter.CheckN(n, l.tightest); err != nil {
		return err
	}
	waited := time.Duration(0)
	for {
		if ctx.Err() != nil {
			return limiter.ContextError(ctx, n)
		}
		maxWait := limiter.MaxWait(ctx)
		pauses := l.store.pauses() // before reserving, so no pause is missed
		at, now, granted, _ := l.reserve(n, maxWait, false)
		wait := time.Duration(at - now)
		if !granted {
			l.observe(limiter.Event{Kind: limiter.Deny, N: n, Wait: wait})
			return limiter.DeadlineError(n, wait)
		}
		grant := limiter.Event{Kind: limiter.Grant, N: n, At: l.store.wallTime(at), Wait: waited + wait}
		if wait <= 0 {
			l.observe(grant)
			return nil
		}
		requeue, ok := clock.SleepUnless(ctx, wait, pauses, l.store.pauses, func() bool { return l.paused(at) })
		if !ok {
			l.cancel(at, n)
			l.observe(limiter.Event{Kind: limiter.Cancel, N: n, At: l.store.wallTime(at)})
			return limiter.ContextError(ctx, n)
		}
		if !requeue {
			l.observe(grant)
			return nil
		}
		l.cancel(at, n)
		waited += time.Duration(l.store.now() - now)
	}
}

// Pause holds every grant on the limiter's quotas until d from now; see
// [limiter.Pauser].
func (l *Limiter) Pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("memory: pause of %v, want more than 0", d)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s := l.store
	s.mu.Lock()
	until := s.now() + int64(d)
	for _, q := range l.quotas {
		q.pausedUntil = max(q.pausedUntil, until)
	}
	close(s.paused) // wake every waiter to check its reservation
	s.paused = make(chan struct{})
	s.mu.Unlock()
	return nil
}

func (l *Limiter) observe(e limiter.Event) {
	if l.observer != nil {
		l.observer.Observe(e)
	}
}
