package descope_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/descope"
	"github.com/descope-mgmt/ratelimit/internal/grants"
	"github.com/descope-mgmt/ratelimit/internal/redistest"
	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/memory"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

// events records the limit changes a transport reports.
type events struct {
	mu   sync.Mutex
	list []limiter.Event
}

func (e *events) Observe(ev limiter.Event) {
	if ev.Kind == limiter.EventLimitLowered || ev.Kind == limiter.EventLimitRestored {
		e.mu.Lock()
		e.list = append(e.list, ev)
		e.mu.Unlock()
	}
}

func (e *events) of(kind limiter.EventKind) []limiter.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []limiter.Event
	for _, ev := range e.list {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

func projectFor(t *testing.T) string {
	return "p" + strings.ReplaceAll(redistest.Key(t)[len("ratelimit-test:"):], "/", "-")
}

// Descope allows 80 creations per window where the routes say 100. Four
// replicas of eight goroutines create users flat out. Descope refuses a few
// requests, the transport lowers user-create to what Descope accepted, for
// every replica, and from then on no request meets a 429 while the real 80
// is used in full.
func TestLearnsALowerLimitFromDescope(t *testing.T) {
	const configured, real = 100, 80
	// 2s windows: the default margin (100ms) then costs 5% of the window,
	// as 600ms does of Descope's 60s, and leaves room for 90% of the real
	// limit; a 1s window's 10% margin alone would take it to 91%.
	window := 2 * time.Second
	create := descope.Route{Path: "/v1/mgmt/user/create/*", Limit: limiter.Limit{Requests: configured, Window: window}, Name: "user-create"}
	mgmt := descope.Route{Path: "/v1/mgmt/user/*", Limit: limiter.Limit{Requests: 500, Window: window}, Name: "user-mgmt"}
	run := func(t *testing.T, name string, clients []*http.Client, fake *fakeDescope, seen *events) {
		ctx, cancel := context.WithTimeout(t.Context(), 13*time.Second)
		defer cancel()
		const workers = 8
		var sent, refusedSeen atomic.Int64
		var wg sync.WaitGroup
		for _, c := range clients {
			for range workers {
				wg.Go(func() {
					for ctx.Err() == nil {
						code, err := call(ctx, c, fake.URL+"/v1/mgmt/user/create")
						switch {
						case err == nil && code == http.StatusOK:
							sent.Add(1)
						case err == nil:
							refusedSeen.Add(1) // a 429 returned to the caller
						case errors.Is(err, context.DeadlineExceeded):
							return
						default:
							t.Errorf("request failed: %v", err)
							return
						}
					}
				})
			}
		}
		wg.Wait()
		refusals := fake.refusalsOf("user-create")
		arrivals := fake.arrivalsOf("user-create")
		require.NotEmpty(t, refusals, "Descope's lower limit was met at least once")
		last := refusals[len(refusals)-1]
		start := arrivals[0]
		// Once the last 429's block is over, measure what was used of the real 80.
		f, steady := afterBlock(arrivals, last, real, window)
		lowered := seen.of(limiter.EventLimitLowered)
		t.Logf("figures: %s: %d replicas x %d goroutines, 13s, Descope's real limit %d/%v, routes say %d: %d 429s (the last %v after the first request, %d returned to callers), lowered to %v in %d replica events (each 429 of the burst lowers it a step); after the last block: %d requests, busiest window %d of %d, %.1f%% of the real limit used",
			name, len(clients), workers, real, window, configured, len(refusals), last.Sub(start).Round(time.Millisecond), refusedSeen.Load(),
			limitsOf(lowered), len(lowered), f.Grants, f.Most, real, 100*steady)
		// The bound: the first window's burst of `configured` requests meets
		// configured-real refusals; a few more may be in flight as the first
		// 429 lands. All in one block, then none.
		assert.LessOrEqual(t, len(refusals), configured-real+4, "the lesson costs a bounded number of 429s")
		assert.Less(t, last.Sub(start), 2*time.Second, "and then none: the 429s come in the first block only")
		require.NotEmpty(t, lowered)
		lowest := configured
		for _, ev := range lowered {
			assert.Less(t, ev.Limit.Requests, configured)
			lowest = min(lowest, ev.Limit.Requests)
		}
		assert.LessOrEqual(t, lowest, real, "lowered to what Descope accepts")
		assert.GreaterOrEqual(t, lowest, real*9/10, "and not much below it")
		assert.LessOrEqual(t, f.Most, real)
		assert.GreaterOrEqual(t, steady, 0.90, "the real limit is used in full afterwards")
	}
	newFake := func(t *testing.T) *fakeDescope {
		return newFakeDescope(t,
			fakeRoute{name: "user-create", path: "/v1/mgmt/user/create/*", limit: limiter.Limit{Requests: real, Window: window}, backoff: window},
			fakeRoute{name: "user-mgmt", path: "/v1/mgmt/user/*", limit: mgmt.Limit, backoff: window})
	}
	opts := func(seen *events) []descope.Option {
		return []descope.Option{descope.WithRoutes(create, mgmt), descope.WithObserver(seen)}
	}
	for _, srv := range []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"redis-server", func(t *testing.T) string { return redistest.Addr(t) }},
		{"miniredis", func(t *testing.T) string { return miniredis.RunT(t).Addr() }},
	} {
		t.Run(srv.name, func(t *testing.T) {
			addr, project, seen, fake := srv.addr(t), projectFor(t), &events{}, newFake(t)
			var clients []*http.Client
			for range 4 {
				c := goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: 16})
				t.Cleanup(func() { _ = c.Close() })
				tr, err := descope.NewTransport(c, project, opts(seen)...)
				require.NoError(t, err)
				t.Cleanup(func() { _ = tr.Close() })
				clients = append(clients, &http.Client{Transport: tr})
			}
			run(t, srv.name, clients, fake, seen)
		})
	}
	t.Run("memory", func(t *testing.T) { // one process: one transport, shared
		seen, fake := &events{}, newFake(t)
		tr, err := descope.NewLocalTransport(memory.NewStore(), projectFor(t), opts(seen)...)
		require.NoError(t, err)
		c := &http.Client{Transport: tr}
		run(t, "memory", []*http.Client{c, c, c, c}, fake, seen)
	})
}

// Descope's limit drops from 100 to 80 in the middle of a run (another
// client started on the project). A saturated sliding window sends its
// units in the clumps it started with, so the first clump after the drop
// meets up to 20 refusals; the lesson is learned from them, and then no
// 429 comes again.
func TestLearnsALimitThatDropsMidRun(t *testing.T) {
	window := 2 * time.Second // see TestLearnsALowerLimitFromDescope
	create := descope.Route{Path: "/v1/mgmt/user/create", Limit: limiter.Limit{Requests: 100, Window: window}, Name: "user-create"}
	fake := newFakeDescope(t, fakeRoute{name: "user-create", path: "/v1/mgmt/user/create", limit: create.Limit, backoff: window})
	addr, project, seen := redistest.Addr(t), projectFor(t), &events{}
	var clients []*http.Client
	for range 4 {
		c := goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: 16})
		t.Cleanup(func() { _ = c.Close() })
		tr, err := descope.NewTransport(c, project, descope.WithRoutes(create), descope.WithObserver(seen))
		require.NoError(t, err)
		t.Cleanup(func() { _ = tr.Close() })
		clients = append(clients, &http.Client{Transport: tr})
	}
	// Long enough that, in the worst case this test accepts (a second
	// block two windows after the first, at about 9s), five windows of
	// arrivals follow the last block: over fewer, a clumped schedule reads
	// as under-use (two of three runs under load read 54% and 62% with 16s).
	ctx, cancel := context.WithTimeout(t.Context(), 22*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range clients {
		for range 8 {
			wg.Go(func() {
				for ctx.Err() == nil {
					if _, err := call(ctx, c, fake.URL+"/v1/mgmt/user/create"); err != nil {
						return
					}
				}
			})
		}
	}
	time.Sleep(3 * time.Second) // the run is under way at the configured 100
	dropped := time.Now()
	fake.setLimit("user-create", limiter.Limit{Requests: 80, Window: window})
	wg.Wait()
	refusals, arrivals := fake.refusalsOf("user-create"), fake.arrivalsOf("user-create")
	require.NotEmpty(t, refusals)
	last := refusals[len(refusals)-1]
	f, steady := afterBlock(arrivals, last, 80, window)
	lowered := seen.of(limiter.EventLimitLowered)
	t.Logf("figures: limit drops from 100 to 80 per 2s at 3s: %d 429s, the first %v after the drop, the last %v after the first; lowered to %v; afterwards %d requests, busiest window %d of 80, %.1f%% of the real limit used",
		len(refusals), refusals[0].Sub(dropped).Round(time.Millisecond), last.Sub(refusals[0]).Round(time.Millisecond), limitsOf(lowered), f.Grants, f.Most, 100*steady)
	assert.LessOrEqual(t, len(refusals), 100-80+4, "at most one clump's excess and the requests in flight")
	assert.Less(t, last.Sub(refusals[0]), 2*window+500*time.Millisecond, "within two blocks at most, then none")
	assert.LessOrEqual(t, f.Most, 80)
	assert.GreaterOrEqual(t, steady, 0.9)
}

// afterBlock measures the arrivals once the block of the 429 at last is
// over: their figures (the busiest window), and the share of the limit
// they used (steadyUse).
func afterBlock(arrivals []time.Time, last time.Time, requests int, window time.Duration) (grants.Figures, float64) {
	var after []grants.Grant
	var times []time.Time
	for _, at := range arrivals {
		if at.After(last.Add(window + 200*time.Millisecond)) {
			after = append(after, grants.Grant{At: at})
			times = append(times, at)
		}
	}
	return grants.Measure(after, requests, window), steadyUse(times, requests, window)
}

// steadyUse is the share of a limit that arrivals used: the mean, over
// every window of the limit's length that ends between a window after the
// first arrival and the last arrival, of the arrivals in that window, over
// the limit's requests. A schedule of clumps and a spread one read alike.
func steadyUse(arrivals []time.Time, requests int, window time.Duration) float64 {
	if len(arrivals) < 2 || arrivals[len(arrivals)-1].Sub(arrivals[0]) <= window {
		return 0
	}
	from, to := arrivals[0].Add(window), arrivals[len(arrivals)-1]
	step := window / 200
	sum, samples := 0, 0
	for end := from; !end.After(to); end = end.Add(step) {
		n := 0
		for _, at := range arrivals {
			if at.After(end.Add(-window)) && !at.After(end) {
				n++
			}
		}
		sum += n
		samples++
	}
	return float64(sum) / float64(samples) / float64(requests)
}

func limitsOf(evs []limiter.Event) []int {
	seen := map[int]bool{}
	var out []int
	for _, e := range evs {
		if !seen[e.Limit.Requests] {
			seen[e.Limit.Requests] = true
			out = append(out, e.Limit.Requests)
		}
	}
	return out
}

// A lowered limit is stored beside the quota: a replica that starts later
// uses it from its first request, and when it expires every replica goes
// back to the configured limit.
func TestLearnedLimitIsSharedAndExpires(t *testing.T) {
	addr := redistest.Addr(t)
	project := projectFor(t)
	window := time.Second
	create := descope.Route{Path: "/v1/mgmt/user/create", Limit: limiter.Limit{Requests: 10, Window: window}, Name: "user-create"}
	fake := newFakeDescope(t, fakeRoute{name: "user-create", path: "/v1/mgmt/user/create", limit: limiter.Limit{Requests: 5, Window: window}, backoff: window})
	replica := func(seen *events) *http.Client {
		c := goredis.NewClient(&goredis.Options{Addr: addr})
		t.Cleanup(func() { _ = c.Close() })
		tr, err := descope.NewTransport(c, project, descope.WithRoutes(create), descope.WithLearnedLimits(1500*time.Millisecond),
			descope.WithMaxRetries(0), descope.WithObserver(seen))
		require.NoError(t, err)
		t.Cleanup(func() { _ = tr.Close() })
		return &http.Client{Transport: tr}
	}
	first := &events{}
	a := replica(first)
	codes := map[int]int{}
	for range 6 { // the sixth meets Descope's 5
		code, err := call(t.Context(), a, fake.URL+"/v1/mgmt/user/create")
		require.NoError(t, err)
		codes[code]++
	}
	require.Equal(t, map[int]int{200: 5, 429: 1}, codes)
	require.Len(t, first.of(limiter.EventLimitLowered), 1)
	assert.Equal(t, 5, first.of(limiter.EventLimitLowered)[0].Limit.Requests, "lowered to the 5 Descope accepted")

	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	key := redislimiter.KeyFor("descope", project, "user-create")
	stored, err := rdb.Get(t.Context(), descope.LearnedKey(key)).Int()
	require.NoError(t, err)
	assert.Equal(t, 5, stored)

	later := &events{}
	b := replica(later) // starts after the lesson
	code, err := call(t.Context(), b, fake.URL+"/v1/mgmt/user/create")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	require.Len(t, later.of(limiter.EventLimitLowered), 1, "a replica that starts later reads the stored limit on its first request")
	assert.Equal(t, 5, later.of(limiter.EventLimitLowered)[0].Limit.Requests)

	require.Eventually(t, func() bool {
		return len(first.of(limiter.EventLimitRestored)) == 1 && len(later.of(limiter.EventLimitRestored)) == 1
	},
		5*time.Second, 10*time.Millisecond, "the lowered limit expires for every replica")
	assert.Equal(t, 10, first.of(limiter.EventLimitRestored)[0].Limit.Requests, "back to the configured limit, never above")
	assert.Zero(t, rdb.Exists(t.Context(), descope.LearnedKey(key)).Val())
}

// Many replicas search flat out with the SDK's exact path, /v2/mgmt/user/search,
// and call a management path no route names: both are limited (by
// user-search and by the catch-all), and Descope never answers 429.
func TestSearchesAndUnknownPathsStayUnderTheirLimits(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			window := time.Second
			search, fsearch := route("user-search", "/v1/mgmt/user/search", limiter.Limit{Requests: 30, Window: window})
			users, fusers := route("user-mgmt", "/v1/mgmt/user/*", limiter.Limit{Requests: 60, Window: window})
			other := descope.Route{Limit: limiter.Limit{Requests: 20, Window: window}, Name: "unmatched"}
			fake := newFakeDescope(t, fsearch, fusers, fakeRoute{name: "unmatched", path: "/v1/mgmt/something/new", limit: other.Limit, backoff: window})
			project := projectFor(t)
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
			defer cancel()
			paths := []string{"/v2/mgmt/user/search", "/v2/mgmt/something/new"}
			var wg sync.WaitGroup
			for range 4 {
				c := &http.Client{Transport: b.replica(t, project, descope.WithRoutes(search, users), descope.WithUnmatched(other))}
				for w := range 8 {
					wg.Go(func() {
						for ctx.Err() == nil {
							code, err := call(ctx, c, fake.URL+paths[w%2])
							if err != nil {
								assert.ErrorIs(t, err, context.DeadlineExceeded)
								return
							}
							assert.Equal(t, http.StatusOK, code)
						}
					})
				}
			}
			wg.Wait()
			refused, figures := fake.report()
			s, u := figures["user-search"], figures["unmatched"]
			t.Logf("figures: %s, 4 replicas x 8 goroutines, 3s: %d 429s; /v2 searches %d (busiest window %d of 30, utilisation %.1f%%), unknown path %d (busiest %d of 20, utilisation %.1f%%)",
				b.name, refused, s.Grants, s.Most, 100*s.Utilisation, u.Grants, u.Most, 100*u.Utilisation)
			assert.Zero(t, refused)
			assert.LessOrEqual(t, s.Most, 30)
			assert.LessOrEqual(t, u.Most, 20)
			assert.GreaterOrEqual(t, s.Utilisation, 0.9)
			assert.GreaterOrEqual(t, u.Utilisation, 0.9)
		})
	}
}
