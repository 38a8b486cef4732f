package limiter

import "context"

// Limiter grants units of a quota under the reservation rule described in the
// package documentation. Implementations are safe for concurrent use.
type Limiter interface {
	// Acquire blocks until n units are granted, or returns an error.
	//
	// It fails at once, consuming nothing, when n is invalid (ErrInvalidN,
	// ErrExceedsLimit), when ctx is already done, or when ctx has a deadline
	// that the grant would pass (the error matches context.DeadlineExceeded).
	// If ctx ends while Acquire waits, the reservation is given back and the
	// error matches ctx.Err().
	Acquire(ctx context.Context, n int) error

	// TryAcquire grants n units only if that needs no wait. When it does not
	// grant, it records nothing and the Decision says how long to wait.
	TryAcquire(ctx context.Context, n int) (Decision, error)
}
