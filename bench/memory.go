package main

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/limiter"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

// runMemory prints MEMORY USAGE of one quota key at full load.
func runMemory(ctx context.Context, c *goredis.Client) []target {
	fmt.Println("## Redis memory per quota key at full load (MEMORY USAGE)")
	fmt.Println()
	fmt.Println("| limit per window | ratelimit (packed ring) | bytes per unit | sorted-set log | bytes per unit |")
	fmt.Println("| --- | --- | --- | --- | --- |")
	var ts []target
	worst := 0.0
	for _, n := range []int{100, 10_000, 100_000} {
		key := fmt.Sprintf("bench:mem:%d:%d", n, time.Now().UnixNano())
		l, _ := redislimiter.New(c, key, limiter.Limit{Requests: n, Window: time.Hour})
		if _, err := l.TryAcquire(ctx, n); err != nil {
			fmt.Println("error:", err)
			continue
		}
		ours, _ := c.MemoryUsage(ctx, key, 0).Result()
		// The sorted set a sliding log holds at full load: one member per unit.
		zkey := key + ":zset"
		now := time.Now().UnixMicro()
		for i := 0; i < n; i += 1000 {
			members := make([]goredis.Z, 0, 1000)
			for j := i; j < min(n, i+1000); j++ {
				members = append(members, goredis.Z{Score: float64(now + int64(j)), Member: fmt.Sprintf("%d:%d", now+int64(j), j)})
			}
			c.ZAdd(ctx, zkey, members...)
		}
		zset, _ := c.MemoryUsage(ctx, zkey, 0).Result()
		perUnit := float64(ours) / float64(n)
		worst = max(worst, perUnit)
		fmt.Printf("| %d | %d B | %.1f | %d B | %.1f |\n", n, ours, perUnit, zset, float64(zset)/float64(n))
	}
	gkey := fmt.Sprintf("bench:mem:gcra:%d", time.Now().UnixNano())
	_, _ = redis_rate.NewLimiter(c).Allow(ctx, gkey, redis_rate.PerSecond(100))
	gcra, _ := c.MemoryUsage(ctx, "rate:"+gkey, 0).Result() // redis_rate prefixes its keys
	fmt.Printf("\nredis_rate (GCRA) keeps one small key whatever the limit: %d B; it is not exact over a sliding window.\n\n", gcra)
	ts = append(ts, target{"Redis memory per unit of the limit (want <= about 16 B)", fmt.Sprintf("%.1f B worst", worst), worst <= 16, ""})
	return ts
}
