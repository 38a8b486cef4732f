// Package memory is the in-process backend of package limiter: the same
// reservation rule as the Redis backend, for one process and for tests.
package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/internal/ring"
)

// Limiter is a sliding-window limiter held in memory. It is safe for
// concurrent use. Create one with [New]; the zero Limiter is not usable.
type Limiter struct {
	limit    limiter.Limit
	observer limiter.Observer
	start    time.Time // times in the ring are nanoseconds since start, on the monotonic clock

	mu   sync.Mutex
	ring *ring.Ring
}

var _ limiter.Limiter = (*Limiter)(nil)

// New returns a limiter that enforces limit. It fails with an error matching
// limiter.ErrInvalidLimit if the limit cannot be enforced.
func New(limit limiter.Limit, opts ...Option) (*Limiter, error) {
	if err := limit.Validate(); err != nil {
		return nil, fmt.Errorf("memory.New: %w", err)
	}
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	return &Limiter{
		limit:    limit,
		observer: o.observer,
		start:    time.Now(),
		ring:     ring.New(limit.Requests),
	}, nil
}

// Limit returns the limit l enforces.
func (l *Limiter) Limit() limiter.Limit { return l.limit }

func (l *Limiter) now() int64 { return int64(time.Since(l.start)) }

func (l *Limiter) wallTime(t int64) time.Time { return l.start.Add(time.Duration(t)) }

// reserve applies the reservation rule. It records the grant and returns its
// time if the wait is at most maxWait (negative: any wait).
func (l *Limiter) reserve(n int, maxWait time.Duration, wantRemaining bool) (at, now int64, granted bool, remaining int) {
	window := int64(l.limit.Window)
	l.mu.Lock()
	defer l.mu.Unlock()
	now = l.now()
	at = l.ring.Earliest(now, n, l.limit.Requests, window)
	granted = maxWait < 0 || at-now <= int64(maxWait)
	if granted {
		l.ring.Record(at, n, now-window)
	}
	if wantRemaining {
		remaining = l.ring.Remaining(now, l.limit.Requests, window)
	}
	return at, now, granted, remaining
}

// TryAcquire grants n units if that needs no wait; see [limiter.Limiter].
func (l *Limiter) TryAcquire(ctx context.Context, n int) (limiter.Decision, error) {
	if err := limiter.CheckN(n, l.limit); err != nil {
		return limiter.Decision{}, err
	}
	if ctx.Err() != nil {
		return limiter.Decision{}, limiter.ContextError(ctx, n)
	}
	at, now, granted, remaining := l.reserve(n, 0, true)
	d := limiter.Decision{Allowed: granted, Remaining: remaining}
	if granted {
		l.observe(limiter.Event{Kind: limiter.Grant, N: n, At: l.wallTime(at)})
	} else {
		d.RetryAfter = time.Duration(at - now)
		l.observe(limiter.Event{Kind: limiter.Deny, N: n, Wait: d.RetryAfter})
	}
	return d, nil
}

// Acquire blocks until n units are granted; see [limiter.Limiter].
func (l *Limiter) Acquire(ctx context.Context, n int) error {
	if err := limiter.CheckN(n, l.limit); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return limiter.ContextError(ctx, n)
	}
	maxWait := time.Duration(-1)
	if deadline, ok := ctx.Deadline(); ok {
		maxWait = max(0, time.Until(deadline))
	}
	at, now, granted, _ := l.reserve(n, maxWait, false)
	wait := time.Duration(at - now)
	if !granted {
		l.observe(limiter.Event{Kind: limiter.Deny, N: n, Wait: wait})
		return limiter.DeadlineError(n, wait)
	}
	grant := limiter.Event{Kind: limiter.Grant, N: n, At: l.wallTime(at), Wait: wait}
	if wait <= 0 {
		l.observe(grant)
		return nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		l.observe(grant)
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		l.ring.Cancel(at, n)
		l.mu.Unlock()
		l.observe(limiter.Event{Kind: limiter.Cancel, N: n, At: l.wallTime(at)})
		return limiter.ContextError(ctx, n)
	}
}

func (l *Limiter) observe(e limiter.Event) {
	if l.observer != nil {
		l.observer.Observe(e)
	}
}
