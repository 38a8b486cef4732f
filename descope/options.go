package descope

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/descope-mgmt/ratelimit/internal/option"
	"github.com/descope-mgmt/ratelimit/limiter"
)

// Option configures a [Transport]. A bad value makes the constructor fail
// with an error matching limiter.ErrInvalidConfig.
type Option func(*Transport) error

// WithRoutes replaces DefaultRoutes() with routes; at least one. The
// transport keeps a copy. Default: DefaultRoutes().
func WithRoutes(routes ...Route) Option {
	return option.AtLeast("WithRoutes with routes", len(routes), 1, func(t *Transport) { t.routes = routes })
}

// WithBase sets the transport that sends requests. Default:
// http.DefaultTransport.
func WithBase(base http.RoundTripper) Option {
	return option.NotNil("WithBase", base == nil, "an http.RoundTripper", func(t *Transport) { t.base = base })
}

// WithMaxRetries sets how many times a request that met a 429 is sent
// again; 0 or more. Default: 0, never: retries are opt-in, and a request
// made by a task of an executor that retries itself is never retried here
// (see Transport.RoundTrip).
func WithMaxRetries(n int) Option {
	return option.AtLeast("WithMaxRetries", n, 0, func(t *Transport) { t.maxRetries = n })
}

// WithMargin widens every route's window, and every pause, by d.
//
// Requests reach Descope a little after their reserved time, and not all
// equally late (scheduling, connection set-up, the network). Two requests a
// window apart at the client can arrive less than a window apart, and an
// exact schedule would then breach Descope's exact window. The margin
// absorbs that spread: it should exceed the spread of the latency to
// Descope. Default: 1% of each window, at least 100ms (600ms for a 60s
// window, costing 1% of the quota).
func WithMargin(d time.Duration) Option {
	return option.Positive("WithMargin", d, func(t *Transport) { t.margin = d })
}

// WithObserver sends every decision of the transport's limiters to o, and
// the changes of learned limits. Default: none.
func WithObserver(o limiter.Observer) Option {
	return option.Set(func(t *Transport) { t.observer = o })
}

// WithUnmatched sets the catch-all route: the quota of a request that no
// route matches. Its Path is not used. Default: [DefaultUnmatched](),
// Descope's backend-SDK limit of 1000 per 10s.
func WithUnmatched(r Route) Option {
	return func(t *Transport) error {
		if r.Path == "" {
			r.Path = "/*"
		}
		if err := r.validate(); err != nil {
			return err
		}
		t.unmatched = r
		return nil
	}
}

// WithUnlimited exempts requests from every quota: a request whose path
// matches one of paths (written as Route.Path: exact, or a prefix ending in
// "/*", any API version) is sent at once, counts against nothing, and a 429
// on it pauses nothing. For calls Descope limits per end user rather than
// per project, such as authentication ("/v1/auth/*"). Default: none, every
// request counts against some quota.
func WithUnlimited(paths ...string) Option {
	return func(t *Transport) error {
		for _, p := range paths {
			if !strings.HasPrefix(p, "/") {
				return fmt.Errorf("WithUnlimited(%q), want a path starting with /", p)
			}
		}
		t.unlimited = append(t.unlimited, paths...)
		return nil
	}
}

// WithLearnedLimits sets how long a lowered limit lasts. When Descope
// answers 429 to a request that was within its routes' limits by our own
// count, the transport lowers the limit of the fullest quota of the
// request to what Descope accepted, for every replica, for ttl; then the
// configured limit applies again. 0 turns learning off. Default:
// [DefaultLearnedLimitTTL], one hour.
func WithLearnedLimits(ttl time.Duration) Option {
	return func(t *Transport) error {
		if ttl < 0 || ttl > 0 && ttl < time.Millisecond {
			return fmt.Errorf("WithLearnedLimits(%v), want 0 (off) or at least 1ms", ttl)
		}
		t.learnTTL = ttl
		return nil
	}
}
