package option_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/internal/option"
	"github.com/descope-mgmt/ratelimit/limiter"
)

type config struct {
	d time.Duration
	n int
}

type opt func(*config) error

func TestApplyStopsAtTheFirstBadOption(t *testing.T) {
	var c config
	err := option.Apply(&c, []opt{
		option.Positive("WithD", time.Second, func(c *config) { c.d = time.Second }),
		option.AtLeast("WithN", 0, 1, func(c *config) { c.n = 0 }),
		option.Positive("WithD", 2*time.Second, func(c *config) { c.d = 2 * time.Second }),
	})
	require.ErrorIs(t, err, limiter.ErrInvalidConfig)
	assert.EqualError(t, err, "limiter: invalid config: WithN(0), want at least 1")
	assert.Equal(t, time.Second, c.d, "options after the bad one do not run")

	err = option.Apply(&c, []opt{nil})
	assert.EqualError(t, err, "limiter: invalid config: option 0 is nil")
}

func TestAnErrorNamingItsMistakeIsKept(t *testing.T) {
	bad := limiter.Limit{}.Validate()
	err := option.Apply(&config{}, []opt{func(*config) error { return bad }})
	assert.Same(t, bad, err, "a bad limit stays ErrInvalidLimit, with one prefix")
	assert.True(t, errors.Is(err, limiter.ErrInvalidLimit))
}
