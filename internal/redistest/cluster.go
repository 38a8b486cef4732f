package redistest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Cluster starts a Redis Cluster of the given number of masters (no
// replicas), each a redis-server on a free loopback port, with the 16384
// slots split evenly. It returns the nodes once every node reports the
// cluster ok; they stop when t ends.
func Cluster(t testing.TB, masters int) []*Server {
	t.Helper()
	nodes := make([]*Server, masters)
	for i := range nodes {
		nodes[i] = Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
	}
	ctx := context.Background()
	for i, n := range nodes {
		c := goredis.NewClient(&goredis.Options{Addr: n.Addr})
		lo, hi := i*16384/masters, (i+1)*16384/masters-1
		err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err()
		if err == nil && i > 0 {
			err = c.ClusterMeet(ctx, "127.0.0.1", fmt.Sprint(nodes[0].Port)).Err()
		}
		c.Close()
		if err != nil {
			t.Fatalf("redistest: set up cluster node %s: %v", n.Addr, err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range nodes {
		c := goredis.NewClient(&goredis.Options{Addr: n.Addr})
		for {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", masters)) {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				t.Fatalf("redistest: cluster not ok after 20s: %v\n%s", err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		c.Close()
	}
	return nodes
}

// ClusterClient returns a cluster client for nodes, closed when t ends. It
// waits until the client sees every slot covered.
func ClusterClient(t testing.TB, nodes []*Server) *goredis.ClusterClient {
	t.Helper()
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.Addr
	}
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs, PoolSize: 64})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error { return m.Ping(ctx).Err() })
		shards, serr := c.ClusterShards(ctx).Result()
		if err == nil && serr == nil && len(shards) == len(nodes) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: cluster client not ready: %v %v", err, serr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
