package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/descope"
	"github.com/descope-mgmt/ratelimit/limiter"
)

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	limit := limitFlag{limiter.PerSecond(20)}
	fs := newFlags("status", "Reads a quota: units used in the window ending now, units reserved after now\nby waiting callers, and when the next unit frees up. It never consumes quota.", stdout)
	redisURL := fs.String("redis", defaultRedisURL(), "Redis URL, redis:// or rediss:// (default $REDIS_URL)")
	key := fs.String("key", "ratelimit:{default}", "the quota's Redis key")
	fs.Var(&limit, "limit", "the quota's limit, as its replicas use it (e.g. 20/1s)")
	watch := fs.Bool("watch", false, "refresh until interrupted")
	interval := fs.Duration("interval", time.Second, "refresh interval with --watch")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *interval <= 0 {
		return usagef("--interval=%v, want more than 0", *interval)
	}
	client, err := connect(ctx, *redisURL)
	if err != nil {
		return err
	}
	defer client.Close()
	l, err := newLimiter(client, *key, limit.Limit)
	if err != nil {
		return err
	}
	for {
		st, err := l.Status(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "quota %s  limit %v  at %s (server time)\n", *key, limit.Limit, st.Now.Format("15:04:05.000"))
		fmt.Fprintf(stdout, "  used in window:  %d of %d\n", st.Used, limit.Requests)
		fmt.Fprintf(stdout, "  queued:          %d units reserved after now\n", st.Queued)
		if st.NextFree == 0 {
			fmt.Fprintf(stdout, "  next unit free:  now\n")
		} else {
			fmt.Fprintf(stdout, "  next unit free:  in %v\n", st.NextFree.Round(time.Millisecond))
		}
		if n, ttl, err := learnedLimit(ctx, client, *key); err != nil {
			return err
		} else if n > 0 {
			fmt.Fprintf(stdout, "  learned limit:   %d per %v, lowered after the API answered 429 to a request within the limit; expires in %v\n",
				n, limit.Window, ttl.Round(time.Second))
		}
		if !*watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*interval):
		}
	}
}

// learnedLimit reads the limit a descope.Transport lowered for key, stored
// beside it (descope.LearnedKey), and how long it lasts; 0 if none.
func learnedLimit(ctx context.Context, c *goredis.Client, key string) (int, time.Duration, error) {
	lk := descope.LearnedKey(key)
	n, err := c.Get(ctx, lk).Int()
	switch {
	case errors.Is(err, goredis.Nil):
		return 0, 0, nil
	case err != nil:
		return 0, 0, fmt.Errorf("read %s: %w", lk, err)
	}
	return n, c.PTTL(ctx, lk).Val(), nil
}
