package limiter

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Errors returned by this module wrap them, so test with
// errors.Is.
var (
	// ErrInvalidLimit: Limit.Requests is below 1 (or above MaxRequests), or
	// Limit.Window is not positive.
	ErrInvalidLimit = errors.New("limiter: invalid limit")
	// ErrInvalidN: a request asked for fewer than one unit.
	ErrInvalidN = errors.New("limiter: invalid n")
	// ErrExceedsLimit: a request asked for more units than the limit allows
	// in one window, so it could never be granted.
	ErrExceedsLimit = errors.New("limiter: n exceeds limit")
	// ErrWouldPassDeadline: Acquire refused at once because the grant would
	// come after the context's deadline. Errors that wrap it also match
	// context.DeadlineExceeded.
	ErrWouldPassDeadline = errors.New("limiter: grant would pass the context deadline")
)

// CheckN reports whether a request for n units can ever be granted under l.
// Backends call it before any I/O, so a bad request consumes nothing.
func CheckN(n int, l Limit) error {
	if n < 1 {
		return fmt.Errorf("%w: n=%d, want at least 1", ErrInvalidN, n)
	}
	if n > l.Requests {
		return fmt.Errorf("%w: n=%d exceeds limit %s", ErrExceedsLimit, n, l)
	}
	return nil
}

// DeadlineError is returned when a grant would come after the context's
// deadline. It matches ErrWouldPassDeadline and context.DeadlineExceeded.
func DeadlineError(n int, wait time.Duration) error {
	return fmt.Errorf("%w: n=%d needs a wait of %v: %w", ErrWouldPassDeadline, n, wait, context.DeadlineExceeded)
}

// ContextError wraps the error of a context that ended before units were
// granted, so errors.Is(err, context.Canceled) keeps working. A cause set with
// context.WithCancelCause is wrapped too.
func ContextError(ctx context.Context, n int) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if cause != nil && cause != err {
		return fmt.Errorf("limiter: acquire n=%d: %w: %w", n, err, cause)
	}
	return fmt.Errorf("limiter: acquire n=%d: %w", n, err)
}

// MaxWait is the longest an Acquire under ctx may wait for its grant: the
// time left before ctx's deadline, or -1 (any wait) without one.
func MaxWait(ctx context.Context) time.Duration {
	if deadline, ok := ctx.Deadline(); ok {
		return max(0, time.Until(deadline))
	}
	return -1
}
