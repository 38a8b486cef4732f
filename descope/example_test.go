package descope_test

import (
	"net/http"

	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/descope"
)

// The transport goes where the Descope SDK takes its HTTP client:
// client.Config{DefaultClient: &http.Client{Transport: t}}. This example
// needs a Redis, so it has no Output line and is only compiled.
func ExampleNewTransport() {
	rdb := goredis.NewClient(&goredis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	t, err := descope.NewTransport(rdb, "P2abc")
	if err != nil {
		panic(err)
	}
	defer t.Close()
	httpClient := &http.Client{Transport: t}
	_ = httpClient // pass as client.Config.DefaultClient
}
