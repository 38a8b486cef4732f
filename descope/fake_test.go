package descope_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/descope-mgmt/ratelimit/internal/grants"
	"github.com/descope-mgmt/ratelimit/limiter"
)

// fakeDescope enforces routes the harshest way the docs allow: exact
// sliding windows on arrival times, and on a breach a 429 with Retry-After
// and the E130429 body, then every call to the route refused for the
// backoff. Like Descope, it counts an endpoint under any API version
// against the same limit (/v2/mgmt/user/search is the documented
// /v1/mgmt/user/search).
type fakeDescope struct {
	*httptest.Server
	routes []fakeRoute

	mu       sync.Mutex
	arrivals map[string][]time.Time // admitted requests per route
	refused  map[string][]time.Time // 429s per route
	force    *forced429
}

type fakeRoute struct {
	name    string
	path    string // exact, or a prefix ending in /*
	limit   limiter.Limit
	backoff time.Duration
	blocked time.Time
}

// forced429 makes the next request to a route fail with Retry-After, its
// response held back for delay.
type forced429 struct {
	route      string
	retryAfter int
	delay      time.Duration
}

func newFakeDescope(t *testing.T, routes ...fakeRoute) *fakeDescope {
	f := &fakeDescope{routes: routes, arrivals: map[string][]time.Time{}, refused: map[string][]time.Time{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

// apiVersion is the version segment Descope ignores when it counts: the
// same endpoint under /v1 and /v2 is one limit.
var apiVersion = regexp.MustCompile(`^/v[0-9]+/`)

func (r *fakeRoute) matches(path string) bool {
	pattern := apiVersion.ReplaceAllString(r.path, "/")
	path = apiVersion.ReplaceAllString(path, "/")
	if prefix, ok := strings.CutSuffix(pattern, "/*"); ok {
		return path == prefix || strings.HasPrefix(path, prefix+"/")
	}
	return path == pattern
}

func (f *fakeDescope) serve(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	f.mu.Lock()
	var matched []*fakeRoute
	for i := range f.routes {
		if f.routes[i].matches(req.URL.Path) {
			matched = append(matched, &f.routes[i])
		}
	}
	var breached *fakeRoute
	retry := 0
	for _, r := range matched {
		if fc := f.force; fc != nil && fc.route == r.name {
			f.force = nil
			r.blocked = now.Add(time.Duration(fc.retryAfter) * time.Second)
			f.refused[r.name] = append(f.refused[r.name], now)
			f.mu.Unlock()
			time.Sleep(fc.delay)
			tooMany(w, fc.retryAfter)
			return
		}
		inWindow := 0
		for _, at := range f.arrivals[r.name] {
			if at.After(now.Add(-r.limit.Window)) {
				inWindow++
			}
		}
		switch {
		case now.Before(r.blocked):
			breached, retry = r, int(r.blocked.Sub(now)/time.Second)+1
		case inWindow+1 > r.limit.Requests:
			r.blocked = now.Add(r.backoff)
			breached, retry = r, int(r.backoff/time.Second)
		}
		if breached != nil {
			break
		}
	}
	if breached != nil {
		f.refused[breached.name] = append(f.refused[breached.name], now)
		f.mu.Unlock()
		tooMany(w, retry)
		return
	}
	for _, r := range matched {
		f.arrivals[r.name] = append(f.arrivals[r.name], now)
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"ok":true}`)
}

func tooMany(w http.ResponseWriter, retryAfter int) {
	w.Header().Set("Retry-After", fmt.Sprint(retryAfter))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusTooManyRequests)
	fmt.Fprint(w, `{"errorCode":"E130429","errorDescription":"Rate limit exceeded","errorMessage":"too many requests"}`)
}

func (f *fakeDescope) forceNext429(route string, retryAfter int, delay time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.force = &forced429{route: route, retryAfter: retryAfter, delay: delay}
}

// report returns the 429s seen and each route's figures.
func (f *fakeDescope) report() (refused int, figures map[string]grants.Figures) {
	f.mu.Lock()
	defer f.mu.Unlock()
	figures = map[string]grants.Figures{}
	for _, r := range f.routes {
		refused += len(f.refused[r.name])
		var record []grants.Grant
		for _, at := range f.arrivals[r.name] {
			record = append(record, grants.Grant{At: at})
		}
		figures[r.name] = grants.Measure(record, r.limit.Requests, r.limit.Window)
	}
	return refused, figures
}

func (f *fakeDescope) arrivalsOf(route string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.arrivals[route]...)
}

func (f *fakeDescope) refusalsOf(route string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.refused[route]...)
}

// setLimit changes a route's limit from now on, as when another client
// starts using the same project.
func (f *fakeDescope) setLimit(route string, limit limiter.Limit) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.routes {
		if f.routes[i].name == route {
			f.routes[i].limit = limit
		}
	}
}
