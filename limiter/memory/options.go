package memory

import (
	"github.com/descope-mgmt/ratelimit/internal/option"
	"github.com/descope-mgmt/ratelimit/limiter"
)

// Option configures a [Limiter]. A bad value makes the constructor fail
// with an error matching limiter.ErrInvalidConfig.
type Option func(*options) error

type options struct {
	observer limiter.Observer
}

// WithObserver sends every decision of the limiter to o. Default: none.
func WithObserver(o limiter.Observer) Option {
	return option.Set(func(opts *options) { opts.observer = o })
}
