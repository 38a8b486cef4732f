package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/internal/grants"
	"github.com/descope-mgmt/ratelimit/internal/redistest"
	"github.com/descope-mgmt/ratelimit/limiter"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

// Sentinel failover: a master, a replica and three sentinels; the master is
// killed mid-run. The limiter, on a go-redis failover client, keeps
// granting once the replica is promoted, and no window ever holds more
// than the limit, even if the promoted replica missed the last writes.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a master, a replica and three sentinels")
	}
	master := redistest.Start(t)
	replica := redistest.Start(t, "--replicaof", "127.0.0.1", fmt.Sprint(master.Port))
	var sentinels []string
	for range 3 {
		sentinels = append(sentinels, redistest.StartSentinel(t, master).Addr)
	}
	ctx := t.Context()
	// Wait until the sentinels see the replica and each other.
	s := goredis.NewSentinelClient(&goredis.Options{Addr: sentinels[0]})
	defer s.Close()
	require.Eventually(t, func() bool {
		reps, err1 := s.Replicas(ctx, "mymaster").Result()
		others, err2 := s.Sentinels(ctx, "mymaster").Result()
		return err1 == nil && err2 == nil && len(reps) == 1 && len(others) == 2
	}, 15*time.Second, 100*time.Millisecond, "sentinels set up")

	c := goredis.NewFailoverClient(&goredis.FailoverOptions{MasterName: "mymaster", SentinelAddrs: sentinels,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond})
	defer c.Close()
	limit := limiter.Limit{Requests: 10, Window: 500 * time.Millisecond}
	rec := &grants.Recorder{}
	l, err := redislimiter.New(c, "q", limit, redislimiter.WithObserver(rec))
	require.NoError(t, err)

	rctx, cancel := context.WithCancel(ctx)
	wait := grants.Drive(rctx, 8, func(ctx context.Context) error { return l.Acquire(ctx, 1) })
	time.Sleep(time.Second)
	master.Kill()
	killed := time.Now()
	require.Eventually(t, func() bool {
		addr, err := s.GetMasterAddrByName(ctx, "mymaster").Result()
		return err == nil && len(addr) == 2 && addr[1] == fmt.Sprint(replica.Port)
	}, 20*time.Second, 50*time.Millisecond, "the replica is promoted")
	promoted := time.Since(killed)
	before := rec.Len()
	time.Sleep(1500 * time.Millisecond)
	cancel()
	failures := wait()

	record := rec.Grants()
	f := grants.Measure(record, limit.Requests, limit.Window)
	after := len(record) - before
	t.Logf("figures: limit %v, 8 goroutines; master killed: promoted after %v, %d failed calls meanwhile; %d grants in the 1.5s after the promotion; busiest window over the run %d (limit %d)",
		limit, promoted.Round(time.Millisecond), failures, after, f.Most, limit.Requests)
	assert.Positive(t, after, "grants continue on the promoted replica")
	assert.LessOrEqual(t, f.Most, limit.Requests, "never more than the limit, across the failover")
}
