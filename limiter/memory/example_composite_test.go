package memory_test

import (
	"context"
	"fmt"
	"time"

	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/memory"
)

// Limiters made from one Store share the quotas they name. A creation
// counts against "create" and "users"; a load only against "users".
func ExampleStore_NewComposite() {
	store := memory.NewStore()
	create := limiter.Quota{Key: "create", Limits: []limiter.Limit{limiter.PerMinute(1)}}
	users := limiter.Quota{Key: "users", Limits: []limiter.Limit{limiter.PerMinute(2)}}
	creates, err := store.NewComposite([]limiter.Quota{create, users})
	if err != nil {
		panic(err)
	}
	loads, err := store.NewComposite([]limiter.Quota{users})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for _, step := range []struct {
		name string
		l    *memory.Limiter
	}{{"create", creates}, {"create", creates}, {"load", loads}, {"load", loads}} {
		d, _ := step.l.TryAcquire(ctx, 1)
		fmt.Printf("%s: allowed=%v\n", step.name, d.Allowed)
	}
	// Output:
	// create: allowed=true
	// create: allowed=false
	// load: allowed=true
	// load: allowed=false
}

// A pause holds every grant on the limiter's quotas, as after an HTTP 429.
func ExampleLimiter_Pause() {
	l, err := memory.New(limiter.PerSecond(10))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := l.Pause(ctx, time.Minute); err != nil {
		panic(err)
	}
	d, _ := l.TryAcquire(ctx, 1)
	fmt.Printf("allowed=%v retry after about %v\n", d.Allowed, d.RetryAfter.Round(time.Second))
	// Output:
	// allowed=false retry after about 1m0s
}
