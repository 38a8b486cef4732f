package memory

import "github.com/descope-mgmt/ratelimit/limiter"

// Option configures a [Limiter].
type Option func(*options)

type options struct {
	observer limiter.Observer
}

// WithObserver sends every decision of the limiter to o. Default: none.
func WithObserver(o limiter.Observer) Option {
	return func(opts *options) { opts.observer = o }
}
