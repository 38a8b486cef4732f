package redis_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// The replica processes: the test binary run again with these variables set.
const (
	envReplica = "RATELIMIT_TEST_REPLICA" // replica number
	envAddr    = "RATELIMIT_TEST_ADDR"
	envKey     = "RATELIMIT_TEST_KEY"
	envLimit   = "RATELIMIT_TEST_LIMIT"
	envWorkers = "RATELIMIT_TEST_WORKERS"
	envStart   = "RATELIMIT_TEST_START" // unix ns: all replicas begin together
	envEnd     = "RATELIMIT_TEST_END"   // unix ns: and stop together
)

// TestReplicaProcess is one replica when run by TestReplicasShareOneQuota;
// on its own it does nothing.
func TestReplicaProcess(t *testing.T) {
	if os.Getenv(envReplica) == "" {
		t.Skip("run as a child of TestReplicasShareOneQuota")
	}
	limit, err := limiter.ParseLimit(os.Getenv(envLimit))
	require.NoError(t, err)
	workers, err := strconv.Atoi(os.Getenv(envWorkers))
	require.NoError(t, err)
	start, end := unixEnv(t, envStart), unixEnv(t, envEnd)

	c := goredis.NewClient(&goredis.Options{Addr: os.Getenv(envAddr), PoolSize: workers + 2})
	defer c.Close()
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	var wg sync.WaitGroup
	for w := range workers {
		l, err := redislimiter.New(c, os.Getenv(envKey), limit,
			redislimiter.WithObserver(limiter.ObserverFunc(func(e limiter.Event) {
				mu.Lock()
				defer mu.Unlock()
				switch e.Kind {
				case limiter.EventGrant:
					fmt.Fprintf(out, "grant %d %d\n", w, e.At.UnixMicro())
				case limiter.EventDeny: // the last call of each goroutine: its grant would pass the end
					fmt.Fprintf(out, "deny %d\n", w)
				}
			})))
		require.NoError(t, err)
		require.NoError(t, l.Load(ctx))
		wg.Go(func() {
			time.Sleep(time.Until(start))
			for l.Acquire(ctx, 1) == nil {
			}
		})
	}
	wg.Wait()
	require.NoError(t, out.Flush())
}

func unixEnv(t *testing.T, name string) time.Time {
	ns, err := strconv.ParseInt(os.Getenv(name), 10, 64)
	require.NoError(t, err, name)
	return time.Unix(0, ns)
}

// TestReplicasShareOneQuota runs several OS processes, each with several
// goroutines acquiring in a loop from one quota on a real redis-server, and
// checks the promise: never more than the limit in any window, the quota
// used in full while demand exceeds it, one script call per grant, and fair
// shares.
func TestReplicasShareOneQuota(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes for a few seconds")
	}
	addr := redistest.Addr(t)
	const replicas, workers = 4, 8
	// Fewer units per window than goroutines, so demand exceeds supply at
	// every instant: a queue deeper than the limit, served first come, first
	// served, must give every goroutine its turn.
	limit := limiter.Limit{Requests: 20, Window: 250 * time.Millisecond}
	key := redistest.Key(t)
	c := newClient(t, addr)
	callsBefore := scriptCalls(t, c)

	start := time.Now().Add(500 * time.Millisecond) // time for the processes to start
	end := start.Add(4*time.Second + 500*time.Millisecond)
	outs := make([]bytes.Buffer, replicas)
	cmds := make([]*exec.Cmd, replicas)
	for r := range replicas {
		cmd := exec.Command(os.Args[0], "-test.run=^TestReplicaProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			envReplica+"="+strconv.Itoa(r), envAddr+"="+addr, envKey+"="+key, envLimit+"="+limit.String(),
			envWorkers+"="+strconv.Itoa(workers),
			envStart+"="+strconv.FormatInt(start.UnixNano(), 10), envEnd+"="+strconv.FormatInt(end.UnixNano(), 10))
		cmd.Stdout, cmd.Stderr = &outs[r], &outs[r]
		require.NoError(t, cmd.Start())
		cmds[r] = cmd
	}
	var record []grants.Grant
	denials := 0
	for r, cmd := range cmds {
		require.NoError(t, cmd.Wait(), "replica %d:\n%s", r, outs[r].String())
		for line := range strings.Lines(outs[r].String()) {
			var worker int
			var at int64
			if n, _ := fmt.Sscanf(line, "grant %d %d", &worker, &at); n == 2 {
				record = append(record, grants.Grant{Replica: r, Worker: worker, At: time.UnixMicro(at)})
			}
			if strings.HasPrefix(line, "deny ") {
				denials++
			}
		}
	}
	calls := scriptCalls(t, c) - callsBefore
	require.NotEmpty(t, record)

	f := grants.Measure(record, limit.Requests, limit.Window)
	// Shares are counted from the second window: in the first, free units go
	// to whoever asks first and fastest, which is first come, first served
	// before demand exceeds supply.
	perWorker, perReplica := grants.Shares(record, replicas, workers, record[0].At.Add(limit.Window))
	all, _ := grants.Shares(record, replicas, workers, record[0].At)
	// Each goroutine's last call is refused (its grant would pass the end of
	// the run): a fixed cost of stopping, reported apart from the grants.
	perGrant := float64(calls-denials) / float64(f.Grants)
	t.Logf("figures: %d replicas x %d goroutines, limit %v, %.1fs: %d grants; most in any window %d (limit %d); utilisation %.1f%%; "+
		"script calls %d = %.3f per grant + %d final refusals at the deadline; from the second window, shares per goroutine %d..%d, per replica %v; whole run, per goroutine %d..%d",
		replicas, workers, limit, f.Span.Seconds(), f.Grants, f.Most, limit.Requests, 100*f.Utilisation,
		calls, perGrant, denials, slices.Min(perWorker), slices.Max(perWorker), perReplica, slices.Min(all), slices.Max(all))

	assert.LessOrEqual(t, f.Most, limit.Requests, "grants in one window")
	assert.GreaterOrEqual(t, f.Utilisation, 0.97, "utilisation while demand exceeds supply")
	assert.LessOrEqual(t, denials, replicas*workers, "only each goroutine's last call may be refused")
	if redistest.Private() { // a shared server's counters include others' calls
		assert.LessOrEqual(t, perGrant, 1.05, "script calls per grant")
	}
	// The queue is served in order, so a goroutine's share is off the mean
	// by at most one turn at each end of the measured span, plus one when
	// a burst of goroutines that woke together re-queues in another order.
	assert.LessOrEqual(t, grants.Spread(perWorker), 3, "goroutine shares")
	assert.LessOrEqual(t, grants.Spread(perReplica), 2*workers, "replica shares: at most two grants per waiting goroutine")
}

// scriptCalls returns how many EVAL, EVALSHA and FCALL calls the server has
// run.
func scriptCalls(t *testing.T, c *goredis.Client) int {
	return commandCalls(t, c, "eval") + commandCalls(t, c, "evalsha") + commandCalls(t, c, "fcall")
}

// commandCalls returns how many calls of the command the server has run
// (INFO commandstats). It may run in a cleanup, once t.Context has ended.
func commandCalls(t *testing.T, c *goredis.Client, name string) int {
	info, err := c.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	for line := range strings.Lines(info) {
		if rest, ok := strings.CutPrefix(line, "cmdstat_"+name+":"); ok {
			var n int
			_, _ = fmt.Sscanf(rest, "calls=%d", &n)
			return n
		}
	}
	return 0
}
