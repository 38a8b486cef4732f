// Package option applies functional options the one way this module does:
// every option validates its value and returns an error naming it; the
// constructor stops at the first and returns it, matching
// limiter.ErrInvalidConfig.
package option

import (
	"errors"
	"fmt"

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
