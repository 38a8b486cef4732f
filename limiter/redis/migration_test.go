package redis_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
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

// A slot moved to another master while grants flow: go-redis follows the
// ASK and MOVED redirections, the quota's key moves whole (MIGRATE), no
// window goes over the limit, and grants continue from the new owner.
func TestClusterSlotMigratedWhileGranting(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-master cluster")
	}
	nodes := redistest.Cluster(t, 3)
	c := redistest.ClusterClient(t, nodes)
	ctx := t.Context()
	key := "{migrating}:quota"
	slot := redislimiter.Slot(key)
	limit := limiter.Limit{Requests: 10, Window: 500 * time.Millisecond}
	rec := &grants.Recorder{}
	l, err := redislimiter.New(c, key, limit, redislimiter.WithObserver(rec))
	require.NoError(t, err)

	rctx, cancel := context.WithCancel(ctx)
	wait := grants.Drive(rctx, 8, func(ctx context.Context) error {
		err := l.Acquire(ctx, 1)
		if err != nil && ctx.Err() == nil {
			t.Logf("during migration: %v", err)
		}
		return err
	})
	time.Sleep(time.Second)
	from, to := migrateSlot(t, nodes, slot, key)
	atMove := rec.Len()
	time.Sleep(1500 * time.Millisecond)
	cancel()
	failures := wait()

	owner := goredis.NewClient(&goredis.Options{Addr: to.Addr})
	defer owner.Close()
	exists, err := owner.Exists(ctx, key).Result()
	require.NoError(t, err)
	record := rec.Grants()
	f := grants.Measure(record, limit.Requests, limit.Window)
	t.Logf("figures: slot %d moved from %s to %s while 8 goroutines acquired %v: %d failed calls; %d grants after the move; busiest window %d (limit %d)",
		slot, from.Addr, to.Addr, limit, failures, len(record)-atMove, f.Most, limit.Requests)
	assert.EqualValues(t, 1, exists, "the quota's key lives on the new owner")
	assert.Positive(t, len(record)-atMove, "grants continue after the move")
	assert.LessOrEqual(t, f.Most, limit.Requests, "no window over the limit across the move")
	assert.Zero(t, failures, "go-redis follows the redirections")
}

// migrateSlot moves slot, with key in it, from its owner to another master,
// the way redis-cli --cluster reshard does.
func migrateSlot(t *testing.T, nodes []*redistest.Server, slot int, key string) (from, to *redistest.Server) {
	ctx := t.Context()
	clients := make([]*goredis.Client, len(nodes))
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		clients[i] = goredis.NewClient(&goredis.Options{Addr: n.Addr})
		defer clients[i].Close()
		id, err := clients[i].Do(ctx, "CLUSTER", "MYID").Text()
		require.NoError(t, err)
		ids[i] = id
	}
	src := -1
	for i, c := range clients {
		if n, err := c.ClusterCountKeysInSlot(ctx, slot).Result(); err == nil && n > 0 {
			src = i
		}
	}
	require.GreaterOrEqual(t, src, 0, "the key exists on its owner")
	dst := (src + 1) % len(nodes)
	require.NoError(t, clients[dst].Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", ids[src]).Err())
	require.NoError(t, clients[src].Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", ids[dst]).Err())
	time.Sleep(200 * time.Millisecond) // grants flow while the slot is half-moved
	host, port, _ := strings.Cut(nodes[dst].Addr, ":")
	p, _ := strconv.Atoi(port)
	require.NoError(t, clients[src].Migrate(ctx, host, fmt.Sprint(p), key, 0, 5*time.Second).Err())
	for _, c := range clients {
		require.NoError(t, c.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", ids[dst]).Err())
	}
	return nodes[src], nodes[dst]
}
