package executor

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Result is the outcome of one task of a [Batch].
type Result[T any] struct {
	Value T
	Err   error
}

// Batch runs tasks, acquiring one unit before each one starts, with at most
// the executor's concurrency running at once. The submitting goroutine
// waits for a free worker, acquires, and only then hands the task over, so
// quota is never held by a task that cannot start.
//
// Results come back in task order, whatever order the tasks finish in.
//
// With stop-on-error (the default), the first failure (of a task, or of
// acquiring) stops the batch: no further task is acquired or started, the
// context of running tasks is cancelled, tasks never started get ErrNotRun,
// and the error returned wraps the first failure. Without it, every task is
// tried, each Result holds its own error, and the error returned joins them
// all (nil if every task succeeded).
//
// A task that panics fails with a *PanicError; the panic does not escape
// its worker goroutine.
func Batch[T any](ctx context.Context, e *Executor, tasks []func(context.Context) (T, error)) ([]Result[T], error) {
	if e.err != nil {
		return nil, e.err
	}
	results := make([]Result[T], len(tasks))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var (
		wg      sync.WaitGroup
		workers = make(chan struct{}, e.concurrency)
		mu      sync.Mutex
		first   error // the first failure, under mu, when stopping on error
	)
	// fail records the first failure of a stop-on-error batch and stops it.
	fail := func(i int, err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = fmt.Errorf("executor: task %d: %w", i, err)
			cancel(first)
		}
	}
	stopped := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return first != nil
	}

	next := 0
	for ; next < len(tasks); next++ {
		workers <- struct{}{} // a worker is free: only now acquire
		if e.stopOnError && stopped() {
			break
		}
		if err := e.limiter.Acquire(ctx, 1); err != nil {
			<-workers
			if !e.stopOnError {
				results[next].Err = err
				continue
			}
			if !stopped() { // else the batch stopped while this one waited: it was not run
				results[next].Err = err
				fail(next, err)
				next++
			}
			break
		}
		i, task := next, tasks[next]
		wg.Go(func() {
			defer func() { <-workers }()
			v, err := attempt(ctx, e, task, true)
			results[i] = Result[T]{Value: v, Err: err}
			if err != nil && e.stopOnError {
				fail(i, err)
			}
		})
	}
	wg.Wait()

	if e.stopOnError {
		for i := next; i < len(tasks); i++ {
			results[i].Err = ErrNotRun
		}
		return results, first
	}
	var errs []error
	for i, r := range results {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("executor: task %d: %w", i, r.Err))
		}
	}
	return results, errors.Join(errs...)
}
