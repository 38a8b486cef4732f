// Package memory is the in-process backend of package limiter: the same
// reservation rule as the Redis backend, for one process and for tests.
package memory

import (
	"context"
	"fmt"
	"time"

	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/internal/acquire"
	"github.com/descope-mgmt/ratelimit/limiter/internal/window"
)

// Limiter is a sliding-window limiter held in memory. It is safe for
// concurrent use. Create one with [New], or with [Store.NewComposite] for
// quotas shared between limiters.
type Limiter struct {
	store   *Store
	given   []limiter.Quota
	quotas  []*quota
	limits  [][]window.Limit // limits[i] apply to quotas[i], in nanoseconds
	ticks   []int64          // the tick limits[i] want
	windows []*window.Window // quotas[i]'s
	loop    acquire.Loop
}

var (
	_ limiter.Limiter = (*Limiter)(nil)
	_ limiter.Pauser  = (*Limiter)(nil)
)

// New returns a limiter that enforces limit on a quota of its own. It fails
// with an error matching limiter.ErrInvalidLimit if the limit cannot be
// enforced.
func New(limit limiter.Limit, opts ...Option) (*Limiter, error) {
	return NewStore().NewComposite([]limiter.Quota{{Limits: []limiter.Limit{limit}}}, opts...)
}

// Quotas returns the quotas the limiter enforces, as it was given them.
func (l *Limiter) Quotas() []limiter.Quota { return acquire.CloneQuotas(l.given) }

// Keys returns the key of every quota, in the order given.
func (l *Limiter) Keys() []string {
	keys := make([]string, len(l.given))
	for i, q := range l.given {
		keys[i] = q.Key
	}
	return keys
}

// TryAcquire grants n units if that needs no wait; see [limiter.Limiter].
func (l *Limiter) TryAcquire(ctx context.Context, n int) (limiter.Decision, error) {
	return l.loop.TryAcquire(ctx, n)
}

// Acquire blocks until n units are granted; see [limiter.Limiter]. If a
// pause comes to cover its reserved time while it waits, it gives the
// reservation back and queues again after the pause.
func (l *Limiter) Acquire(ctx context.Context, n int) error {
	return l.loop.Acquire(ctx, n)
}

// Pause holds every grant on the limiter's quotas until d from now; see
// [limiter.Pauser].
func (l *Limiter) Pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("limiter: pause of %v, want more than 0", d)
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

// storage is the limiter's side of the acquire loop: the store's quotas
// under its lock. Times are nanoseconds since the store's start.
type storage struct{ l *Limiter }

func (b storage) Reserve(_ context.Context, n int, maxWait time.Duration, wantRemaining bool) (acquire.Reservation, error) {
	l, s := b.l, b.l.store
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	from := now
	for i, q := range l.quotas {
		from = max(from, q.pausedUntil)
		q.w.Prepare(now, q.longest, l.ticks[i], false)
	}
	at, slot, freed := window.FreedSlot(l.windows, from, n)
	if !freed {
		at = from
		for i, q := range l.quotas {
			at = q.w.After(at, n, l.limits[i])
		}
	}
	r := acquire.Reservation{Granted: maxWait < 0 || at-now <= int64(maxWait), Wait: time.Duration(at - now), At: s.wallTime(at), Token: at}
	if r.Granted {
		for i, q := range l.quotas {
			if freed {
				q.w.Take(slot[i], n)
			} else if q.w.Full(now, at, false) {
				return acquire.Reservation{}, fmt.Errorf("%w: %d reservations", limiter.ErrQueueFull, q.w.Len())
			}
		}
		if !freed {
			for _, q := range l.quotas {
				q.w.Record(at, n)
			}
		}
	}
	if wantRemaining {
		r.Remaining = l.loop.Tightest.Requests
		for i, q := range l.quotas {
			for _, lim := range l.limits[i] {
				left := 0
				if q.pausedUntil <= now {
					left = q.w.Remaining(now, lim)
				}
				r.Remaining = min(r.Remaining, left)
			}
		}
	}
	return r, nil
}

func (b storage) Cancel(_ context.Context, n int, r acquire.Reservation) error {
	s := b.l.store
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, q := range b.l.quotas {
		q.w.Cancel(r.Token, n, now)
	}
	return nil
}

func (b storage) Pauses() <-chan struct{} { return b.l.store.pauses() }

func (b storage) Covered(r acquire.Reservation) bool {
	b.l.store.mu.Lock()
	defer b.l.store.mu.Unlock()
	for _, q := range b.l.quotas {
		if q.pausedUntil > r.Token {
			return true
		}
	}
	return false
}
