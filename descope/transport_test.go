package descope_test

import (
	"context"
	"errors"
	"io"
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
	"github.com/descope-mgmt/ratelimit/internal/redistest"
	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/memory"
)

// backend makes one replica's transport: each call a new Redis client (or,
// for memory, a new transport on one shared store).
type backend struct {
	name    string
	replica func(t *testing.T, project string, opts ...descope.Option) *descope.Transport
}

func backends(t *testing.T) []backend {
	redisReplica := func(addr func() string) func(t *testing.T, project string, opts ...descope.Option) *descope.Transport {
		return func(t *testing.T, project string, opts ...descope.Option) *descope.Transport {
			c := goredis.NewClient(&goredis.Options{Addr: addr(), PoolSize: 32})
			t.Cleanup(func() { _ = c.Close() })
			tr, err := descope.NewTransport(c, project, opts...)
			require.NoError(t, err)
			t.Cleanup(func() { _ = tr.Close() })
			return tr
		}
	}
	var stores sync.Map // one store per test
	return []backend{
		{"redis-server", redisReplica(sync.OnceValue(func() string { return redistest.Addr(t) }))}, // one server, shared by every replica
		{"miniredis", redisReplica(func() string {
			m, _ := stores.LoadOrStore("miniredis", miniredis.RunT(t))
			return m.(*miniredis.Miniredis).Addr()
		})},
		{"memory", func(t *testing.T, project string, opts ...descope.Option) *descope.Transport {
			s, _ := stores.LoadOrStore(t.Name(), memory.NewStore())
			tr, err := descope.NewLocalTransport(s.(*memory.Store), project, opts...)
			require.NoError(t, err)
			return tr
		}},
	}
}

func route(name, path string, limit limiter.Limit) (descope.Route, fakeRoute) {
	return descope.Route{Path: path, Limit: limit, Name: name}, fakeRoute{name: name, path: path, limit: limit, backoff: limit.Window}
}

func call(ctx context.Context, c *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"loginId":"someone"}`))
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// Many replicas, several goroutines each, a mix of creates, updates and
// searches: Descope must never answer 429, and the tightest route must be
// used in full.
func TestReplicasNeverTrigger429(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			var routes []descope.Route
			var fakes []fakeRoute
			for _, r := range []struct {
				name, path string
				limit      limiter.Limit
			}{
				{"user-create", "/v1/mgmt/user/create/*", limiter.Limit{Requests: 10, Window: 2 * time.Second}},
				{"user-update", "/v1/mgmt/user/update", limiter.Limit{Requests: 40, Window: 2 * time.Second}},
				{"user-search", "/v1/mgmt/user/search", limiter.Limit{Requests: 40, Window: 2 * time.Second}},
				{"user-mgmt", "/v1/mgmt/user/*", limiter.Limit{Requests: 100, Window: 2 * time.Second}},
			} {
				dr, fr := route(r.name, r.path, r.limit)
				routes, fakes = append(routes, dr), append(fakes, fr)
			}
			fake := newFakeDescope(t, fakes...)
			project := "p" + strings.ReplaceAll(redistest.Key(t)[len("ratelimit-test:"):], "/", "-")
			paths := []string{"/v1/mgmt/user/create", "/v1/mgmt/user/create/batch", "/v1/mgmt/user/update", "/v1/mgmt/user/search"}

			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			const replicas, workers = 3, 4
			var sent, failed atomic.Int64
			var wg sync.WaitGroup
			for range replicas {
				c := &http.Client{Transport: b.replica(t, project, descope.WithRoutes(routes...))}
				for w := range workers {
					wg.Go(func() {
						for i := w; ctx.Err() == nil; i++ {
							code, err := call(ctx, c, fake.URL+paths[i%len(paths)])
							switch {
							case err == nil:
								sent.Add(1)
								assert.Equal(t, http.StatusOK, code)
							case errors.Is(err, context.DeadlineExceeded):
								return // its turn would come after the end of the run
							default:
								failed.Add(1)
								t.Errorf("request failed: %v", err)
								return
							}
						}
					})
				}
			}
			wg.Wait()
			refused, figures := fake.report()
			create := figures["user-create"]
			t.Logf("figures: %s, %d replicas x %d goroutines, 5s: %d requests sent, %d 429s; user-create %d (busiest 2s window %d of 10, utilisation %.1f%%), update %d, search %d, user-mgmt %d (busiest %d of 100)",
				b.name, replicas, workers, sent.Load(), refused, create.Grants, create.Most, 100*create.Utilisation,
				figures["user-update"].Grants, figures["user-search"].Grants, figures["user-mgmt"].Grants, figures["user-mgmt"].Most)
			assert.Zero(t, refused, "no request may meet a 429")
			assert.Zero(t, failed.Load())
			for _, r := range fakes {
				assert.LessOrEqual(t, figures[r.name].Most, r.limit.Requests, r.name)
			}
			assert.GreaterOrEqual(t, create.Utilisation, 0.95, "the tightest route is used in full")
		})
	}
}

// A 429 on one replica pauses the route for every replica: nothing is sent
// to it until the Retry-After has passed, not even by a replica that had
// reserved a time inside it, and the refused request is sent again and
// succeeds.
func TestA429PausesEveryReplica(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			create, fcreate := route("user-create", "/v1/mgmt/user/create/*", limiter.PerSecond(1))
			fake := newFakeDescope(t, fcreate)
			project := "p" + strings.ReplaceAll(redistest.Key(t)[len("ratelimit-test:"):], "/", "-")
			// Blocked for 2s: B's reserved time (+1.1s) falls inside, so B
			// must re-queue; C's (+2.2s) does not.
			fake.forceNext429("user-create", 2, 300*time.Millisecond)
			clients := make([]*http.Client, 3)
			for i := range clients {
				clients[i] = &http.Client{Transport: b.replica(t, project, descope.WithRoutes(create))}
			}
			ctx := t.Context()
			codes := make([]int, 3)
			var wg sync.WaitGroup
			wg.Go(func() { // A: its first send meets the 429, held back 300ms
				var err error
				codes[0], err = call(ctx, clients[0], fake.URL+"/v1/mgmt/user/create")
				assert.NoError(t, err)
			})
			require.Eventually(t, func() bool { return len(fake.refusalsOf("user-create")) == 1 }, 5*time.Second, time.Millisecond)
			for i := 1; i < 3; i++ { // B and C queue behind A's unit: at +1s and +2s
				wg.Go(func() {
					var err error
					codes[i], err = call(ctx, clients[i], fake.URL+"/v1/mgmt/user/create")
					assert.NoError(t, err)
				})
			}
			wg.Wait()
			refusedAt := fake.refusalsOf("user-create")
			arrivals := fake.arrivalsOf("user-create")
			// Every request that reached the route during the block, admitted
			// or refused, other than the one that met the forced 429.
			var offsets []time.Duration
			held := len(refusedAt) - 1
			for _, at := range arrivals {
				d := at.Sub(refusedAt[0])
				offsets = append(offsets, d.Round(time.Millisecond))
				if d < 2*time.Second {
					held++
				}
			}
			t.Logf("figures: %s: 429 at 0, Retry-After 2s; later arrivals at %v; sent during the pause: %d", b.name, offsets, held)
			assert.Equal(t, []int{200, 200, 200}, codes, "the retried request succeeds, and so do the others")
			assert.Len(t, refusedAt, 1, "only the forced 429")
			assert.Zero(t, held, "nothing is sent to the route while it is blocked")
			assert.Len(t, arrivals, 3)
		})
	}
}

// A request whose context ends while it waits is not sent, and gives its
// reservation back.
func TestCancelledRequestIsNotSentAndGivesBack(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			window := 2 * time.Second
			create, fcreate := route("user-create", "/v1/mgmt/user/create", limiter.Limit{Requests: 1, Window: window})
			fake := newFakeDescope(t, fcreate)
			project := "p" + strings.ReplaceAll(redistest.Key(t)[len("ratelimit-test:"):], "/", "-")
			c := &http.Client{Transport: b.replica(t, project, descope.WithRoutes(create))}
			url := fake.URL + "/v1/mgmt/user/create"
			ctx := t.Context()
			code, err := call(ctx, c, url)
			require.NoError(t, err)
			require.Equal(t, 200, code)

			wctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { _, err := call(wctx, c, url); done <- err }() // waits for +2.1s
			time.Sleep(100 * time.Millisecond)
			cancel()
			assert.ErrorIs(t, <-done, context.Canceled)
			assert.Len(t, fake.arrivalsOf("user-create"), 1, "the cancelled request was not sent")

			// Given back: the next request gets the slot the cancelled one held,
			// one window (plus margin) after the first, within this deadline.
			dctx, stop := context.WithTimeout(ctx, window+window/2)
			defer stop()
			code, err = call(dctx, c, url)
			require.NoError(t, err, "the next request fits before the deadline only if the slot was given back")
			assert.Equal(t, 200, code)
		})
	}
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	assert.Equal(t, 7*time.Second, descope.RetryAfter("7", now))
	assert.Equal(t, 30*time.Second, descope.RetryAfter(now.Add(30*time.Second).Format(http.TimeFormat), now))
	assert.Equal(t, descope.DefaultBackoff, descope.RetryAfter("", now))
	assert.Equal(t, descope.DefaultBackoff, descope.RetryAfter("soon", now))
}

// Error has the shape of the Descope SDK's descope.Error.
type Error struct {
	Code string
	Info map[string]any
}

func (e *Error) Error() string { return e.Code }

func TestErrorRetryAfterReadsTheSDKError(t *testing.T) {
	d, ok := descope.ErrorRetryAfter(&Error{Code: "E130429", Info: map[string]any{"Retry-After": 12}})
	assert.True(t, ok)
	assert.Equal(t, 12*time.Second, d)
	d, ok = descope.ErrorRetryAfter(errors.Join(errors.New("create"), &Error{Code: "C020003"}))
	assert.True(t, ok)
	assert.Equal(t, descope.DefaultBackoff, d)
	_, ok = descope.ErrorRetryAfter(&Error{Code: "E011002"})
	assert.False(t, ok)
	_, ok = descope.ErrorRetryAfter(errors.New("other"))
	assert.False(t, ok)
}

func TestBadConfig(t *testing.T) {
	s := memory.NewStore()
	for _, tc := range []struct {
		project string
		opts    []descope.Option
		text    string
	}{
		{"", nil, `project ID ""`},
		{"p}{x", nil, "without braces"},
		{"p", []descope.Option{descope.WithRoutes(descope.Route{Path: "v1/x", Limit: limiter.PerSecond(1)})}, "want one starting with /"},
		{"p", []descope.Option{descope.WithRoutes(descope.Route{Path: "/v1/x"})}, "requests=0"},
		{"p", []descope.Option{descope.WithMaxRetries(-1)}, "max retries=-1"},
		{"p", []descope.Option{descope.WithMargin(0)}, "margin=0s"},
	} {
		_, err := descope.NewLocalTransport(s, tc.project, tc.opts...)
		assert.ErrorContains(t, err, tc.text)
	}
}
