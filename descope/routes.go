// Package descope keeps calls to the Descope management API under Descope's
// rate limits, for every replica at once: an http.RoundTripper that plugs
// into the Descope Go SDK (client.Config.DefaultClient), acquires one unit of
// every quota a request counts against before sending it, and turns a 429
// into a pause that every replica honours.
//
//	t, err := descope.NewTransport(redisClient, projectID)
//	cfg := &client.Config{ProjectID: projectID, DefaultClient: &http.Client{Transport: t}}
package descope

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/descope-mgmt/ratelimit/limiter"
)

// Route is one of Descope's limits and the requests it counts.
type Route struct {
	// Method matches the request's method; empty matches any.
	Method string
	// Path is an exact path, or a prefix ending in "/*", which matches the
	// prefix itself and everything below it. Write it as Descope documents
	// it: a path that starts with an API version segment ("/v1/…") matches
	// the same endpoint under every version ("/v2/…", "/v3/…"), because the
	// SDK sends some calls under other versions than the docs name, and a
	// new SDK release can move more. ExactVersion turns that off.
	Path string
	// ExactVersion makes Path's version segment match only itself:
	// "/v1/mgmt/user/search" then leaves "/v2/mgmt/user/search" alone.
	// Default: false, any version.
	ExactVersion bool
	// Limit is Descope's limit for the route.
	Limit limiter.Limit
	// Name names the route's quota (its Redis key ends with it). Default:
	// derived from Method and Path. Routes with one Name share one quota.
	Name string
}

// DefaultRoutes are Descope's published limits for management calls, from
// https://docs.descope.com/rate-limiting (the version that lists a generic
// 500/60s for /v1/mgmt/user/*), read on 2026-11-27. User management is
// counted per project, the rest per IP address; every route that matches a
// request applies, so a user creation counts against user-create,
// user-mgmt and mgmt. Each route matches its endpoint under any API version
// (see Route.Path). A request no route matches counts against
// [DefaultUnmatched]().
//
// Each call returns a new slice: change it freely.
func DefaultRoutes() []Route {
	return []Route{
		{Path: "/v1/mgmt/user/create/*", Limit: limiter.PerMinute(100), Name: "user-create"}, // create, create/batch, create/test
		{Path: "/v1/mgmt/user/update", Limit: limiter.PerMinute(200), Name: "user-update"},
		{Path: "/v1/mgmt/user/search", Limit: limiter.PerMinute(200), Name: "user-search"}, // the SDK sends it as /v2/…
		{Path: "/v1/mgmt/user/*", Limit: limiter.PerMinute(500), Name: "user-mgmt"},
		{Path: "/v1/mgmt/*", Limit: backendSDKLimit, Name: "mgmt"}, // backend SDK calls other than authentication
	}
}

// backendSDKLimit is Descope's limit on backend SDK calls: 1000 per 10 s.
var backendSDKLimit = limiter.Limit{Requests: 1000, Window: 10 * time.Second}

// DefaultUnmatched returns the catch-all route of a Transport: a request
// that no route matches counts against it, so no request escapes every
// quota unless [WithUnlimited] exempts it. Its limit is Descope's
// backend-SDK limit. Set another with [WithUnmatched].
func DefaultUnmatched() Route {
	return Route{Path: "/*", Limit: backendSDKLimit, Name: "unmatched"}
}

// matches reports whether r applies to a request.
func (r Route) matches(method, reqPath string) bool {
	if r.Method != "" && !strings.EqualFold(r.Method, method) {
		return false
	}
	return pathMatches(r.Path, r.ExactVersion, reqPath)
}

// pathMatches reports whether pattern (exact, or a prefix ending in "/*")
// matches reqPath, ignoring the API version segment of both unless exact.
func pathMatches(pattern string, exactVersion bool, reqPath string) bool {
	reqPath = path.Clean("/" + reqPath)
	if !exactVersion {
		if rest, ok := cutVersion(pattern); ok {
			reqRest, ok := cutVersion(reqPath)
			if !ok {
				return false
			}
			pattern, reqPath = rest, reqRest
		}
	}
	if prefix, ok := strings.CutSuffix(pattern, "/*"); ok {
		return prefix == "" || reqPath == prefix || strings.HasPrefix(reqPath, prefix+"/")
	}
	return reqPath == pattern
}

// cutVersion splits "/v2/mgmt/user" into "/mgmt/user": the path after a
// leading version segment ("v" and digits). ok is false without one.
func cutVersion(p string) (rest string, ok bool) {
	seg, rest, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	if len(seg) < 2 || seg[0] != 'v' || strings.Trim(seg[1:], "0123456789") != "" {
		return "", false
	}
	return "/" + rest, true
}

// name is the quota's name: Name, or one made from Method and Path.
func (r Route) name() string {
	if r.Name != "" {
		return r.Name
	}
	m := r.Method
	if m == "" {
		m = "any"
	}
	return strings.ToLower(m) + ":" + r.Path
}

func (r Route) validate() error {
	switch {
	case !strings.HasPrefix(r.Path, "/"):
		return fmt.Errorf("%w: descope route path %q, want one starting with /", limiter.ErrInvalidConfig, r.Path)
	case r.Method != "" && strings.ContainsAny(r.Method, " /{}"):
		return fmt.Errorf("%w: descope route method %q is not an HTTP method", limiter.ErrInvalidConfig, r.Method)
	}
	return limiter.Quota{Key: r.name(), Limits: []limiter.Limit{r.Limit}}.Validate()
}
