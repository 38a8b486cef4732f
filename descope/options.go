package descope

import (
	"fmt"
	"net/http"
	"time"

	"github.com/descope-mgmt/ratelimit/limiter"
)

// Option configures a [Transport].
type Option func(*Transport) error

// WithRoutes replaces DefaultRoutes with routes.
func WithRoutes(routes ...Route) Option {
	return func(t *Transport) error {
		if len(routes) == 0 {
			return fmt.Errorf("descope: WithRoutes needs at least one route")
		}
		t.routes = routes
		return nil
	}
}

// WithBase sets the transport that sends requests. Default:
// http.DefaultTransport.
func WithBase(base http.RoundTripper) Option {
	return func(t *Transport) error {
		if base == nil {
			return fmt.Errorf("descope: WithBase(nil)")
		}
		t.base = base
		return nil
	}
}

// WithMaxRetries sets how many times a request that met a 429 is sent again;
// 0 never retries. Default: 2.
func WithMaxRetries(n int) Option {
	return func(t *Transport) error {
		if n < 0 {
			return fmt.Errorf("descope: max retries=%d, want 0 or more", n)
		}
		t.maxRetries = n
		return nil
	}
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
	return func(t *Transport) error {
		if d <= 0 {
			return fmt.Errorf("descope: margin=%v, want more than 0", d)
		}
		t.margin = d
		return nil
	}
}

// WithObserver sends every decision of the transport's limiters to o.
func WithObserver(o limiter.Observer) Option {
	return func(t *Transport) error {
		t.observer = o
		return nil
	}
}
