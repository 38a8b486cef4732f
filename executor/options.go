package executor

import "fmt"

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
