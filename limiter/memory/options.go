package memory

import (
	"time"

	"github.com/descope-mgmt/ratelimit/internal/option"
	"github.com/descope-mgmt/ratelimit/limiter"
)

// Option configures a [Limiter]. A bad value makes the constructor fail
// with an error matching limiter.ErrInvalidConfig.
type Option func(*options) error

type options struct {
	observer limiter.Observer
	margin   time.Duration
}

// WithObserver sends every decision of the limiter to o. Default: none.
func WithObserver(o limiter.Observer) Option {
	return option.Set(func(opts *options) { opts.observer = o })
}

// WithMargin widens every window the limiter enforces by d, more than 0:
// units of a quota are then granted at least a window and d apart, so a
// task that starts up to d after its grant (a slow wake-up, a busy
// machine, a connection to set up) still keeps any window of the exact
// length within the limit where the work lands. It costs d/window of the
// quota. Quotas reports the limits as given. Default: none.
func WithMargin(d time.Duration) Option {
	return option.Positive("WithMargin", d, func(opts *options) { opts.margin = d })
}
