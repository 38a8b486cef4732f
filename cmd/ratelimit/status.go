package main

import (
	"context"
	"fmt"
	"io"
	"time"

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
