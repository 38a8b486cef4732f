package executor

import (
	"time"

	"github.com/descope-mgmt/ratelimit/internal/option"
)

// Option configures an [Executor]. A bad value makes every call of the
// Executor return an error matching limiter.ErrInvalidConfig, before it
// acquires anything ([New] cannot return it: its signature is fixed).
type Option func(*options) error

type options struct {
	stopOnError bool
	concurrency int
	attempts    int
	retryAfter  func(error) (time.Duration, bool) // nil: never retry
}

func defaultOptions() options {
	return options{stopOnError: true, concurrency: 1, attempts: 3}
}

// WithStopOnError sets what [Batch] does when a task fails. With true (the
// default) it acquires and starts no further task, cancels the context of
// the tasks still running, and returns the first error. With false it runs
// every task and reports each one's error in its Result.
func WithStopOnError(stop bool) Option {
	return option.Set(func(o *options) { o.stopOnError = stop })
}

// WithConcurrency sets how many tasks of a [Batch] may run at once; at
// least 1. Default: 1, one task at a time, in order.
func WithConcurrency(n int) Option {
	return option.AtLeast("WithConcurrency", n, 1, func(o *options) { o.concurrency = n })
}

// WithRetryAfter turns retries on. classify tells that a task's error asks
// the executor to wait and try again (an HTTP 429, say): it returns the
// wait and true. The executor then pauses the quota for that long, if its
// limiter is a limiter.Pauser (so every replica backs off), or sleeps; then
// acquires again and runs the task again, up to [WithMaxAttempts] runs in
// all. [RetryAfterMethod] is a ready classify. Default: none; a task runs
// once. Not nil.
//
// Only retry tasks that are safe to run twice. When the task sends HTTP
// through a transport that also retries (descope.Transport), the executor
// owns the retry: see [OwnsRetries].
func WithRetryAfter(classify func(error) (time.Duration, bool)) Option {
	return option.NotNil("WithRetryAfter", classify == nil, "a classifier such as executor.RetryAfterMethod", func(o *options) { o.retryAfter = classify })
}

// WithMaxAttempts sets how many times a task may run when [WithRetryAfter]
// is on; at least 1. Default: 3.
func WithMaxAttempts(n int) Option {
	return option.AtLeast("WithMaxAttempts", n, 1, func(o *options) { o.attempts = n })
}
