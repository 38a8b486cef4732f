// Package executor runs tasks under a limiter.Limiter, acquiring quota before
// each task starts: at submission time, not inside workers, so no queue of
// tasks builds up behind a quota, and a task never holds a worker while it
// waits for quota.
//
// It is the Go form of the design's RateLimitedExecutor: single tasks with
// [Executor.Execute] and [Do], batches with [Batch] that stop at the first
// error or collect every error.
package executor

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/descope-mgmt/ratelimit/internal/clock"
	"github.com/descope-mgmt/ratelimit/internal/option"
	"github.com/descope-mgmt/ratelimit/limiter"
)

// ErrNotRun is the error of a batch task that was never started because the
// batch stopped at an earlier error.
var ErrNotRun = errors.New("executor: task not run: the batch stopped at an earlier error")

// Executor runs tasks, acquiring one unit of its limiter before each starts.
// It is safe for concurrent use. Create one with [New].
type Executor struct {
	limiter limiter.Limiter
	options
	err error // a configuration error, returned by every call
}

// New returns an executor that acquires from l. New never fails: a nil l or
// a bad option makes every call return an error matching
// limiter.ErrInvalidConfig, before acquiring anything.
func New(l limiter.Limiter, opts ...Option) *Executor {
	e := &Executor{limiter: l, options: defaultOptions()}
	e.err = option.Apply(&e.options, opts)
	if l == nil && e.err == nil {
		e.err = fmt.Errorf("%w: executor: limiter is nil", limiter.ErrInvalidConfig)
	}
	return e
}

// Execute acquires one unit, then runs task and returns its error. A task
// that panics returns a *PanicError instead of crashing the caller. The
// task runs once, unless [WithRetryAfter] turned retries on: then a task
// whose error asks for a wait runs again, acquiring again each time.
func (e *Executor) Execute(ctx context.Context, task func(context.Context) error) error {
	_, err := Do(ctx, e, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, task(ctx)
	})
	return err
}

// Do acquires one unit, then runs task and returns its result. An error
// from acquiring (the context ended, the limiter failed) is returned as it
// is and the task does not run. The task runs once, unless
// [WithRetryAfter] turned retries on: then a task whose error asks for a
// wait is run again, acquiring again, up to [WithMaxAttempts] runs; the
// error of the last run is returned.
func Do[T any](ctx context.Context, e *Executor, task func(context.Context) (T, error)) (T, error) {
	if e.err != nil {
		var zero T
		return zero, e.err
	}
	return attempt(ctx, e, task, false)
}

// attempt runs task, acquiring first unless the caller already did, and
// retries it while its error asks for a wait.
func attempt[T any](ctx context.Context, e *Executor, task func(context.Context) (T, error), acquired bool) (T, error) {
	for n := 1; ; n++ {
		if !acquired {
			if err := e.limiter.Acquire(ctx, 1); err != nil {
				var zero T
				return zero, err
			}
		}
		acquired = false
		v, err := run(e.taskContext(ctx), task)
		if err == nil || n >= e.attempts || e.retryAfter == nil {
			return v, err
		}
		wait, ok := e.retryAfter(err)
		if !ok {
			return v, err
		}
		if perr := e.backOff(ctx, wait); perr != nil {
			return v, errors.Join(err, perr)
		}
	}
}

type ownsRetriesKey struct{}

// taskContext marks ctx as a task's whose retries this executor owns, when
// it may retry it.
func (e *Executor) taskContext(ctx context.Context) context.Context {
	if e.attempts > 1 && e.retryAfter != nil {
		return context.WithValue(ctx, ownsRetriesKey{}, true)
	}
	return ctx
}

// OwnsRetries reports whether ctx is the context of a task that an
// Executor retries on its own when the task's error asks for a wait
// ([WithRetryAfter] with more than one attempt). An HTTP transport that
// also retries on a 429 should send such a request once and leave the
// retry to the executor: otherwise one task's request could be sent
// attempts × retries times. descope.Transport does so.
func OwnsRetries(ctx context.Context) bool {
	owns, _ := ctx.Value(ownsRetriesKey{}).(bool)
	return owns
}

// backOff makes the next acquisition wait: a pause of the quota for every
// replica if the limiter can pause, else a sleep here.
func (e *Executor) backOff(ctx context.Context, wait time.Duration) error {
	wait = max(wait, time.Millisecond)
	if p, ok := e.limiter.(limiter.Pauser); ok {
		return p.Pause(ctx, wait)
	}
	return clock.Sleep(ctx, wait)
}

// RetryAfterMethod is a classifier for [WithRetryAfter]: an error (or one
// it wraps) with a method RetryAfter() time.Duration asks for that wait.
func RetryAfterMethod(err error) (time.Duration, bool) {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfter(), true
	}
	return 0, false
}

// PanicError is the error of a task that panicked.
type PanicError struct {
	// Value is what the task passed to panic.
	Value any
	// Stack is the task's goroutine stack at the panic.
	Stack []byte
}

// Error says that the task panicked, and with what value.
func (p *PanicError) Error() string {
	return fmt.Sprintf("executor: task panicked: %v", p.Value)
}

// Unwrap returns the panic value if it is an error, so errors.Is can see it.
func (p *PanicError) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

// run calls task, turning a panic into a *PanicError.
func run[T any](ctx context.Context, task func(context.Context) (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return task(ctx)
}
