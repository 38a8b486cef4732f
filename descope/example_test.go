package descope_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/descope"
	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/memory"
)

// The transport goes where the Descope SDK takes its HTTP client:
// client.Config{DefaultClient: &http.Client{Transport: t}}. For many
// replicas, give it the Redis they share.
func ExampleNewTransport() {
	rdb := goredis.NewClient(&goredis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	t, err := descope.NewTransport(rdb, "P2abc") // no I/O until the first request
	if err != nil {
		panic(err)
	}
	defer t.Close()
	httpClient := &http.Client{Transport: t}
	fmt.Println(httpClient.Transport != nil)
	// Output: true
}

// Every request counts against the routes it matches, under any API
// version; here a search, which the SDK sends under /v2, against a stand-in
// for Descope.
func ExampleNewLocalTransport() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"users":[]}`)
	}))
	defer api.Close()
	search := descope.Route{Path: "/v1/mgmt/user/search", Limit: limiter.PerMinute(2), Name: "user-search"}
	t, err := descope.NewLocalTransport(memory.NewStore(), "P2abc", descope.WithRoutes(search))
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: t}
	for range 2 {
		resp, err := client.Post(api.URL+"/v2/mgmt/user/search", "application/json", strings.NewReader(`{}`))
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	// Output:
	// 200 OK
	// 200 OK
}
