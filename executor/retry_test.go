package executor_test

import (
	"context"
	"errors"
	"fmt"
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

// tooMany is an HTTP 429 as a task would report it.
type tooMany struct{ wait time.Duration }

func (e tooMany) Error() string             { return "429 too many requests" }
func (e tooMany) RetryAfter() time.Duration { return e.wait }

func TestRetryAfterPausesAndRetries(t *testing.T) {
	fake := &limitertest.Fake{}
	e := executor.New(fake)
	calls := 0
	got, err := executor.Do(t.Context(), e, func(context.Context) (string, error) {
		calls++
		if calls == 1 {
			return "", fmt.Errorf("create user: %w", tooMany{2 * time.Second})
		}
		return "created", nil
	})
	require.NoError(t, err)
	assert.Equal(t, "created", got)
	assert.Equal(t, 2, calls)
	assert.Equal(t, 2, fake.Acquisitions(), "the retry acquires again")
	assert.Equal(t, []time.Duration{2 * time.Second}, fake.Pauses(), "the quota is paused for every replica")
}

func TestRetryGivesUpAfterMaxAttempts(t *testing.T) {
	fake := &limitertest.Fake{}
	e := executor.New(fake, executor.WithMaxAttempts(4))
	calls := 0
	err := e.Execute(t.Context(), func(context.Context) error { calls++; return tooMany{time.Second} })
	var tm tooMany
	assert.ErrorAs(t, err, &tm, "the last attempt's error")
	assert.Equal(t, 4, calls)
	assert.Equal(t, 4, fake.Acquisitions())
	assert.Len(t, fake.Pauses(), 3, "no pause after the last attempt")
}

func TestOtherErrorsAreNotRetried(t *testing.T) {
	fake := &limitertest.Fake{}
	e := executor.New(fake)
	calls := 0
	err := e.Execute(t.Context(), func(context.Context) error { calls++; return errFailed })
	assert.ErrorIs(t, err, errFailed)
	assert.Equal(t, 1, calls)
	assert.Empty(t, fake.Pauses())
}

func TestCustomClassifierAndRetriesOff(t *testing.T) {
	errSlowDown := errors.New("slow down")
	classify := func(err error) (time.Duration, bool) { return 5 * time.Second, errors.Is(err, errSlowDown) }
	fake := &limitertest.Fake{}
	calls := 0
	task := func(context.Context) error {
		calls++
		if calls == 1 {
			return errSlowDown
		}
		return nil
	}
	require.NoError(t, executor.New(fake, executor.WithRetryAfter(classify)).Execute(t.Context(), task))
	assert.Equal(t, []time.Duration{5 * time.Second}, fake.Pauses())

	calls = 0
	err := executor.New(&limitertest.Fake{}, executor.WithRetryAfter(nil)).Execute(t.Context(), func(context.Context) error {
		calls++
		return tooMany{time.Second}
	})
	assert.Error(t, err)
	assert.Equal(t, 1, calls, "retries off")
	assert.ErrorContains(t, executor.New(fake, executor.WithMaxAttempts(0)).Execute(t.Context(), task), "max attempts=0")
}

func TestRetryWaitsOutThePauseOnARealLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := memory.New(limiter.PerSecond(100))
		require.NoError(t, err)
		e := executor.New(l, executor.WithConcurrency(2))
		start := time.Now()
		var ran []time.Duration
		results, err := executor.Batch(t.Context(), e, []func(context.Context) (int, error){
			func(context.Context) (int, error) {
				ran = append(ran, time.Since(start))
				if len(ran) == 1 {
					return 0, tooMany{3 * time.Second}
				}
				return 1, nil
			},
		})
		require.NoError(t, err)
		assert.Equal(t, 1, results[0].Value)
		assert.Equal(t, []time.Duration{0, 3 * time.Second}, ran, "the retry runs when the pause ends")
	})
}
