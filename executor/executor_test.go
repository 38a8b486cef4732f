package executor_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/executor"
	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/limitertest"
	"github.com/descope-mgmt/ratelimit/limiter/memory"
)

var errFailed = errors.New("task failed")

func TestSingleTask(t *testing.T) {
	fake := &limitertest.Fake{}
	e := executor.New(fake)
	got, err := executor.Do(t.Context(), e, func(context.Context) (string, error) { return "result", nil })
	require.NoError(t, err)
	assert.Equal(t, "result", got)
	assert.Equal(t, 1, fake.Acquisitions())
}

func TestMultipleTasks(t *testing.T) {
	fake := &limitertest.Fake{}
	e := executor.New(fake)
	double := func(v int) func(context.Context) (int, error) {
		return func(context.Context) (int, error) { return v * 2, nil }
	}
	results, err := executor.Batch(t.Context(), e, []func(context.Context) (int, error){double(1), double(2), double(3)})
	require.NoError(t, err)
	assert.Equal(t, []executor.Result[int]{{Value: 2}, {Value: 4}, {Value: 6}}, results)
	assert.Equal(t, 3, fake.Acquisitions())
}

func TestTaskFailure(t *testing.T) {
	fake := &limitertest.Fake{}
	e := executor.New(fake)
	err := e.Execute(t.Context(), func(context.Context) error { return errFailed })
	assert.ErrorIs(t, err, errFailed)
	assert.Equal(t, 1, fake.Acquisitions(), "acquired before the task ran and failed")
}

func TestContinueOnError(t *testing.T) {
	fake := &limitertest.Fake{}
	e := executor.New(fake, executor.WithStopOnError(false))
	good := func(context.Context) (string, error) { return "success", nil }
	bad := func(context.Context) (string, error) { return "", errFailed }
	results, err := executor.Batch(t.Context(), e, []func(context.Context) (string, error){good, bad, good})
	require.Len(t, results, 3)
	assert.Equal(t, executor.Result[string]{Value: "success"}, results[0])
	assert.ErrorIs(t, results[1].Err, errFailed)
	assert.Equal(t, executor.Result[string]{Value: "success"}, results[2])
	assert.ErrorIs(t, err, errFailed, "the joined error says something failed")
	assert.ErrorContains(t, err, "task 1")
	assert.Equal(t, 3, fake.Acquisitions())
}

func TestStopOnErrorAcquiresOnlyOnce(t *testing.T) {
	fake := &limitertest.Fake{}
	e := executor.New(fake, executor.WithStopOnError(true))
	bad := func(context.Context) (int, error) { return 0, errFailed }
	results, err := executor.Batch(t.Context(), e, []func(context.Context) (int, error){bad, bad})
	assert.ErrorIs(t, err, errFailed)
	assert.Equal(t, 1, fake.Acquisitions(), "only the first task acquired")
	assert.ErrorIs(t, results[1].Err, executor.ErrNotRun)
}

func TestAcquiresBeforeExecution(t *testing.T) {
	var order []string
	fake := &limitertest.Fake{OnAcquire: func(int) { order = append(order, "rate_limit_acquired") }}
	e := executor.New(fake)
	err := e.Execute(t.Context(), func(context.Context) error {
		order = append(order, "task_executed")
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"rate_limit_acquired", "task_executed"}, order)
}

func TestTwoPerSecondDelaysTheThirdTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := memory.New(limiter.PerSecond(2))
		require.NoError(t, err)
		e := executor.New(l)
		start := time.Now()
		var ran []time.Duration
		task := func(context.Context) (struct{}, error) {
			ran = append(ran, time.Since(start))
			return struct{}{}, nil
		}
		_, err = executor.Batch(t.Context(), e, []func(context.Context) (struct{}, error){task, task, task})
		require.NoError(t, err)
		assert.Equal(t, []time.Duration{0, 0, time.Second}, ran, "the third waits for the first to leave the window")
	})
}

func TestConcurrencyBoundsRunningTasks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := memory.New(limiter.PerSecond(100))
		require.NoError(t, err)
		e := executor.New(l, executor.WithConcurrency(3))
		var running, most atomic.Int64
		tasks := make([]func(context.Context) (int, error), 10)
		for i := range tasks {
			tasks[i] = func(context.Context) (int, error) {
				n := running.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(time.Duration(10-i) * time.Millisecond) // later tasks finish sooner
				running.Add(-1)
				return i, nil
			}
		}
		results, err := executor.Batch(t.Context(), e, tasks)
		require.NoError(t, err)
		assert.EqualValues(t, 3, most.Load())
		for i, r := range results {
			assert.Equal(t, i, r.Value, "results in task order")
		}
	})
}

func TestSubmissionTimeLimitingStartsEachTaskAtItsGrant(t *testing.T) {
	// With 2 per second and 4 workers, tasks that take 10 s must still start
	// as their quota arrives, in pairs a second apart: the submitter waits
	// for quota, not for workers it does not need.
	synctest.Test(t, func(t *testing.T) {
		var grants []time.Time
		l, err := memory.New(limiter.PerSecond(2), memory.WithObserver(limiter.ObserverFunc(func(ev limiter.Event) {
			if ev.Kind == limiter.EventGrant {
				grants = append(grants, ev.At)
			}
		})))
		require.NoError(t, err)
		e := executor.New(l, executor.WithConcurrency(4))
		start := time.Now()
		var mu sync.Mutex
		started := make([]time.Duration, 4)
		tasks := make([]func(context.Context) (int, error), 4)
		for i := range tasks {
			tasks[i] = func(context.Context) (int, error) {
				mu.Lock()
				started[i] = time.Since(start)
				mu.Unlock()
				time.Sleep(10 * time.Second)
				return i, nil
			}
		}
		_, err = executor.Batch(t.Context(), e, tasks)
		require.NoError(t, err)
		assert.Equal(t, []time.Duration{0, 0, time.Second, time.Second}, started)
		require.Len(t, grants, 4)
		for i, g := range grants {
			assert.Equal(t, started[i], g.Sub(start), "task %d starts at its grant", i)
		}
	})
}

func TestStopOnErrorCancelsRunningTasks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &limitertest.Fake{}
		e := executor.New(fake, executor.WithConcurrency(2))
		slowSawCancel := false
		slow := func(ctx context.Context) (int, error) {
			select {
			case <-ctx.Done():
				slowSawCancel = true
				return 0, ctx.Err()
			case <-time.After(time.Hour):
				return 1, nil
			}
		}
		failing := func(context.Context) (int, error) {
			time.Sleep(time.Second)
			return 0, errFailed
		}
		results, err := executor.Batch(t.Context(), e, []func(context.Context) (int, error){slow, failing, slow, slow})
		assert.ErrorIs(t, err, errFailed)
		assert.ErrorContains(t, err, "task 1")
		assert.True(t, slowSawCancel, "the running task sees its context cancelled")
		assert.ErrorIs(t, results[0].Err, context.Canceled)
		assert.ErrorIs(t, results[2].Err, executor.ErrNotRun)
		assert.ErrorIs(t, results[3].Err, executor.ErrNotRun)
		assert.Equal(t, 2, fake.Acquisitions(), "nothing acquired after the failure")
	})
}

func TestPanicInAWorkerIsReturned(t *testing.T) {
	for _, concurrency := range []int{1, 3} {
		e := executor.New(&limitertest.Fake{}, executor.WithConcurrency(concurrency), executor.WithStopOnError(false))
		results, err := executor.Batch(t.Context(), e, []func(context.Context) (int, error){
			func(context.Context) (int, error) { return 1, nil },
			func(context.Context) (int, error) { panic("boom") },
			func(context.Context) (int, error) { return 3, nil },
		})
		var p *executor.PanicError
		require.ErrorAs(t, err, &p)
		assert.Equal(t, "boom", p.Value)
		assert.Contains(t, string(p.Stack), "executor_test.go")
		assert.Equal(t, 3, results[2].Value, "the other tasks still ran")
	}
	err := executor.New(&limitertest.Fake{}).Execute(t.Context(), func(context.Context) error { panic(errFailed) })
	assert.ErrorIs(t, err, errFailed, "a panic with an error unwraps to it")
}

func TestBadConfigFailsBeforeAcquiring(t *testing.T) {
	fake := &limitertest.Fake{}
	for _, tc := range []struct {
		e    *executor.Executor
		text string
	}{
		{executor.New(fake, executor.WithConcurrency(0)), "WithConcurrency(0), want at least 1"},
		{executor.New(fake, executor.WithConcurrency(-2)), "WithConcurrency(-2)"},
		{executor.New(nil), "limiter is nil"},
	} {
		err := tc.e.Execute(t.Context(), func(context.Context) error { return nil })
		assert.ErrorIs(t, err, limiter.ErrInvalidConfig)
		assert.ErrorContains(t, err, tc.text)
		_, err = executor.Batch(t.Context(), tc.e, []func(context.Context) (int, error){nil})
		assert.ErrorIs(t, err, limiter.ErrInvalidConfig)
	}
	assert.Zero(t, fake.Acquisitions())
}

func TestContextEndsWhileAcquiring(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := memory.New(limiter.PerMinute(1))
		require.NoError(t, err)
		for _, stop := range []bool{true, false} {
			e := executor.New(l, executor.WithStopOnError(stop))
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			ran := 0
			task := func(context.Context) (int, error) { ran++; return 0, nil }
			results, err := executor.Batch(ctx, e, []func(context.Context) (int, error){task, task, task})
			cancel()
			assert.ErrorIs(t, err, context.DeadlineExceeded, "stop=%v", stop)
			assert.Equal(t, 1, ran, "stop=%v: the first unit is free, the second would pass the deadline", stop)
			assert.Len(t, results, 3)
			time.Sleep(time.Minute) // let the window pass before the next round
		}
	})
}
