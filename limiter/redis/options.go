package redis

import (
	"time"

	"github.com/descope-mgmt/ratelimit/internal/option"
	"github.com/descope-mgmt/ratelimit/limiter"
)

// Option configures a [Limiter]. A bad value makes [New] or
// [NewComposite] fail with an error matching limiter.ErrInvalidConfig.
type Option func(*options) error

type options struct {
	observer      limiter.Observer
	cancelTimeout time.Duration
	watcher       *Watcher
	noCoalescing  bool
	margin        time.Duration
}

func defaultOptions() options {
	return options{cancelTimeout: time.Second}
}

// WithObserver sends every decision of the limiter to o. Default: none.
func WithObserver(o limiter.Observer) Option {
	return option.Set(func(opts *options) { opts.observer = o })
}

// WithCancelTimeout bounds the call that gives back a reservation after the
// caller's context ends; more than 0. Default: 1s.
func WithCancelTimeout(d time.Duration) Option {
	return option.Positive("WithCancelTimeout", d, func(opts *options) { opts.cancelTimeout = d })
}

// WithWatcher makes waiting callers re-queue when any process pauses one of
// the limiter's quotas while they wait (see [Limiter.Pause]); not nil.
// Default: none; waiters then keep the times they reserved.
func WithWatcher(w *Watcher) Option {
	return option.NotNil("WithWatcher", w == nil, "a *Watcher from NewWatcher", func(opts *options) { opts.watcher = w })
}

// WithCoalescing sets whether Acquire and TryAcquire calls of one Limiter
// that arrive while a script call is in flight are sent together as the
// next call (one round trip for many grants, each still served in arrival
// order). Default: true.
func WithCoalescing(on bool) Option {
	return option.Set(func(opts *options) { opts.noCoalescing = !on })
}

// WithMargin widens every window the limiter enforces by d, more than 0:
// units of a quota are then granted at least a window and d apart, so a
// task that starts up to d after its grant (a slow wake-up, a busy
// machine, a connection to set up) still keeps any window of the exact
// length within the limit where the work lands. It costs d/window of the
// quota. The key stores the widened limits, and every replica sharing it
// should use the same margin; Quotas reports the limits as given. Default:
// none.
func WithMargin(d time.Duration) Option {
	return option.Positive("WithMargin", d, func(opts *options) { opts.margin = d })
}
