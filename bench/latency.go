package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	goredis "github.com/redis/go-redis/v9"

	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

// runLatency prints p50/p99 of one call when quota is free, beside PING and
// a no-op EVALSHA in the same run.
func runLatency(ctx context.Context, c *goredis.Client) {
	l, _ := redislimiter.New(c, fmt.Sprintf("bench:latency:%d", time.Now().UnixNano()), big)
	ops := []struct {
		name string
		op   func() error
	}{
		{"PING", func() error { return c.Ping(ctx).Err() }},
		{"EVALSHA `return 1`", func() error { return noop.Run(ctx, c, []string{"bench:noop"}).Err() }},
		{"ratelimit Acquire, quota free", func() error { return l.Acquire(ctx, 1) }},
	}
	fmt.Println("## Latency of one call, quota free (1 goroutine, 20000 calls)")
	fmt.Println()
	fmt.Println("| call | p50 | p99 |")
	fmt.Println("| --- | --- | --- |")
	for _, o := range ops {
		lat := make([]time.Duration, 0, 20000)
		for range 1000 {
			_ = o.op()
		}
		for range cap(lat) {
			start := time.Now()
			_ = o.op()
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		fmt.Printf("| %s | %v | %v |\n", o.name, lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond))
	}
	fmt.Println()
}
