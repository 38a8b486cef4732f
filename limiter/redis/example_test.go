package redis_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/limiter"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

// Every replica that opens the same key shares one quota. Here two
// replicas (two clients) share 2 per minute on an embedded Redis
// (miniredis); point the client at your Redis instead.
func Example() {
	srv := miniredis.NewMiniRedis()
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Close()
	ctx := context.Background()
	key := redislimiter.KeyFor("descope", "project-123", "user-create")
	for replica := range 2 {
		client := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
		defer client.Close()
		users, err := redislimiter.New(client, key, limiter.PerMinute(2))
		if err != nil {
			panic(err)
		}
		for range 2 {
			d, err := users.TryAcquire(ctx, 1)
			if err != nil {
				panic(err)
			}
			fmt.Printf("replica %d: allowed=%v remaining=%d\n", replica, d.Allowed, d.Remaining)
		}
	}
	// Output:
	// replica 0: allowed=true remaining=1
	// replica 0: allowed=true remaining=0
	// replica 1: allowed=false remaining=0
	// replica 1: allowed=false remaining=0
}

// A composite grants a request only when every quota allows it, and
// records it in all of them at once: a user creation counts against
// user-create and user-mgmt. The keys share one hash tag (KeyFor), so a
// Redis Cluster keeps them in one slot.
func ExampleNewComposite() {
	srv := miniredis.NewMiniRedis()
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Close()
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer client.Close()
	create := limiter.Quota{Key: redislimiter.KeyFor("descope", "p1", "user-create"), Limits: []limiter.Limit{limiter.PerMinute(2)}}
	mgmt := limiter.Quota{Key: redislimiter.KeyFor("descope", "p1", "user-mgmt"), Limits: []limiter.Limit{limiter.PerMinute(3)}}
	creates, err := redislimiter.NewComposite(client, []limiter.Quota{create, mgmt})
	if err != nil {
		panic(err)
	}
	loads, err := redislimiter.NewComposite(client, []limiter.Quota{mgmt})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for _, step := range []struct {
		name string
		l    *redislimiter.Limiter
	}{{"create", creates}, {"create", creates}, {"load", loads}, {"load", loads}} {
		d, err := step.l.TryAcquire(ctx, 1)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s: allowed=%v\n", step.name, d.Allowed)
	}
	// Output:
	// create: allowed=true
	// create: allowed=true
	// load: allowed=true
	// load: allowed=false
}

// After a 429 from the API it guards, a limiter pauses its quota for every
// replica: nothing is granted until the pause ends.
func ExampleLimiter_Pause() {
	srv := miniredis.NewMiniRedis()
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Close()
	srv.SetTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) // the script reads the server's clock
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer client.Close()
	l, err := redislimiter.New(client, "api", limiter.PerSecond(100))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := l.Pause(ctx, 30*time.Second); err != nil {
		panic(err)
	}
	d, err := l.TryAcquire(ctx, 1)
	if err != nil {
		panic(err)
	}
	fmt.Printf("allowed=%v retry after %v\n", d.Allowed, d.RetryAfter)
	// Output:
	// allowed=false retry after 30s
}
