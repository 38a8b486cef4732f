// Package option applies functional options the one way this module does:
// every option validates its value and returns an error naming it; the
// constructor stops at the first and returns it, matching
// limiter.ErrInvalidConfig.
package option

import (
	"errors"
	"fmt"
	"time"

	"github.com/descope-mgmt/ratelimit/limiter"
)

// Apply runs opts on cfg in order and returns the first error. A nil option
// is an error too: it is a mistake, never a no-op.
func Apply[T any, O ~func(*T) error](cfg *T, opts []O) error {
	for i, opt := range opts {
		if opt == nil {
			return fmt.Errorf("%w: option %d is nil", limiter.ErrInvalidConfig, i)
		}
		if err := opt(cfg); err != nil {
			return Invalid(err)
		}
	}
	return nil
}

// Invalid makes err match limiter.ErrInvalidConfig, once; an error that
// already names its mistake with one of the module's sentinels (a bad
// limit) is returned as it is.
func Invalid(err error) error {
	if errors.Is(err, limiter.ErrInvalidConfig) || errors.Is(err, limiter.ErrInvalidLimit) {
		return err
	}
	return fmt.Errorf("%w: %w", limiter.ErrInvalidConfig, err)
}

// Errorf is Invalid(fmt.Errorf(format, args...)).
func Errorf(format string, args ...any) error {
	return Invalid(fmt.Errorf(format, args...))
}

// Set returns an option that stores a value needing no check.
func Set[T any](set func(*T)) func(*T) error {
	return func(cfg *T) error {
		set(cfg)
		return nil
	}
}

// Positive returns an option that stores d, which must be more than 0;
// name is the option's, for the error.
func Positive[T any](name string, d time.Duration, set func(*T)) func(*T) error {
	return check(d > 0, set, "%s(%v), want more than 0", name, d)
}

// AtLeast returns an option that stores n, which must be at least least.
func AtLeast[T any](name string, n, least int, set func(*T)) func(*T) error {
	return check(n >= least, set, "%s(%d), want at least %d", name, n, least)
}

// NotNil returns an option that stores v, which must not be nil (want
// says what to pass instead).
func NotNil[T any](name string, isNil bool, want string, set func(*T)) func(*T) error {
	return check(!isNil, set, "%s(nil), want %s", name, want)
}

// check returns an option that stores with set if ok, else fails with the
// message made of format and args.
func check[T any](ok bool, set func(*T), format string, args ...any) func(*T) error {
	return func(cfg *T) error {
		if !ok {
			return fmt.Errorf(format, args...)
		}
		set(cfg)
		return nil
	}
}
