package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/limiter"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

var goroutines = []int{1, 16, 64}

// opsPerSecond runs op from g goroutines for d and returns successful ops per second.
func opsPerSecond(ctx context.Context, g int, d time.Duration, op func(context.Context) error) float64 {
	var n atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range g {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if op(ctx) == nil {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / d.Seconds()
}

// big is a limit that never binds at these rates: the granted path.
var big = limiter.Limit{Requests: 1_000_000, Window: time.Second}

// benchOp is one row of a table: an operation made fresh for g goroutines
// (on a key of its own).
type benchOp struct {
	name string
	op   func(g int) func(context.Context) error
}

// grantedPath returns the operations both tables compare on the granted
// path, in order: the no-op script, redis_rate, the sorted-set log, then
// Acquire and TryAcquire. prefix names their keys.
func grantedPath(c *goredis.Client, prefix string) []benchOp {
	peer := redis_rate.NewLimiter(c)
	peerLimit := redis_rate.Limit{Rate: big.Requests, Burst: big.Requests, Period: big.Window}
	var seq atomic.Int64
	key := func(name string, g int) string {
		return fmt.Sprintf("%s:%s:%d:%d", prefix, name, g, time.Now().UnixNano())
	}
	return []benchOp{
		{"EVALSHA `return 1`", func(int) func(context.Context) error {
			return func(ctx context.Context) error { return noop.Run(ctx, c, []string{"bench:noop"}).Err() }
		}},
		{"redis_rate v10 Allow (GCRA)", func(g int) func(context.Context) error {
			k := key("gcra", g)
			return func(ctx context.Context) error { _, err := peer.Allow(ctx, k, peerLimit); return err }
		}},
		{"sorted-set sliding log script", func(g int) func(context.Context) error {
			z := zsetLimiter{c: c, key: key("zset", g), limit: big.Requests, window: big.Window, seq: func() int64 { return seq.Add(1) }}
			return func(ctx context.Context) error { _, _, err := z.allow(ctx); return err }
		}},
		{"ratelimit Acquire", func(g int) func(context.Context) error {
			l, _ := redislimiter.New(c, key("acq", g), big)
			return func(ctx context.Context) error { return l.Acquire(ctx, 1) }
		}},
		{"ratelimit TryAcquire", func(g int) func(context.Context) error {
			l, _ := redislimiter.New(c, key("try", g), big)
			return func(ctx context.Context) error { _, err := l.TryAcquire(ctx, 1); return err }
		}},
	}
}

// table prints a table of rows by goroutine counts, headed first, and
// returns its figures by row name and goroutine count. Each cell makes its
// operation afresh, warms it up for warm (the script cache, the pool), then
// measure gives the figure and how to print it.
func table(ctx context.Context, first string, rows []benchOp, warm time.Duration,
	measure func(g int, op func(context.Context) error) (float64, string)) map[string]map[int]float64 {
	fmt.Printf("| %s | 1 goroutine | 16 goroutines | 64 goroutines |\n", first)
	fmt.Println("| --- | --- | --- | --- |")
	figures := map[string]map[int]float64{}
	for _, r := range rows {
		figures[r.name] = map[int]float64{}
		fmt.Printf("| %s |", r.name)
		for _, g := range goroutines {
			op := r.op(g)
			opsPerSecond(ctx, g, warm, op)
			f, text := measure(g, op)
			figures[r.name][g] = f
			fmt.Printf(" %s |", text)
		}
		fmt.Println()
	}
	fmt.Println()
	return figures
}

func runThroughput(ctx context.Context, c *goredis.Client) []target {
	ping := benchOp{"PING", func(int) func(context.Context) error {
		return func(ctx context.Context) error { return c.Ping(ctx).Err() }
	}}
	noCoalescing := benchOp{"ratelimit Acquire, coalescing off", func(g int) func(context.Context) error {
		l, _ := redislimiter.New(c, fmt.Sprintf("bench:acq1:%d:%d", g, time.Now().UnixNano()), big, redislimiter.WithCoalescing(false))
		return func(ctx context.Context) error { return l.Acquire(ctx, 1) }
	}}
	rows := append([]benchOp{ping}, grantedPath(c, "bench")...)
	rows = append(rows, noCoalescing)
	fmt.Println("## Throughput on the granted path (one key, ops/s)")
	fmt.Println()
	results := table(ctx, "operation", rows, *cell/5, func(g int, op func(context.Context) error) (float64, string) {
		ops := opsPerSecond(ctx, g, *cell, op)
		return ops, fmt.Sprintf("%.1fk/s", ops/1000)
	})
	var ts []target
	for _, name := range []string{"ratelimit Acquire", "ratelimit TryAcquire"} {
		vsPeer := results[name][1] / results["redis_rate v10 Allow (GCRA)"][1]
		ts = append(ts, target{fmt.Sprintf("%s at 1 goroutine vs redis_rate (want >= 1.0x)", name), fmt.Sprintf("%.2fx", vsPeer), vsPeer >= 1.0, "nothing to coalesce: one script call per grant"})
	}
	for _, g := range []int{16, 64} {
		for _, name := range []string{"ratelimit Acquire", "ratelimit TryAcquire"} {
			vsPeer := results[name][g] / results["redis_rate v10 Allow (GCRA)"][g]
			vsNoop := results[name][g] / results["EVALSHA `return 1`"][g]
			ts = append(ts,
				target{fmt.Sprintf("%s at %d goroutines vs redis_rate (want >= 1.0x)", name, g), fmt.Sprintf("%.2fx", vsPeer), vsPeer >= 1.0, ""},
				target{fmt.Sprintf("%s at %d goroutines vs no-op EVALSHA (want >= 1.0x)", name, g), fmt.Sprintf("%.2fx", vsNoop), vsNoop >= 1.0, ""})
		}
	}
	stretch := results["ratelimit Acquire"][64] / results["EVALSHA `return 1`"][64]
	ts = append(ts, target{"stretch: one process's grants/s at 64 goroutines vs no-op EVALSHA round trips/s (want > 1.0x)",
		fmt.Sprintf("%.2fx", stretch), stretch > 1.0, "Acquire coalesces the requests that arrive while a call is in flight"})
	return ts
}
