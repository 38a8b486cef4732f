// Package acquire is the one acquire loop of every backend: Acquire and
// TryAcquire over a small Backend that stores quotas (reserve, give back,
// and the signal of a pause). The backends are storage; the loop, its
// events and its errors live here, once.
package acquire

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/descope-mgmt/ratelimit/limiter"
)

// Reservation is a backend's answer to one request.
type Reservation struct {
	// Granted reports whether the units were recorded.
	Granted bool
	// Wait is how long from now until At: the caller's wait when granted,
	// the RetryAfter when not.
	Wait time.Duration
	// At is the grant time on the backend's clock.
	At time.Time
	// Remaining is what TryAcquire reports (asked with wantRemaining).
	Remaining int
	// Token is the backend's own handle on the grant, for Cancel and
	// Covered (the grant time in its units).
	Token int64
	// ID is the backend's name for the request, if it has one (Redis: the
	// id that makes a retried call or a repeated give-back count once).
	ID string
}

// Backend stores quotas under the reservation rule of package limiter.
type Backend interface {
	// Reserve applies the rule for n units and records them if the wait is
	// at most maxWait (negative: any wait).
	Reserve(ctx context.Context, n int, maxWait time.Duration, wantRemaining bool) (Reservation, error)
	// Cancel gives back n units of a reservation Reserve granted. It runs
	// after the caller's context ended, so it bounds itself.
	Cancel(ctx context.Context, n int, r Reservation) error
	// Pauses returns a channel that is closed at the next pause of any
	// quota the backend may share with this limiter; nil if it never hears
	// of pauses. The loop fetches it before it reserves, so no pause is
	// missed.
	Pauses() <-chan struct{}
	// Covered reports whether a pause now covers the reserved time.
	Covered(r Reservation) bool
}

// Loop runs Acquire and TryAcquire over a Backend.
type Loop struct {
	Backend Backend
	// Tightest is the limit with the fewest requests: a request for more
	// units can never be granted.
	Tightest limiter.Limit
	Observer limiter.Observer
}

// TryAcquire grants n units if that needs no wait.
func (l *Loop) TryAcquire(ctx context.Context, n int) (limiter.Decision, error) {
	if err := CheckN(n, l.Tightest); err != nil {
		return limiter.Decision{}, err
	}
	if ctx.Err() != nil {
		return limiter.Decision{}, ContextError(ctx, n, nil)
	}
	r, err := l.Backend.Reserve(ctx, n, 0, true)
	if err != nil {
		return limiter.Decision{}, l.failed(ctx, n, err)
	}
	d := limiter.Decision{Allowed: r.Granted, Remaining: r.Remaining}
	if r.Granted {
		l.Observe(limiter.Event{Kind: limiter.EventGrant, N: n, At: r.At})
	} else {
		d.RetryAfter = r.Wait
		l.Observe(limiter.Event{Kind: limiter.EventDeny, N: n, Wait: r.Wait})
	}
	return d, nil
}

// Acquire reserves n units in one call, then sleeps until the reserved time
// without asking the backend again. If ctx ends while it sleeps, it gives
// the reservation back. If a pause comes to cover the reserved time, it
// gives it back and queues again.
func (l *Loop) Acquire(ctx context.Context, n int) error {
	if err := CheckN(n, l.Tightest); err != nil {
		return err
	}
	waited := time.Duration(0)
	for {
		if ctx.Err() != nil {
			return ContextError(ctx, n, nil)
		}
		pauses := l.Backend.Pauses()
		r, err := l.Backend.Reserve(ctx, n, maxWait(ctx), false)
		if err != nil {
			return l.failed(ctx, n, err)
		}
		if !r.Granted {
			l.Observe(limiter.Event{Kind: limiter.EventDeny, N: n, Wait: r.Wait})
			return deadlineError(n, r.Wait)
		}
		grant := limiter.Event{Kind: limiter.EventGrant, N: n, At: r.At, Wait: waited + r.Wait}
		if r.Wait <= 0 {
			l.Observe(grant)
			return nil
		}
		// The answer left the backend at or after now, so sleeping r.Wait
		// from here never wakes before the reserved time.
		slept := time.Now()
		requeue, ok := sleepUnless(ctx, r.Wait, pauses, l.Backend.Pauses, func() bool { return l.Backend.Covered(r) })
		if !ok {
			l.GiveBack(ctx, n, r)
			return ContextError(ctx, n, nil)
		}
		if !requeue {
			l.Observe(grant)
			return nil
		}
		l.GiveBack(ctx, n, r)
		waited += time.Since(slept)
	}
}

// GiveBack cancels a reservation and reports how it went: a give-back that
// fails leaves the units reserved (they only delay later callers), and says
// so as an error event.
func (l *Loop) GiveBack(ctx context.Context, n int, r Reservation) {
	if err := l.Backend.Cancel(ctx, n, r); err != nil {
		l.Observe(limiter.Event{Kind: limiter.EventError, N: n, At: r.At, Err: fmt.Errorf("give back a reservation: %w", err)})
		return
	}
	l.Observe(limiter.Event{Kind: limiter.EventCancel, N: n, At: r.At})
}

// failed turns a backend's error into the caller's: the context's error
// when the context is what ended the call (a caller giving up is no backend
// failure, and no error event), else the backend's, reported as an event.
func (l *Loop) failed(ctx context.Context, n int, err error) error {
	if ctx.Err() != nil {
		return ContextError(ctx, n, err)
	}
	// The network timeout and the context's deadline can fire together,
	// before ctx.Err() is set: a passed deadline is the context's doing.
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		return fmt.Errorf("limiter: acquire n=%d: %w: %w", n, context.DeadlineExceeded, err)
	}
	l.Observe(limiter.Event{Kind: limiter.EventError, N: n, Err: err})
	return err
}

// Observe sends e to the observer, if any.
func (l *Loop) Observe(e limiter.Event) {
	if l.Observer != nil {
		l.Observer.Observe(e)
	}
}

// CheckN reports whether a request for n units can ever be granted under
// tightest. Backends check before any I/O, so bad input consumes nothing.
func CheckN(n int, tightest limiter.Limit) error {
	if n < 1 {
		return fmt.Errorf("%w: n=%d, want at least 1", limiter.ErrInvalidN, n)
	}
	if n > tightest.Requests {
		return fmt.Errorf("%w: n=%d exceeds limit %s", limiter.ErrExceedsLimit, n, tightest)
	}
	return nil
}

// deadlineError is returned when a grant would come after the context's
// deadline. It matches ErrWouldPassDeadline and context.DeadlineExceeded.
func deadlineError(n int, wait time.Duration) error {
	return fmt.Errorf("%w: n=%d needs a wait of %v: %w", limiter.ErrWouldPassDeadline, n, wait, context.DeadlineExceeded)
}

// ContextError wraps the error of a context that ended before units were
// granted, so errors.Is(err, context.Canceled) works, with the cause set by
// context.WithCancelCause and the backend's error (cause), if any.
func ContextError(ctx context.Context, n int, cause error) error {
	errs := []error{ctx.Err()}
	if c := context.Cause(ctx); c != nil && c != ctx.Err() {
		errs = append(errs, c)
	}
	if cause != nil && !errors.Is(cause, ctx.Err()) {
		errs = append(errs, cause)
	}
	format := "limiter: acquire n=%d: %w"
	args := []any{n, errs[0]}
	for _, e := range errs[1:] {
		format += ": %w"
		args = append(args, e)
	}
	return fmt.Errorf(format, args...)
}

// maxWait is the longest an Acquire under ctx may wait for its grant: the
// time left before ctx's deadline, or -1 (any wait) without one.
func maxWait(ctx context.Context) time.Duration {
	if deadline, ok := ctx.Deadline(); ok {
		return max(0, time.Until(deadline))
	}
	return -1
}

// sleepUnless waits for d, but also wakes on a signal from ch: a pause that
// may cover the reservation. After each signal it takes the next channel
// from next, then asks covered, in that order, so a pause that comes
// between the two is never missed. It returns requeue=true when covered,
// and ok=false when ctx ended first.
func sleepUnless(ctx context.Context, d time.Duration, ch <-chan struct{}, next func() <-chan struct{}, covered func() bool) (requeue, ok bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return false, true
		case <-ctx.Done():
			return false, false
		case <-ch:
			ch = next()
			if covered() {
				return true, true
			}
		}
	}
}

// Tightest returns the limit with the fewest Requests among quotas.
func Tightest(quotas []limiter.Quota) limiter.Limit {
	var t limiter.Limit
	for _, q := range quotas {
		for _, l := range q.Limits {
			if t.Requests == 0 || l.Requests < t.Requests {
				t = l
			}
		}
	}
	return t
}

// Widen returns a copy of quotas with every window longer by margin, as
// the backends' WithMargin options enforce them, and checks the result: a
// window pushed past limiter.MaxWindow fails as any bad limit does.
func Widen(quotas []limiter.Quota, margin time.Duration) ([]limiter.Quota, error) {
	out := CloneQuotas(quotas)
	for i := range out {
		for j := range out[i].Limits {
			w := &out[i].Limits[j].Window
			if margin > limiter.MaxWindow-*w {
				return nil, fmt.Errorf("%w: quota %q: window %v with a margin of %v is over %v (366 days)",
					limiter.ErrInvalidLimit, out[i].Key, *w, margin, limiter.MaxWindow)
			}
			*w += margin
		}
	}
	return out, nil
}

// CloneQuotas returns a deep copy of quotas, so a limiter's own stay its own.
func CloneQuotas(quotas []limiter.Quota) []limiter.Quota {
	out := slices.Clone(quotas)
	for i := range out {
		out[i].Limits = slices.Clone(out[i].Limits)
	}
	return out
}
