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

// retrying is what a caller asks for to turn retries on.
var retrying = executor.WithRetryAfter(executor.RetryAfterMethod)

func TestRetryAfterPausesAndRetries(t *testing.T) {
	fake := &limitertest.Fake{}
	e := executor.New(fake, retrying)
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
	e := executor.New(fake, retrying, executor.WithMaxAttempts(4))
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
	e := executor.New(fake, retrying)
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

	// Retries are opt-in: by default a task that asks for a wait runs once.
	calls = 0
	fake = &limitertest.Fake{}
	err := executor.New(fake).Execute(t.Context(), func(context.Context) error {
		calls++
		return tooMany{time.Second}
	})
	var tm tooMany
	assert.ErrorAs(t, err, &tm)
	assert.Equal(t, 1, calls, "no retry unless asked")
	assert.Empty(t, fake.Pauses(), "and no pause either")

	for _, bad := range []struct {
		opt  executor.Option
		text string
	}{
		{executor.WithMaxAttempts(0), "WithMaxAttempts(0), want at least 1"},
		{executor.WithRetryAfter(nil), "WithRetryAfter(nil)"},
		{nil, "option 0 is nil"},
	} {
		calls = 0
		err := executor.New(fake, bad.opt).Execute(t.Context(), task)
		assert.ErrorIs(t, err, limiter.ErrInvalidConfig)
		assert.ErrorContains(t, err, bad.text)
		assert.Zero(t, calls, "a bad option runs nothing")
	}
}

func TestRetryWaitsOutThePauseOnARealLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := memory.New(limiter.PerSecond(100))
		require.NoError(t, err)
		e := executor.New(l, retrying, executor.WithConcurrency(2))
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
