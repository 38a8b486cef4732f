package executor

import (
	"fmt"
	"time"
)

// Option configures an [Executor].
type Option func(*Executor)

// WithStopOnError sets what [Batch] does when a task fails. With true (the
// default) it acquires and starts no further task, cancels the context of
// the tasks still running, and returns the first error. With false it runs
// every task and reports each one's error in its Result.
func WithStopOnError(stop bool) Option {
	return func(e *Executor) { e.stopOnError = stop }
}

// WithConcurrency sets how many tasks of a [Batch] may run at once; at
// least 1. Default: 1, one task at a time, in order.
func WithConcurrency(n int) Option {
	return func(e *Executor) {
		if n < 1 {
			e.err = fmt.Errorf("%w: concurrency=%d, want at least 1", ErrInvalidConfig, n)
			return
		}
		e.concurrency = n
	}
}

// WithRetryAfter sets how the executor tells that a task's error asks it to
// wait and try again (an HTTP 429, say): classify returns the wait and true.
// The executor then pauses the quota for that long, if its limiter is a
// limiter.Pauser (so every replica backs off), or sleeps; then acquires
// again and retries, up to [WithMaxAttempts]. Default: [RetryAfterMethod].
// A nil classify turns retries off.
func WithRetryAfter(classify func(error) (time.Duration, bool)) Option {
	return func(e *Executor) {
		e.retries = classify != nil
		if classify == nil {
			classify = func(error) (time.Duration, bool) { return 0, false }
		}
		e.retryAfter = classify
	}
}

// WithMaxAttempts sets how many times a task may run when its errors ask
// for retries; at least 1. Default: 3.
func WithMaxAttempts(n int) Option {
	return func(e *Executor) {
		if n < 1 {
			e.err = fmt.Errorf("%w: max attempts=%d, want at least 1", ErrInvalidConfig, n)
			return
		}
		e.attempts = n
	}
}
