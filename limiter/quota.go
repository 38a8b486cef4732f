package limiter

import (
	"context"
	"fmt"
	"time"
)

// Quota is one counted resource: a key (its name in the backend) and the
// limits that apply to it, all at once ("20 per second and 1000 per 10
// minutes"). A limiter built from several quotas grants a request only at a
// time every one of them allows, and records it in all of them in one
// atomic step.
type Quota struct {
	Key    string
	Limits []Limit
}

// Validate reports whether q can be enforced.
func (q Quota) Validate() error {
	if len(q.Limits) == 0 {
		return fmt.Errorf("%w: quota %q has no limits", ErrInvalidLimit, q.Key)
	}
	for _, l := range q.Limits {
		if p := l.problem(); p != "" {
			return fmt.Errorf("%w: quota %q: %s", ErrInvalidLimit, q.Key, p)
		}
	}
	return nil
}

// Pauser is implemented by limiters whose quotas can be paused for every
// user at once, as after an HTTP 429 from the service they protect.
type Pauser interface {
	// Pause holds every grant on the limiter's quotas until d from now (on
	// the backend's clock; an earlier end never shortens a pause). Callers
	// already waiting for a time inside the pause give their reservation
	// back and queue again after it, so no unit is granted during the pause.
	Pause(ctx context.Context, d time.Duration) error
}
