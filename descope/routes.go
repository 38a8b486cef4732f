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
	"strings"
	"time"

	"github.com/descope-mgmt/ratelimit/limiter"
)

// Route is one of Descope's limits and the requests it counts.
type Route struct {
	// Method matches the request's method; empty matches any.
	Method string
	// Path is an exact path, or a prefix ending in "/*", which matches the
	// prefix itself and everything below it.
	Path string
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
// user-mgmt and mgmt.
//
// Not included: "all other API traffic, 100 per 60 s". Routes add up, so a
// catch-all would also count the user-management calls that have their own,
// higher limits; add a Route for any other endpoint you call often.
var DefaultRoutes = []Route{
	{Path: "/v1/mgmt/user/create/*", Limit: limiter.PerMinute(100), Name: "user-create"}, // create and create/batch
	{Path: "/v1/mgmt/user/update", Limit: limiter.PerMinute(200), Name: "user-update"},
	{Path: "/v1/mgmt/user/search", Limit: limiter.PerMinute(200), Name: "user-search"},
	{Path: "/v1/mgmt/user/*", Limit: limiter.PerMinute(500), Name: "user-mgmt"},
	{Path: "/v1/mgmt/*", Limit: limiter.Limit{Requests: 1000, Window: 10 * time.Second}, Name: "mgmt"}, // backend SDK calls other than authentication
}

// matches reports whether r applies to a request.
func (r Route) matches(method, path string) bool {
	if r.Method != "" && !strings.EqualFold(r.Method, method) {
		return false
	}
	if prefix, ok := strings.CutSuffix(r.Path, "/*"); ok {
		return path == prefix || strings.HasPrefix(path, prefix+"/")
	}
	return path == r.Path
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
		return fmt.Errorf("descope: route path %q, want one starting with /", r.Path)
	case strings.ContainsAny(r.Path+r.Name, "{} \t\n"):
		return fmt.Errorf("descope: route %q: braces and spaces would break the Redis key's hash tag", r.name())
	case r.Method != "" && strings.ContainsAny(r.Method, " /{}"):
		return fmt.Errorf("descope: route method %q is not an HTTP method", r.Method)
	}
	if err := r.Limit.Validate(); err != nil {
		return fmt.Errorf("descope: route %q: %w", r.name(), err)
	}
	return nil
}
