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
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/executor"
	"github.com/descope-mgmt/ratelimit/internal/option"
	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/memory"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

// Transport is an http.RoundTripper that keeps requests under their routes'
// limits for every replica sharing the same Redis and project. It is safe
// for concurrent use. Create one with [NewTransport] (Redis, for many
// replicas) or [NewLocalTransport] (one process); Close it when done.
//
// RoundTrip never returns a response and an error together: an error means
// no response (the request was not sent, or sending failed), and a response
// is returned as Descope sent it, a 429 included when it is not retried.
type Transport struct {
	base       http.RoundTripper
	routes     []Route // a copy: the caller's slice may change
	unmatched  Route
	unlimited  []string
	maxRetries int
	margin     time.Duration // fixed margin; 0 means the default per window
	project    string
	observer   limiter.Observer
	learnTTL   time.Duration // 0: never lower a limit
	ioTimeout  time.Duration // for the transport's own Redis calls
	open       func(quotas []limiter.Quota) (limiter.Limiter, error)
	learn      learnStore

	// start does a Redis transport's I/O on its first request; close
	// undoes it. Both nil for a local transport.
	start   func(ctx context.Context) error
	close   func() error
	startMu sync.Mutex
	state   atomic.Int32 // 0 new, 1 started, 2 closed

	// A local transport reads its lowered limits when a request comes and
	// this long has passed; a Redis one, on a ticker of its own.
	lazyRefresh time.Duration

	mu          sync.Mutex
	limiters    map[string]limiter.Limiter // by the names of the matched routes
	configured  map[string]limiter.Limit   // each quota's configured limit, by name
	learned     map[string]int             // each quota's lowered Requests, by name
	lastRefresh time.Time
}

// NewTransport returns a transport whose quotas live in Redis under keys
// made by redislimiter.KeyFor("descope", projectID, route name), so each
// project's quotas share one hash tag and one Redis Cluster slot, whatever
// bytes the project ID holds.
//
// NewTransport does no I/O. On its first request the transport subscribes
// to pause announcements (so requests waiting in this process never leave
// while another replica's 429 pause lasts) and reads the limits other
// replicas lowered (see [WithLearnedLimits]), on that request's context; if
// that fails, the request fails and the next one tries again. From then on
// it reads lowered limits on a ticker: every tenth of the shortest route
// window, between 10ms and 1s. The client must be a UniversalClient, not
// only a Scripter, because pause announcements need SUBSCRIBE.
func NewTransport(client goredis.UniversalClient, projectID string, opts ...Option) (*Transport, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: descope: Redis client is nil", limiter.ErrInvalidConfig)
	}
	t, err := newTransport(projectID, opts)
	if err != nil {
		return nil, err
	}
	var w *redislimiter.Watcher
	stop, done := make(chan struct{}), make(chan struct{})
	t.start = func(ctx context.Context) error {
		var err error
		if w, err = redislimiter.NewWatcher(ctx, client); err != nil {
			return err
		}
		if err := t.refreshLearned(ctx); err != nil {
			w.Close()
			return err
		}
		go t.watchLearned(t.refreshInterval(), stop, done)
		return nil
	}
	t.open = func(quotas []limiter.Quota) (limiter.Limiter, error) {
		return redislimiter.NewComposite(client, quotas, redislimiter.WithWatcher(w), redislimiter.WithObserver(t.observer))
	}
	t.learn = redisLearnStore{client}
	t.close = func() error {
		close(stop)
		<-done
		return w.Close()
	}
	return t, nil
}

// NewLocalTransport returns a transport whose quotas live in store, for one
// process (transports sharing a store share its quotas) and for tests. Its
// lowered limits (see [WithLearnedLimits]) are its own: share one Transport
// in a process rather than making one per client.
func NewLocalTransport(store *memory.Store, projectID string, opts ...Option) (*Transport, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: descope: store is nil", limiter.ErrInvalidConfig)
	}
	t, err := newTransport(projectID, opts)
	if err != nil {
		return nil, err
	}
	t.open = func(quotas []limiter.Quota) (limiter.Limiter, error) {
		return store.NewComposite(quotas, memory.WithObserver(t.observer))
	}
	t.learn = &localLearnStore{store: store, learned: map[string]localLearned{}, refusal: map[string]localLearned{}}
	t.lazyRefresh = t.refreshInterval()
	return t, nil
}

func newTransport(projectID string, opts []Option) (*Transport, error) {
	if projectID == "" {
		return nil, fmt.Errorf("%w: descope: project ID is empty", limiter.ErrInvalidConfig)
	}
	t := &Transport{
		base:       http.DefaultTransport,
		routes:     DefaultRoutes(),
		unmatched:  DefaultUnmatched(),
		project:    projectID,
		learnTTL:   DefaultLearnedLimitTTL,
		ioTimeout:  5 * time.Second,
		limiters:   map[string]limiter.Limiter{},
		configured: map[string]limiter.Limit{},
		learned:    map[string]int{},
	}
	if err := option.Apply(t, opts); err != nil {
		return nil, err
	}
	t.routes = slices.Clone(t.routes)
	t.unlimited = slices.Clone(t.unlimited)
	for _, r := range append(t.routes, t.unmatched) {
		if err := r.validate(); err != nil {
			return nil, err
		}
		if c, ok := t.configured[r.name()]; !ok || r.Limit.Requests > c.Requests {
			t.configured[r.name()] = r.Limit
		}
	}
	return t, nil
}

// Close stops the transport's pause subscription and its reading of
// lowered limits. It waits for neither requests in flight nor waiters.
// Requests after Close fail.
func (t *Transport) Close() error {
	t.startMu.Lock()
	defer t.startMu.Unlock()
	was := t.state.Swap(closed)
	if was == started && t.close != nil {
		return t.close()
	}
	return nil
}

const (
	started = 1
	closed  = 2
)

// ensureStarted runs the transport's start on its first request.
func (t *Transport) ensureStarted(ctx context.Context) error {
	if t.state.Load() == started {
		return nil
	}
	t.startMu.Lock()
	defer t.startMu.Unlock()
	switch t.state.Load() {
	case started:
		return nil
	case closed:
		return errors.New("descope: transport is closed")
	}
	if t.start != nil {
		if err := t.start(ctx); err != nil {
			return err
		}
	}
	t.state.Store(started)
	return nil
}

// key is the Redis key (or memory store key) of the quota name.
func (t *Transport) key(name string) string {
	return redislimiter.KeyFor("descope", t.project, name)
}

// marginFor is how much each window is widened (see WithMargin).
func (t *Transport) marginFor(w time.Duration) time.Duration {
	if t.margin > 0 {
		return t.margin
	}
	return max(100*time.Millisecond, w/100)
}

// refreshInterval is how often lowered limits are read: a tenth of the
// shortest window, between 10ms and 1s.
func (t *Transport) refreshInterval() time.Duration {
	shortest := t.unmatched.Limit.Window
	for _, r := range t.routes {
		shortest = min(shortest, r.Limit.Window)
	}
	return min(max(shortest/10, 10*time.Millisecond), time.Second)
}

// quotaNames lists each quota's name once.
func (t *Transport) quotaNames() []string {
	names := make([]string, 0, len(t.configured))
	for n := range t.configured {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (t *Transport) observe(e limiter.Event) {
	if t.observer != nil {
		t.observer.Observe(e)
	}
}

// match returns the routes that apply to a request: every route that
// matches it, else the catch-all. It returns none for an exempt request.
func (t *Transport) match(method, path string) []Route {
	for _, p := range t.unlimited {
		if pathMatches(p, false, path) {
			return nil
		}
	}
	var matched []Route
	for _, r := range t.routes {
		if r.matches(method, path) {
			matched = append(matched, r)
		}
	}
	if len(matched) == 0 {
		matched = []Route{t.unmatched}
	}
	return matched
}

// limiterFor returns the composite limiter over the given routes, making
// it on first use, with each quota's lowered limit if it has one, and the
// Requests it enforces for each route.
func (t *Transport) limiterFor(matched []Route) (limiter.Limiter, []int, error) {
	names := make([]string, len(matched))
	for i, r := range matched {
		names[i] = r.name()
	}
	id := strings.Join(names, "\n")
	t.mu.Lock()
	defer t.mu.Unlock()
	enforced := make([]int, len(matched))
	for i, r := range matched {
		enforced[i] = t.effectiveLocked(r).Requests
	}
	if l, ok := t.limiters[id]; ok {
		return l, enforced, nil
	}
	// Routes with one name are one quota with several limits.
	byName := map[string]*limiter.Quota{}
	var quotas []*limiter.Quota
	for _, r := range matched {
		q := byName[r.name()]
		if q == nil {
			q = &limiter.Quota{Key: t.key(r.name())}
			byName[r.name()] = q
			quotas = append(quotas, q)
		}
		lim := t.effectiveLocked(r)
		widened := limiter.Limit{Requests: lim.Requests, Window: lim.Window + t.marginFor(lim.Window)}
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
		return nil, nil, err
	}
	t.limiters[id] = l
	return l, enforced, nil
}

// maybeRefresh reads the lowered limits of a local transport when due.
func (t *Transport) maybeRefresh(ctx context.Context) {
	t.mu.Lock()
	due := time.Since(t.lastRefresh) >= t.lazyRefresh
	if due {
		t.lastRefresh = time.Now()
	}
	t.mu.Unlock()
	if due {
		_ = t.refreshLearned(ctx) // in memory: it cannot fail
	}
}

// RoundTrip acquires one unit of every route that matches req (of the
// catch-all if none does; of none if [WithUnlimited] exempts it),
// atomically, then sends it. It honours req's context while it waits: a
// request whose context ends is not sent, and its reservation is given back.
//
// On a 429 (status 429, or the E130429 error code) it pauses every quota
// the request counted against, for every replica, for the Retry-After (60s
// if absent, at most 24h), plus the margin; it lowers the fullest quota's
// limit if the request was within it (see [WithLearnedLimits]); then it
// sends the request again, up to WithMaxRetries, if its body can be
// replayed (GetBody) and its context allows the wait. Otherwise it returns
// the 429 response as it came. When req's context belongs to a task of an
// [executor.Executor] that retries on its own ([executor.OwnsRetries]),
// the transport does not retry: the executor does, so a request is sent at
// most as many times as the executor's attempts.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if err := t.ensureStarted(ctx); err != nil {
		return nil, err
	}
	if t.lazyRefresh > 0 {
		t.maybeRefresh(ctx)
	}
	matched := t.match(req.Method, req.URL.Path)
	if len(matched) == 0 {
		return t.base.RoundTrip(req)
	}
	l, enforced, err := t.limiterFor(matched)
	if err != nil {
		return nil, err
	}
	if err := l.Acquire(ctx, 1); err != nil {
		return nil, err // the http.Client wraps it in a *url.Error naming the request
	}
	retries := t.maxRetries
	if executor.OwnsRetries(ctx) {
		retries = 0
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	out := req
	for attempt := 0; ; attempt++ {
		resp, err := t.base.RoundTrip(out)
		if err != nil {
			return nil, err
		}
		if !isRateLimited(resp) {
			return resp, nil
		}
		t.pushBack(ctx, l, matched, enforced, RetryAfter(resp.Header.Get("Retry-After"), time.Now()))
		if attempt >= retries || !replayable {
			return resp, nil
		}
		next := req.Clone(ctx)
		if req.Body != nil && req.Body != http.NoBody {
			if next.Body, err = req.GetBody(); err != nil {
				return resp, nil // cannot replay: the 429 stands
			}
		}
		// The pause makes this wait; a caller that cannot wait that long
		// gets the 429 as it came.
		if err := l.Acquire(ctx, 1); err != nil {
			if next.Body != nil {
				next.Body.Close()
			}
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		out = next
	}
}

// pushBack answers a 429: every quota of the request is paused for wait
// plus the margin, for every replica, and the fullest one's limit may be
// lowered. Both run on a context of their own, bounded by the transport's
// I/O timeout: a caller that gives up as the 429 arrives must not cost the
// other replicas the pause.
func (t *Transport) pushBack(ctx context.Context, l limiter.Limiter, matched []Route, enforced []int, wait time.Duration) {
	if p, ok := l.(limiter.Pauser); ok {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.ioTimeout)
		if err := p.Pause(pctx, wait+t.marginFor(wait)); err != nil {
			t.observe(limiter.Event{Kind: limiter.EventError, Err: err})
		}
		cancel()
	}
	t.learnFrom429(matched, enforced)
}

// isRateLimited reports whether resp is Descope's 429: status 429, or an
// error body with code E130429. An error body it reads is put back, so the
// caller reads the whole body; if reading it fails, the caller meets the
// same error when it reads that far.
func isRateLimited(resp *http.Response) bool {
	if resp.StatusCode == http.StatusTooManyRequests {
		return true
	}
	if resp.StatusCode < 400 || resp.Body == nil {
		return false
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	rest := io.Reader(resp.Body)
	if err != nil {
		rest = &errReader{err} // the error comes after the bytes that were read
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), rest), resp.Body}
	return bytes.Contains(body, []byte(`"E130429"`))
}

type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }
