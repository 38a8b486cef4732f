// Package limitertest helps test code that uses package limiter: a Fake that
// counts acquisitions, and a conformance suite that any limiter.Limiter
// backend can be run through.
package limitertest

import (
	"context"
	"sync"
	"time"

	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/internal/acquire"
)

// Fake is a limiter.Limiter that grants every valid request at once and
// counts them. It is safe for concurrent use; the zero Fake is ready.
type Fake struct {
	// Err, when set, is returned by every call instead of granting.
	Err error
	// OnAcquire, when set, is called with n for every grant, before the
	// call returns. Tests use it to see when acquisition happens.
	OnAcquire func(n int)

	mu     sync.Mutex
	calls  int
	units  int
	pauses []time.Duration
}

var (
	_ limiter.Limiter = (*Fake)(nil)
	_ limiter.Pauser  = (*Fake)(nil)
)

// Acquire grants n units at once, unless n < 1, ctx is done, or Err is set.
func (f *Fake) Acquire(ctx context.Context, n int) error {
	if n < 1 {
		return acquire.CheckN(n, limiter.Limit{Requests: n})
	}
	if ctx.Err() != nil {
		return acquire.ContextError(ctx, n, nil)
	}
	if f.Err != nil {
		return f.Err
	}
	f.mu.Lock()
	f.calls++
	f.units += n
	f.mu.Unlock()
	if f.OnAcquire != nil {
		f.OnAcquire(n)
	}
	return nil
}

// TryAcquire is Acquire reported as a Decision.
func (f *Fake) TryAcquire(ctx context.Context, n int) (limiter.Decision, error) {
	if err := f.Acquire(ctx, n); err != nil {
		return limiter.Decision{}, err
	}
	return limiter.Decision{Allowed: true}, nil
}

// Acquisitions returns how many calls were granted.
func (f *Fake) Acquisitions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Units returns how many units were granted in all.
func (f *Fake) Units() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.units
}

// Pause records d and grants on as before.
func (f *Fake) Pause(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pauses = append(f.pauses, d)
	return nil
}

// Pauses returns the durations Pause was called with, in order.
func (f *Fake) Pauses() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.pauses...)
}
