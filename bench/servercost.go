package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/limiter"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

// scriptUsec returns the server's time spent in scripts and functions
// (EVALSHA, EVAL and FCALL, µs) and their calls since the last CONFIG
// RESETSTAT.
func scriptUsec(ctx context.Context, c *goredis.Client) (usec float64, calls int64) {
	info, _ := c.Info(ctx, "commandstats").Result()
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (name != "cmdstat_evalsha" && name != "cmdstat_eval" && name != "cmdstat_fcall") {
			continue
		}
		for field := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(field, "=")
			switch k {
			case "usec":
				f, _ := strconv.ParseFloat(v, 64)
				usec += f
			case "calls":
				n, _ := strconv.ParseInt(v, 10, 64)
				calls += n
			}
		}
	}
	return usec, calls
}

// runServerCost prints what a grant costs the Redis server: the script time
// per grant at 1, 16 and 64 goroutines, side by side with the peers, and
// one grant's time and key size as the limit grows.
func runServerCost(ctx context.Context, c *goredis.Client) []target {
	rows := append(grantedPath(c, "bench:cost"), benchOp{"layout floor: window.lua's Redis calls and header codec for one grant, no logic", func(g int) func(context.Context) error {
		k := fmt.Sprintf("bench:floor:%d:%d", g, time.Now().UnixNano())
		id := "12345678"
		return func(ctx context.Context) error {
			return layoutFloor.Run(ctx, c, []string{k}, "reserve", 0, 1, id, 1, -1, 0, 1, 1_000_000, 1_000_000, 0, 0).Err()
		}
	}})
	fmt.Println("## Redis server time per grant (INFO commandstats: script µs / grants)")
	fmt.Println()
	fmt.Println("Script calls per grant in brackets. Limit 1,000,000/1s on one key: every request is granted.")
	fmt.Println()
	per := table(ctx, "per grant, server µs", rows, *cell/10, func(g int, op func(context.Context) error) (float64, string) {
		c.ConfigResetStat(ctx)
		d := *cell / 2
		grants := opsPerSecond(ctx, g, d, op) * d.Seconds()
		usec, calls := scriptUsec(ctx, c)
		return usec / grants, fmt.Sprintf("%.2f (%.3f)", usec/grants, float64(calls)/grants)
	})
	var ts []target
	peerName := "redis_rate v10 Allow (GCRA)"
	for _, name := range []string{"ratelimit Acquire", "ratelimit TryAcquire"} {
		r1 := per[name][1] / per[peerName][1]
		r64 := per[name][64] / per[peerName][64]
		ts = append(ts,
			target{fmt.Sprintf("%s server µs per grant at 1 goroutine vs redis_rate (want <= 1.0x)", name), fmt.Sprintf("%.2fx", r1), r1 <= 1.0, ""},
			target{fmt.Sprintf("%s server µs per grant at 64 goroutines vs redis_rate (want <= 0.25x)", name), fmt.Sprintf("%.2fx", r64), r64 <= 0.25, "coalesced: one script call serves a batch"})
	}
	return append(ts, runLimitCost(ctx, c)...)
}

// runLimitCost prints one grant's server time and the key's size at limits
// from 100 to 10^9 per hour, then a full window of the largest limit kept
// at one-unit resolution (256 grants of one unit each, at distinct times).
func runLimitCost(ctx context.Context, c *goredis.Client) []target {
	fmt.Println("## One grant as the limit grows (per hour)")
	fmt.Println()
	fmt.Println("| limit per hour | one grant, server µs | key size after it (MEMORY USAGE) |")
	fmt.Println("| --- | --- | --- |")
	worstUsec, sizeAt1e7 := 0.0, int64(0)
	for _, n := range []int{100, 10_000, 1_000_000, 10_000_000, 1_000_000_000} {
		k := fmt.Sprintf("bench:limit:%d:%d", n, time.Now().UnixNano())
		l, err := redislimiter.New(c, k, limiter.Limit{Requests: n, Window: time.Hour})
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		_ = l.Load(ctx)
		c.ConfigResetStat(ctx)
		if _, err := l.TryAcquire(ctx, 1); err != nil {
			fmt.Println("error:", err)
			continue
		}
		usec, _ := scriptUsec(ctx, c)
		size, _ := c.MemoryUsage(ctx, k, 0).Result()
		worstUsec = max(worstUsec, usec)
		if n == 10_000_000 {
			sizeAt1e7 = size
		}
		fmt.Printf("| %d | %.0f | %d B |\n", n, usec, size)
	}
	// n up to the limit: one grant of every unit of 10^9.
	k := fmt.Sprintf("bench:limit:all:%d", time.Now().UnixNano())
	l, _ := redislimiter.New(c, k, limiter.Limit{Requests: 1_000_000_000, Window: 30 * 24 * time.Hour})
	_ = l.Load(ctx)
	c.ConfigResetStat(ctx)
	_, _ = l.TryAcquire(ctx, 1_000_000_000)
	usecAll, _ := scriptUsec(ctx, c)
	worstUsec = max(worstUsec, usecAll)
	fmt.Printf("\nn = 10^9 at once on 10^9 per 30 days: %.0f µs.\n", usecAll)

	// A full window at one-unit resolution: the most entries a key keeps.
	const fine = 256
	k = fmt.Sprintf("bench:limit:full:%d", time.Now().UnixNano())
	l, _ = redislimiter.New(c, k, limiter.Limit{Requests: fine, Window: time.Hour}, redislimiter.WithCoalescing(false))
	c.ConfigResetStat(ctx)
	granted := 0
	for range fine {
		if d, err := l.TryAcquire(ctx, 1); err == nil && d.Allowed {
			granted++
		}
	}
	usecFull, calls := scriptUsec(ctx, c)
	size, _ := c.MemoryUsage(ctx, k, 0).Result()
	raw, _ := c.Get(ctx, k).Bytes()
	ids := 0
	if len(raw) > 48 {
		// The request ids it remembers: the ring of records (20 B each,
		// its capacity in byte 47 of the header) and 16 call ids (8 B each).
		ids = 20*int(raw[47]) + 16*8
	}
	d, _ := l.TryAcquire(ctx, 1)
	perUnit := float64(size-int64(ids)) / float64(granted)
	fmt.Printf("A full window of %d/1h filled one unit per call: %d units held, %d B with %d B of request ids, %.1f B per unit held without them; %.1f µs per call on average; the next is refused: %v.\n\n",
		fine, granted, size, ids, perUnit, usecFull/float64(calls), !d.Allowed)
	return []target{
		{"one script call's server time, any limit up to 10^9/1h and n up to the limit (want <= 1 ms)", fmt.Sprintf("%.0f µs worst", worstUsec), worstUsec <= 1000, ""},
		{"key size after one grant on 10^7/1h (want <= 4 KB)", fmt.Sprintf("%d B", sizeAt1e7), sizeAt1e7 > 0 && sizeAt1e7 <= 4096, ""},
		{"a full window, bytes per unit held, request ids aside (want <= 8 B)", fmt.Sprintf("%.1f B", perUnit), perUnit <= 8, fmt.Sprintf("%d one-unit grants on %d/1h", granted, fine)},
	}
}
