package limiter

import "errors"

// Sentinel errors. Errors returned by this module wrap them, so test with
// errors.Is.
var (
	// ErrInvalidLimit: Limit.Requests is below 1 (or above MaxRequests), or
	// Limit.Window is not positive (or above MaxWindow).
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
	// ErrInvalidConfig: a constructor or option was given a value it cannot
	// use (a nil client, an empty key, a bad option). Every package of this
	// module wraps it for that mistake.
	ErrInvalidConfig = errors.New("limiter: invalid config")
	// ErrQueueFull: a request would have to queue behind more reservations
	// than a quota keeps (8,192 entries, or, in Redis, 2^30 ticks ahead).
	// Nothing was recorded.
	ErrQueueFull = errors.New("limiter: the quota's queue is full")
)
