// Package redis is the Redis backend of package limiter: one quota shared by
// every process that uses the same key, enforced by a Lua script
// (scripts/lua/window.lua) in one round trip per grant, on the Redis server's
// clock.
//
// In examples and docs this package is imported as redislimiter, since its
// name collides with go-redis's:
//
//	import redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
package redis

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/internal/clock"
	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/scripts/lua"
)

// script runs with EVALSHA and falls back to EVAL on NOSCRIPT, so a
// SCRIPT FLUSH or a restarted server costs one extra round trip, not an error.
var script = goredis.NewScript(lua.Window)

// ErrInvalidConfig is wrapped by New when the client or key is unusable.
var ErrInvalidConfig = errors.New("limiter/redis: invalid config")

// Limiter is a sliding-window limiter whose state lives in Redis. Every
// Limiter on the same key and server shares one quota, first come, first
// served. It is safe for concurrent use. Create one with [New] or
// [NewComposite].
type Limiter struct {
	client   goredis.Scripter
	keys     []string
	tightest limiter.Limit
	limitArg []any // each key's limits as window.lua reads them: count, then requests and window µs
	opts     options
	batch    *coalescer // nil when coalescing is off
	// seen is the latest grant time (µs, server clock) this limiter holds.
	// Sent with every call, it lets window.lua notice a key that lost data.
	seen atomic.Int64
}

var (
	_ limiter.Limiter = (*Limiter)(nil)
	_ limiter.Pauser  = (*Limiter)(nil)
)

// New returns a limiter that enforces limit on the quota stored at key.
//
// client may be any go-redis client that runs scripts: *goredis.Client,
// *goredis.ClusterClient, *goredis.Ring or a failover client. Every process
// that shares key must use the same limit. The window is rounded up to whole
// microseconds, the resolution of the server's clock.
//
// New does no I/O. It fails on a nil client, an empty key or an invalid
// limit (the error matches limiter.ErrInvalidLimit).
func New(client goredis.Scripter, key string, limit limiter.Limit, opts ...Option) (*Limiter, error) {
	return NewComposite(client, []limiter.Quota{{Key: key, Limits: []limiter.Limit{limit}}}, opts...)
}

// NewComposite returns a limiter that grants a request only at a time that
// every quota allows, and records it in all of them in the same script
// call, at one shared time. A quota may carry several limits (say 20/1s and
// 1000/10m on one key).
//
// The keys must hash to one Redis Cluster slot, so give them one hash tag:
// "{descope:project-1}:user-create" and "{descope:project-1}:user-mgmt".
// The check is made on every server, so code that works on one Redis keeps
// working on a Cluster.
func NewComposite(client goredis.Scripter, quotas []limiter.Quota, opts ...Option) (*Limiter, error) {
	if isNil(client) {
		return nil, fmt.Errorf("%w: client is nil, want a go-redis client such as *redis.Client", ErrInvalidConfig)
	}
	if len(quotas) == 0 {
		return nil, fmt.Errorf("%w: no quotas", ErrInvalidConfig)
	}
	l := &Limiter{client: client, tightest: limiter.Tightest(quotas), opts: defaultOptions()}
	seen := map[string]bool{}
	for _, q := range quotas {
		if q.Key == "" {
			return nil, fmt.Errorf("%w: key is empty", ErrInvalidConfig)
		}
		if seen[q.Key] {
			return nil, fmt.Errorf("%w: key %q named twice; give one quota several limits instead", ErrInvalidConfig, q.Key)
		}
		seen[q.Key] = true
		if err := q.Validate(); err != nil {
			return nil, fmt.Errorf("limiter/redis: %w", err)
		}
		if slot, first := Slot(q.Key), Slot(quotas[0].Key); slot != first {
			return nil, fmt.Errorf("%w: keys %q (slot %d) and %q (slot %d) cannot live in one Redis Cluster slot; give them one hash tag, like {descope:<project>}:<name>",
				ErrInvalidConfig, quotas[0].Key, first, q.Key, slot)
		}
		l.keys = append(l.keys, q.Key)
		l.limitArg = append(l.limitArg, len(q.Limits))
		for _, lim := range q.Limits {
			l.limitArg = append(l.limitArg, lim.Requests, micros(lim.Window))
		}
	}
	for _, opt := range opts {
		opt(&l.opts)
	}
	if !l.opts.noCoalescing {
		l.batch = &coalescer{l: l}
	}
	return l, nil
}

func isNil(c goredis.Scripter) bool {
	if c == nil {
		return true
	}
	v := reflect.ValueOf(c)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// micros rounds d up to whole microseconds, so a window is never shortened.
func micros(d time.Duration) int64 {
	return int64((d + time.Microsecond - 1) / time.Microsecond)
}

// Key returns the Redis key that holds the quota.
func (l *Limiter) Key() string { return l.keys[0] }

// Limit returns the limit l enforces; for a composite, the one with the
// fewest requests.
func (l *Limiter) Limit() limiter.Limit { return l.tightest }

// Load loads the script into the server (every master of a cluster), so the
// first grants need no EVAL fallback, and reports whether Redis answers.
// Calling it is optional: a missing script is loaded on first use.
func (l *Limiter) Load(ctx context.Context) error {
	if err := script.Load(ctx, l.client).Err(); err != nil {
		return fmt.Errorf("limiter/redis: load script for key %q: %w", l.keys[0], err)
	}
	return nil
}

// reservation is window.lua's answer to one reserve request.
type reservation struct {
	granted   bool
	wait      time.Duration
	remaining int
	at        int64 // µs on the server's clock
}

// ask is one request for window.lua's reserve.
type ask struct {
	n             int
	maxWait       time.Duration // < 0: any wait
	wantRemaining bool
}

// reserve runs window.lua once for one request.
func (l *Limiter) reserve(ctx context.Context, a ask) (reservation, error) {
	if l.batch != nil {
		return l.batch.reserve(ctx, a)
	}
	rs, err := l.reserveAll(ctx, []ask{a})
	if err != nil {
		return reservation{}, err
	}
	return rs[0], nil
}

// reserveAll runs window.lua once for several requests, served in order.
func (l *Limiter) reserveAll(ctx context.Context, asks []ask) ([]reservation, error) {
	args := make([]any, 0, 3+3*len(asks)+len(l.limitArg))
	args = append(args, "reserve", l.seen.Load(), len(asks))
	for _, a := range asks {
		mw, want := int64(-1), 0
		if a.maxWait >= 0 {
			mw = a.maxWait.Microseconds()
		}
		if a.wantRemaining {
			want = 1
		}
		args = append(args, a.n, mw, want)
	}
	args = append(args, l.limitArg...)
	vals, err := script.Run(ctx, l.client, l.keys, args...).Int64Slice()
	if err != nil {
		return nil, err
	}
	if len(vals) != 4*len(asks) {
		return nil, fmt.Errorf("window.lua answered %d values, want %d", len(vals), 4*len(asks))
	}
	rs := make([]reservation, len(asks))
	for i := range rs {
		v := vals[4*i:]
		rs[i] = reservation{granted: v[0] == 1, wait: time.Duration(v[1]) * time.Microsecond, at: v[2], remaining: int(v[3])}
		if rs[i].granted {
			raise(&l.seen, rs[i].at)
		}
	}
	return rs, nil
}

func raise(v *atomic.Int64, to int64) {
	for cur := v.Load(); to > cur && !v.CompareAndSwap(cur, to); cur = v.Load() {
	}
}

func lower(v *atomic.Int64, to int64) {
	for cur := v.Load(); to < cur && !v.CompareAndSwap(cur, to); cur = v.Load() {
	}
}

// backendError reports a failed script call, preferring the context's error
// when the context is what ended it.
func (l *Limiter) backendError(ctx context.Context, n int, err error) error {
	l.observe(limiter.Event{Kind: limiter.Error, N: n, Err: err})
	if ctx.Err() != nil {
		return fmt.Errorf("%w (redis: %v)", limiter.ContextError(ctx, n), err)
	}
	// The network timeout and the context's deadline can fire together,
	// before ctx.Err() is set: a passed deadline is the context's doing.
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		return fmt.Errorf("limiter: acquire n=%d: %w (redis: %v)", n, context.DeadlineExceeded, err)
	}
	return fmt.Errorf("limiter/redis: key %q: %w", l.keys[0], err)
}

// TryAcquire grants n units if that needs no wait; see [limiter.Limiter].
func (l *Limiter) TryAcquire(ctx context.Context, n int) (limiter.Decision, error) {
	if err := limiter.CheckN(n, l.tightest); err != nil {
		return limiter.Decision{}, err
	}
	if ctx.Err() != nil {
		return limiter.Decision{}, limiter.ContextError(ctx, n)
	}
	r, err := l.reserve(ctx, ask{n: n, maxWait: 0, wantRemaining: true})
	if err != nil {
		return limiter.Decision{}, l.backendError(ctx, n, err)
	}
	d := limiter.Decision{Allowed: r.granted, Remaining: r.remaining}
	if r.granted {
		l.observe(limiter.Event{Kind: limiter.Grant, N: n, At: time.UnixMicro(r.at)})
	} else {
		d.RetryAfter = r.wait
		l.observe(limiter.Event{Kind: limiter.Deny, N: n, Wait: r.wait})
	}
	return d, nil
}

// Acquire blocks until n units are granted; see [limiter.Limiter]. It makes
// one script call to reserve, then sleeps until the reserved time without
// asking Redis again. If ctx ends while it sleeps, it makes one more call to
// give the reservation back. With a [Watcher], a pause that comes to cover
// the reserved time makes it give the reservation back and queue again.
func (l *Limiter) Acquire(ctx context.Context, n int) error {
	if err := limiter.CheckN(n, l.tightest); err != nil {
		return err
	}
	var pauses chan struct{}
	if w := l.opts.watcher; w != nil {
		var stop func()
		pauses, stop = w.watch(l.keys) // before reserving, so no pause is missed
		defer stop()
	}
	waited := time.Duration(0)
	for {
		if ctx.Err() != nil {
			return limiter.ContextError(ctx, n)
		}
		maxWait := limiter.MaxWait(ctx)
		asked := time.Now()
		r, err := l.reserve(ctx, ask{n: n, maxWait: maxWait})
		if err != nil {
			return l.backendError(ctx, n, err)
		}
		if !r.granted {
			l.observe(limiter.Event{Kind: limiter.Deny, N: n, Wait: r.wait})
			return limiter.DeadlineError(n, r.wait)
		}
		grant := limiter.Event{Kind: limiter.Grant, N: n, At: time.UnixMicro(r.at), Wait: waited + r.wait}
		if r.wait <= 0 {
			l.observe(grant)
			return nil
		}
		// The reply left the server at or after now, so sleeping r.wait from
		// here never wakes before the reserved time.
		requeue, ok := clock.SleepUnless(ctx, r.wait, pauses,
			func() <-chan struct{} { return pauses }, // one buffered signal, reused
			func() bool { return l.opts.watcher.pausedPast(l.keys, r.at) })
		if !ok {
			l.cancel(ctx, n, r.at)
			return limiter.ContextError(ctx, n)
		}
		if !requeue {
			l.observe(grant)
			return nil
		}
		l.cancel(ctx, n, r.at)
		waited += time.Since(asked)
	}
}

// cancel gives back n units reserved at at. It runs on a context of its own,
// since the caller's has ended; if it fails, the units stay reserved and only
// delay later callers, they never over-admit.
func (l *Limiter) cancel(ctx context.Context, n int, at int64) {
	cctx, stop := context.WithTimeout(context.WithoutCancel(ctx), l.opts.cancelTimeout)
	defer stop()
	vals, err := script.Run(cctx, l.client, l.keys, "cancel", n, strconv.FormatInt(at, 10)).Int64Slice()
	if err != nil || len(vals) != 2 {
		l.observe(limiter.Event{Kind: limiter.Error, N: n, At: time.UnixMicro(at), Err: err})
		return
	}
	// The key's latest grant now; this limiter holds none later (its other
	// reservations are still in the key), so a given-back reservation is
	// never taken for lost data.
	lower(&l.seen, vals[1])
	l.observe(limiter.Event{Kind: limiter.Cancel, N: n, At: time.UnixMicro(at)})
}

func (l *Limiter) observe(e limiter.Event) {
	if l.opts.observer != nil {
		l.opts.observer.Observe(e)
	}
}
