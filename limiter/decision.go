package limiter

import "time"

// Decision is the answer to a [Limiter.TryAcquire].
type Decision struct {
	// Allowed reports whether the units were granted.
	Allowed bool
	// Remaining is how many units could still be granted now without waiting,
	// after this decision.
	Remaining int
	// RetryAfter is zero when Allowed. When denied, it is how long until the
	// requested units could be granted if nobody else asks first.
	RetryAfter time.Duration
}
