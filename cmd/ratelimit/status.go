package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/descope"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var limit limitFlag
	fs := newFlags("status", "Reads a quota: units used in the window ending now, units reserved after now\nby waiting callers, and when the next unit frees up, under the limit its\nreplicas stored in the key. It never consumes quota.", stdout)
	redisArg := redisFlag(fs, "Redis URL")
	key := fs.String("key", "ratelimit:{default}", "the quota's Redis key")
	fs.Var(&limit, "limit", "read under this limit instead of the stored one (e.g. 20/1s); it is compared with the stored one")
	watch := fs.Bool("watch", false, "refresh until interrupted")
	interval := fs.Duration("interval", time.Second, "refresh interval with --watch")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *interval <= 0 {
		return usagef("--interval=%v, want more than 0", *interval)
	}
	client, err := connect(ctx, redisURL(*redisArg))
	if err != nil {
		return err
	}
	defer client.Close()
	var mine *redislimiter.Limiter
	if limit.Requests > 0 {
		if mine, err = newLimiter(client, *key, limit.Limit); err != nil {
			return err
		}
	}
	for {
		if err := printStatus(ctx, stdout, client, *key, mine); err != nil {
			return err
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

// printStatus prints one read of the quota at key: under the stored limit,
// or under mine's when given (and says if the two differ).
func printStatus(ctx context.Context, w io.Writer, client *goredis.Client, key string, mine *redislimiter.Limiter) error {
	stored, err := redislimiter.ReadStatus(ctx, client, key)
	switch {
	case errors.Is(err, redislimiter.ErrNoQuota):
		return failedf("no quota at key %s: it was never used, it expired a window after its last grant, or the key is mistyped", key)
	case errors.Is(err, redislimiter.ErrNotAQuota):
		return failedf("key %s is not a quota: %v", key, err)
	case err != nil:
		return err
	}
	st := stored
	if mine != nil {
		if st, err = mine.Status(ctx); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "quota %s  limit %v  at %s (server time)\n", key, st.Limit, st.Now.Format("15:04:05.000"))
	if mine != nil && st.Limit != stored.Limit {
		fmt.Fprintf(w, "  note:            --limit %v is not the limit stored in the key (%v): figures below are for --limit\n", st.Limit, stored.Limit)
	}
	fmt.Fprintf(w, "  used in window:  %d of %d\n", st.Used, st.Limit.Requests)
	fmt.Fprintf(w, "  queued:          %d units reserved after now\n", st.Queued)
	if st.NextFree == 0 {
		fmt.Fprintf(w, "  next unit free:  now\n")
	} else {
		fmt.Fprintf(w, "  next unit free:  in %v\n", st.NextFree.Round(time.Millisecond))
	}
	if at := stored.LimitsChangedAt; !at.IsZero() && stored.Now.Sub(at) < stored.Limit.Window {
		fmt.Fprintf(w, "  replicas differ: a replica found other limits stored at %s, %v ago; stored now: %v (each replica enforces its own)\n",
			at.Format("15:04:05.000"), stored.Now.Sub(at).Round(time.Millisecond), stored.Limit)
	}
	if n, ttl, err := learnedLimit(ctx, client, key); err != nil {
		return err
	} else if n > 0 {
		fmt.Fprintf(w, "  learned limit:   %d per %v, lowered after the API answered 429 to a request within the limit; expires in %v\n",
			n, st.Limit.Window, ttl.Round(time.Second))
	}
	return nil
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
