package fallback_test

import (
	"context"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/internal/grants"
	"github.com/descope-mgmt/ratelimit/internal/redistest"
	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/fallback"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

// A real redis-server killed mid-run: the replica keeps granting within its
// share, and returns to Redis by itself once Redis answers a probe.
func TestFallbackWhileRedisIsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a redis-server")
	}
	srv := redistest.Start(t)
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr, DialTimeout: 100 * time.Millisecond,
		ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	limit := limiter.Limit{Requests: 20, Window: 500 * time.Millisecond}
	share := fallback.Share(limit, 2) // this replica's half
	primary, err := redislimiter.New(c, "q", limit)
	require.NoError(t, err)
	var mu sync.Mutex
	var entered, left time.Time
	local := &grants.Recorder{} // the local share's grants (the primary has no observer)
	l, err := fallback.New(primary, share, fallback.WithCoolDown(300*time.Millisecond),
		fallback.WithObserver(limiter.Observers(local, limiter.ObserverFunc(func(e limiter.Event) {
			mu.Lock()
			defer mu.Unlock()
			switch e.Kind {
			case limiter.EventFallbackEnter:
				entered = time.Now()
			case limiter.EventFallbackLeave:
				left = time.Now()
			}
		}))))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	wait := grants.Drive(ctx, 8, func(ctx context.Context) error { return l.Acquire(ctx, 1) })
	time.Sleep(700 * time.Millisecond)
	srv.Kill()
	killed := time.Now()
	time.Sleep(1500 * time.Millisecond)
	srv.Restart()
	restarted := time.Now()
	time.Sleep(1200 * time.Millisecond)
	cancel()
	wait() // failures are expected: the calls that find Redis gone before the breaker opens

	mu.Lock()
	defer mu.Unlock()
	f := grants.Measure(local.Grants(), share.Requests, share.Window)
	recovery := left.Sub(restarted)
	t.Logf("figures: limit %v, share %v; Redis down %v: fallback entered %v after the kill, %d grants from the share (busiest window %d, share %d); back on Redis %v after the restart (cool-down 300ms)",
		limit, share, restarted.Sub(killed).Round(time.Millisecond), entered.Sub(killed).Round(time.Millisecond), f.Grants, f.Most, share.Requests, recovery.Round(time.Millisecond))
	require.False(t, entered.IsZero(), "fallback was entered")
	assert.Less(t, entered.Sub(killed), time.Second, "quickly")
	assert.Positive(t, f.Grants, "the replica kept working")
	assert.LessOrEqual(t, f.Most, share.Requests, "within its share")
	require.False(t, left.IsZero(), "back on Redis")
	assert.Less(t, recovery, time.Second, "within about a cool-down of Redis answering")
	assert.False(t, l.InFallback())
}
