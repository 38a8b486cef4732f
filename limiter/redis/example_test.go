package redis_test

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/limiter"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

// Every replica that opens the same key shares one quota. This example needs
// a Redis on localhost:6379, so it has no Output line and is only compiled.
func Example() {
	client := goredis.NewClient(&goredis.Options{Addr: "localhost:6379"})
	defer client.Close()
	users, err := redislimiter.New(client, "descope:{project-123}:user-create", limiter.PerMinute(100))
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := users.Acquire(ctx, 1); err != nil {
		fmt.Println("not granted:", err)
		return
	}
	fmt.Println("granted: call the API now")
}
