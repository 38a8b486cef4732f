package fallback_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/fallback"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

// While Redis is down, a replica keeps working within its share of the
// quota: here 10 per minute shared by 5 replicas, so 2 each.
func Example() {
	srv := miniredis.NewMiniRedis()
	if err := srv.Start(); err != nil {
		panic(err)
	}
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), MaxRetries: -1, DialerRetries: 1})
	defer client.Close()
	quota := limiter.PerMinute(10)
	shared, err := redislimiter.New(client, "api", quota)
	if err != nil {
		panic(err)
	}
	l, err := fallback.New(shared, fallback.Share(quota, 5), fallback.WithObserver(limiter.ObserverFunc(func(e limiter.Event) {
		if e.Kind == limiter.EventFallbackEnter {
			fmt.Println("redis failed: granting from the local share")
		}
	})))
	if err != nil {
		panic(err)
	}
	srv.Close() // Redis goes away
	ctx := context.Background()
	for range 3 {
		d, err := l.TryAcquire(ctx, 1)
		if err != nil {
			panic(err)
		}
		fmt.Printf("allowed=%v in fallback=%v\n", d.Allowed, l.InFallback())
	}
	// Output:
	// redis failed: granting from the local share
	// allowed=true in fallback=true
	// allowed=true in fallback=true
	// allowed=false in fallback=true
}
