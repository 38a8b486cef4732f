package descope

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/memory"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

// Transport is an http.RoundTripper that keeps requests under their routes'
// limits for every replica sharing the same Redis and project. It is safe
// for concurrent use. Create one with [NewTransport] (Redis, for many
// replicas) or [NewLocalTransport] (one process); Close it when done.
type Transport struct {
	base       http.RoundTripper
	routes     []Route
	maxRetries int
	margin     time.Duration // fixed margin; 0 means the default per window
	prefix     string        // "{descope:<project>}:"
	observer   limiter.Observer
	open       func(quotas []limiter.Quota) (limiter.Limiter, error)
	close      func() error

	mu       sync.Mutex
	limiters map[string]limiter.Limiter // by the names of the matched routes
}

// NewTransport returns a transport whose quotas live in Redis under keys
// "{descope:<projectID>}:<route>" (one hash tag, so a Redis Cluster holds
// each project's quotas in one slot). It subscribes to pause announcements,
// so requests waiting in this process never leave while another replica's
// 429 pause lasts.
func NewTransport(client goredis.UniversalClient, projectID string, opts ...Option) (*Transport, error) {
	if client == nil {
		return nil, errors.New("descope: Redis client is nil")
	}
	t, err := newTransport(projectID, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w, err := redislimiter.NewWatcher(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("descope: %w", err)
	}
	t.close = w.Close
	t.open = func(quotas []limiter.Quota) (limiter.Limiter, error) {
		return redislimiter.NewComposite(client, quotas, redislimiter.WithWatcher(w), redislimiter.WithObserver(t.observer))
	}
	return t, nil
}

// NewLocalTransport returns a transport whose quotas live in store, for one
// process (transports sharing a store share its quotas) and for tests.
func NewLocalTransport(store *memory.Store, projectID string, opts ...Option) (*Transport, error) {
	if store == nil {
		return nil, errors.New("descope: store is nil")
	}
	t, err := newTransport(projectID, opts)
	if err != nil {
		return nil, err
	}
	t.close = func() error { return nil }
	t.open = func(quotas []limiter.Quota) (limiter.Limiter, error) {
		return store.Limiter(quotas, memory.WithObserver(t.observer))
	}
	return t, nil
}

func newTransport(projectID string, opts []Option) (*Transport, error) {
	if projectID == "" || strings.ContainsAny(projectID, "{} \t\n") {
		return nil, fmt.Errorf("descope: project ID %q, want a non-empty ID without braces or spaces", projectID)
	}
	t := &Transport{
		base:       http.DefaultTransport,
		routes:     DefaultRoutes,
		maxRetries: 2,
		prefix:     "{descope:" + projectID + "}:",
		limiters:   map[string]limiter.Limiter{},
	}
	for _, opt := range opts {
		if err := opt(t); err != nil {
			return nil, err
		}
	}
	for _, r := range t.routes {
		if err := r.validate(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Close ends the transport's pause subscription.
func (t *Transport) Close() error { return t.close() }

// marginFor is how much each window is widened (see WithMargin).
func (t *Transport) marginFor(w time.Duration) time.Duration {
	if t.margin > 0 {
		return t.margin
	}
	return max(100*time.Millisecond, w/100)
}

// limiterFor returns the composite limiter over the routes that match a
// request, making it on first use.
func (t *Transport) limiterFor(method, path string) (limiter.Limiter, error) {
	var matched []Route
	for _, r := range t.routes {
		if r.matches(method, path) {
			matched = append(matched, r)
		}
	}
	if len(matched) == 0 {
		return nil, nil
	}
	names := make([]string, len(matched))
	for i, r := range matched {
		names[i] = r.name()
	}
	id := strings.Join(names, "\n")
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.limiters[id]; ok {
		return l, nil
	}
	// Routes with one name are one quota with several limits.
	byName := map[string]*limiter.Quota{}
	var quotas []*limiter.Quota
	for _, r := range matched {
		q := byName[r.name()]
		if q == nil {
			q = &limiter.Quota{Key: t.prefix + r.name()}
			byName[r.name()] = q
			quotas = append(quotas, q)
		}
		widened := limiter.Limit{Requests: r.Limit.Requests, Window: r.Limit.Window + t.marginFor(r.Limit.Window)}
		if !slices.Contains(q.Limits, widened) {
			q.Limits = append(q.Limits, widened)
		}
	}
	flat := make([]limiter.Quota, len(quotas))
	for i, q := range quotas {
		flat[i] = *q
	}
	l, err := t.open(flat)
	if err != nil {
		return nil, fmt.Errorf("descope: %w", err)
	}
	t.limiters[id] = l
	return l, nil
}

// RoundTrip acquires one unit of every route that matches req, atomically,
// then sends it. It honours req's context while it waits: a request whose
// context ends is not sent, and its reservation is given back. On a 429
// (status 429, or the E130429 error code) it pauses the matched quotas for
// every replica for the Retry-After (60s if absent), and sends the request
// again, up to WithMaxRetries, if its body can be replayed (GetBody); else
// it returns the 429 response as it came.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	l, err := t.limiterFor(req.Method, req.URL.Path)
	if err != nil {
		return nil, err
	}
	if l == nil {
		return t.base.RoundTrip(req)
	}
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		if err := l.Acquire(ctx, 1); err != nil {
			return nil, fmt.Errorf("descope: %s %s: %w", req.Method, req.URL.Path, err)
		}
		out := req
		if attempt > 0 {
			out = req.Clone(ctx)
			if req.Body != nil && req.Body != http.NoBody {
				if out.Body, err = req.GetBody(); err != nil {
					return nil, fmt.Errorf("descope: replay body of %s %s: %w", req.Method, req.URL.Path, err)
				}
			}
		}
		resp, err := t.base.RoundTrip(out)
		if err != nil {
			return nil, err
		}
		limited, err := isRateLimited(resp)
		if err != nil || !limited {
			return resp, err
		}
		wait := RetryAfter(resp.Header.Get("Retry-After"), time.Now())
		if p, ok := l.(limiter.Pauser); ok {
			if err := p.Pause(ctx, wait+t.marginFor(wait)); err != nil {
				return resp, nil // the 429 still stands; the pause is best effort
			}
		}
		replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
		if attempt >= t.maxRetries || !replayable {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// isRateLimited reports whether resp is Descope's 429: status 429, or an
// error body with code E130429. An error body it reads is put back.
func isRateLimited(resp *http.Response) (bool, error) {
	if resp.StatusCode == http.StatusTooManyRequests {
		return true, nil
	}
	if resp.StatusCode < 400 || resp.Body == nil {
		return false, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	rest := resp.Body
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), rest), rest}
	if err != nil {
		return false, err
	}
	return bytes.Contains(body, []byte(`"E130429"`)), nil
}
