// Package fallback keeps a replica working, within its share of the quota,
// while the shared backend (Redis) is failing. It is opt-in: by default the
// Redis limiter fails closed.
//
// A fallback Limiter sends every request to its primary limiter until a
// backend error; then it grants from a local limiter holding this replica's
// share of the quota (the quota divided by the number of replicas), and
// leaves the primary alone. After a cool-down, one request probes the
// primary: if it answers, grants come from it again; if not, the local share
// serves for another cool-down. A circuit breaker, so a dead Redis is not
// hammered.
//
// The bound this gives: while in fallback, the replicas together grant at
// most the quota, if every replica's share is the quota divided by the
// number of replicas and that number is right. Units granted from the
// primary just before the failure are not known to the local share, so the
// window spanning the switch can hold up to twice the quota.
package fallback

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/descope-mgmt/ratelimit/internal/option"
	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/memory"
)

// Share returns limit divided among replicas: what one replica may grant
// on its own (at least 1 unit per window).
func Share(limit limiter.Limit, replicas int) limiter.Limit {
	return limiter.Limit{Requests: max(1, limit.Requests/max(1, replicas)), Window: limit.Window}
}

// Limiter is a limiter.Limiter that falls back to a local share while its
// primary fails. It is safe for concurrent use.
type Limiter struct {
	primary  limiter.Limiter
	local    *memory.Limiter
	openFor  time.Duration
	observer limiter.Observer

	mu        sync.Mutex
	open      bool      // in fallback
	openUntil time.Time // when the next probe may go to the primary
	probing   bool      // a probe is in flight
}

var _ limiter.Limiter = (*Limiter)(nil)

// Option configures a [Limiter]. A bad value makes [New] fail with an
// error matching limiter.ErrInvalidConfig.
type Option func(*options) error

type options struct {
	coolDown time.Duration
	observer limiter.Observer
}

// WithCoolDown sets how long the local share serves after a failure before
// one request probes the primary again; more than 0. Default: 5s.
func WithCoolDown(d time.Duration) Option {
	return option.Positive("WithCoolDown", d, func(o *options) { o.coolDown = d })
}

// WithObserver reports entering and leaving fallback
// (limiter.EventFallbackEnter, limiter.EventFallbackLeave), and the local
// share's decisions. Default: none.
func WithObserver(o limiter.Observer) Option {
	return option.Set(func(opts *options) { opts.observer = o })
}

// New returns a limiter that uses primary, and share while primary fails.
// It fails with an error matching limiter.ErrInvalidConfig for a nil
// primary or a bad option, and limiter.ErrInvalidLimit for a bad share.
func New(primary limiter.Limiter, share limiter.Limit, opts ...Option) (*Limiter, error) {
	if primary == nil {
		return nil, fmt.Errorf("%w: fallback: primary limiter is nil", limiter.ErrInvalidConfig)
	}
	o := options{coolDown: 5 * time.Second}
	if err := option.Apply(&o, opts); err != nil {
		return nil, err
	}
	local, err := memory.New(share, memory.WithObserver(o.observer))
	if err != nil {
		return nil, err
	}
	return &Limiter{primary: primary, local: local, openFor: o.coolDown, observer: o.observer}, nil
}

// Acquire acquires from the primary, or from the local share in fallback.
func (l *Limiter) Acquire(ctx context.Context, n int) error {
	_, err := through(l, func(lim limiter.Limiter) (struct{}, error) { return struct{}{}, lim.Acquire(ctx, n) })
	return err
}

// TryAcquire asks the primary, or the local share in fallback.
func (l *Limiter) TryAcquire(ctx context.Context, n int) (limiter.Decision, error) {
	return through(l, func(lim limiter.Limiter) (limiter.Decision, error) { return lim.TryAcquire(ctx, n) })
}

// InFallback reports whether grants come from the local share.
func (l *Limiter) InFallback() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// through sends call to the primary or the local share, and moves the
// breaker on the primary's answer.
func through[T any](l *Limiter, call func(limiter.Limiter) (T, error)) (T, error) {
	useLocal, probe := l.route()
	if useLocal {
		return call(l.local)
	}
	v, err := call(l.primary)
	if failed(err) {
		l.trip(probe, err)
		return call(l.local)
	}
	l.answered(probe, err)
	return v, err
}

// route decides where a request goes: the primary (probe when it is the
// one request allowed through an open breaker) or the local share.
func (l *Limiter) route() (useLocal, probe bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case !l.open:
		return false, false
	case l.probing || time.Now().Before(l.openUntil):
		return true, false
	default:
		l.probing = true
		return false, true
	}
}

// trip opens the breaker (again) after a failure of the primary.
func (l *Limiter) trip(probe bool, err error) {
	l.mu.Lock()
	entered := !l.open
	l.open, l.openUntil = true, time.Now().Add(l.openFor)
	if probe {
		l.probing = false
	}
	l.mu.Unlock()
	if entered {
		l.observe(limiter.Event{Kind: limiter.EventFallbackEnter, Err: err})
	}
}

// answered closes the breaker when a probe got an answer from the primary.
func (l *Limiter) answered(probe bool, err error) {
	if !probe {
		return
	}
	l.mu.Lock()
	l.probing = false
	// A grant, or a refusal, means the primary answered; a caller-side error
	// (its context, bad input) says nothing of it: stay in fallback, and let
	// the next request probe.
	left := err == nil || errors.Is(err, limiter.ErrWouldPassDeadline)
	if left {
		l.open = false
	}
	l.mu.Unlock()
	if left {
		l.observe(limiter.Event{Kind: limiter.EventFallbackLeave})
	}
}

// failed reports a backend failure: not a grant, a refusal, bad input or
// the caller's own context.
func failed(err error) bool {
	switch {
	case err == nil,
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, limiter.ErrInvalidN), errors.Is(err, limiter.ErrExceedsLimit):
		return false
	}
	return true
}

func (l *Limiter) observe(e limiter.Event) {
	if l.observer != nil {
		l.observer.Observe(e)
	}
}
