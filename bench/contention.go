package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/internal/clock"
	"github.com/descope-mgmt/ratelimit/internal/grants"
	"github.com/descope-mgmt/ratelimit/internal/redishook"
	"github.com/descope-mgmt/ratelimit/limiter"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

const contenders = 64

var shared = limiter.Limit{Requests: 200, Window: time.Second}

// scenario is one way of sharing the quota: acquire is called in a loop by
// each goroutine and returns the grant time, or ok=false at the end.
type scenario struct {
	name        string
	serverClock bool // grant times are the server's; else the client's when the reply came
	setup       func(c *goredis.Client, key string) func(ctx context.Context, worker int) (at time.Time, ok bool)
}

func runContention(ctx context.Context, addr string) []target {
	scenarios := []scenario{
		{"ratelimit Acquire", true, func(c *goredis.Client, key string) func(context.Context, int) (time.Time, bool) {
			var at sync.Map // worker -> grant time, from the observer
			return func(ctx context.Context, w int) (time.Time, bool) {
				l, _ := redislimiter.New(c, key, shared, redislimiter.WithObserver(limiter.ObserverFunc(func(e limiter.Event) {
					if e.Kind == limiter.EventGrant {
						at.Store(w, e.At)
					}
				})))
				if l.Acquire(ctx, 1) != nil {
					return time.Time{}, false
				}
				t, _ := at.Load(w)
				return t.(time.Time), true
			}
		}},
		peerScenario("redis_rate Allow, burst = rate (200)", 200),
		peerScenario("redis_rate Allow, burst = 1", 1),
		{"sorted-set log, sleep on denial", false, func(c *goredis.Client, key string) func(context.Context, int) (time.Time, bool) {
			var seq atomic.Int64
			z := zsetLimiter{c: c, key: key, limit: shared.Requests, window: shared.Window, seq: func() int64 { return seq.Add(1) }}
			return func(ctx context.Context, _ int) (time.Time, bool) {
				for {
					ok, wait, err := z.allow(ctx)
					if err != nil {
						return time.Time{}, false
					}
					if ok {
						return time.Now(), true
					}
					if clock.Sleep(ctx, wait) != nil {
						return time.Time{}, false
					}
				}
			}
		}},
	}
	fmt.Printf("## Contention: %d goroutines sharing %v for %v\n\n", contenders, shared, *contention)
	fmt.Println("| limiter | Redis calls per grant | most grants in any 1s window | utilisation | shares per goroutine (from the 2nd window) |")
	fmt.Println("| --- | --- | --- | --- | --- |")
	var ts []target
	for _, s := range scenarios {
		calls, f, lo, hi := contend(ctx, addr, s)
		clock := ""
		if !s.serverClock {
			clock = " (client clock)"
		}
		fmt.Printf("| %s | %.3f | %d%s | %.1f%% | %d..%d |\n", s.name, calls, f.Most, clock, 100*f.Utilisation, lo, hi)
		if s.name == "ratelimit Acquire" {
			ts = append(ts,
				target{"contention: Redis calls per grant (want <= 1.05)", fmt.Sprintf("%.3f", calls), calls <= 1.05, ""},
				target{"contention: most grants in any window (want <= 200)", fmt.Sprint(f.Most), f.Most <= shared.Requests, ""},
				target{"contention: utilisation (want >= 99%)", fmt.Sprintf("%.1f%%", 100*f.Utilisation), f.Utilisation >= 0.99, ""})
		}
	}
	fmt.Println()
	return ts
}

func peerScenario(name string, burst int) scenario {
	return scenario{name, false, func(c *goredis.Client, key string) func(context.Context, int) (time.Time, bool) {
		peer := redis_rate.NewLimiter(c)
		lim := redis_rate.Limit{Rate: shared.Requests, Burst: burst, Period: shared.Window}
		return func(ctx context.Context, _ int) (time.Time, bool) {
			for {
				r, err := peer.Allow(ctx, key, lim)
				if err != nil {
					return time.Time{}, false
				}
				if r.Allowed > 0 {
					return time.Now(), true
				}
				if clock.Sleep(ctx, r.RetryAfter) != nil {
					return time.Time{}, false
				}
			}
		}
	}}
}

func contend(ctx context.Context, addr string, s scenario) (callsPerGrant float64, f grants.Figures, minShare, maxShare int) {
	c := goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: 128})
	defer c.Close()
	// Open the pool's connections first: their set-up commands are not the
	// limiter's calls.
	var warm sync.WaitGroup
	for range contenders {
		warm.Go(func() { _ = c.Ping(ctx).Err() })
	}
	warm.Wait()
	counter := &redishook.Counter{} // every command
	c.AddHook(counter)
	acquire := s.setup(c, fmt.Sprintf("bench:contend:%d", time.Now().UnixNano()))
	// Every contender stops asking at the stop time (no deadline refuses
	// anyone's last call), and the grants it already holds still count.
	stop := time.Now().Add(*contention)
	var mu sync.Mutex
	var record []grants.Grant
	var wg sync.WaitGroup
	for w := range contenders {
		wg.Go(func() {
			for time.Now().Before(stop) {
				at, ok := acquire(ctx, w)
				if !ok {
					return
				}
				mu.Lock()
				record = append(record, grants.Grant{Worker: w, At: at})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(record) == 0 {
		return 0, grants.Figures{}, 0, 0
	}
	f = grants.Measure(record, shared.Requests, shared.Window)
	// Utilisation while demand exceeded supply: the grants up to the stop.
	var during []grants.Grant
	for _, g := range record {
		if !g.At.After(stop) {
			during = append(during, g)
		}
	}
	f.Utilisation = grants.Measure(during, shared.Requests, shared.Window).Utilisation
	perWorker, _ := grants.Shares(record, 1, contenders, record[0].At.Add(shared.Window))
	lo, hi := perWorker[0], perWorker[0]
	for _, n := range perWorker {
		lo, hi = min(lo, n), max(hi, n)
	}
	return float64(counter.Load()) / float64(len(record)), f, lo, hi
}
