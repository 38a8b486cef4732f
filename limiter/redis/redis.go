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
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"reflect"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/internal/option"
	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/internal/acquire"
)

// Limiter is a sliding-window limiter whose state lives in Redis. Every
// Limiter on the same key and server shares one quota, first come, first
// served. It is safe for concurrent use. Create one with [New] or
// [NewComposite].
type Limiter struct {
	script   *runner
	quotas   []limiter.Quota
	keys     []string
	limitArg [][]any // each key's limits as window.lua reads them: count, then requests and window µs
	opts     options
	batch    *coalescer
	loop     acquire.Loop
	// seen is the latest grant time (µs, server clock) this limiter holds;
	// known, per key, the latest reservation the key held at its last
	// answer. Sent with every call, they let window.lua notice a key that
	// lost data, and fill what it held.
	seen       atomic.Int64
	known      []atomic.Int64
	lastDiffer atomic.Int64 // when limitsDiffer last reported, ns
}

var (
	_ limiter.Limiter = (*Limiter)(nil)
	_ limiter.Pauser  = (*Limiter)(nil)
)

// New returns a limiter that enforces limit on the quota stored at key.
//
// client may be any go-redis client that runs scripts (a Scripter is all it
// needs): *goredis.Client, *goredis.ClusterClient, *goredis.Ring or a
// failover client. Every process that shares key must use the same limit.
// The window is rounded up to whole microseconds, the resolution of the
// server's clock.
//
// New does no I/O. It fails with an error matching limiter.ErrInvalidLimit
// for an invalid limit, and limiter.ErrInvalidConfig for a nil client, an
// empty key or a bad option.
func New(client goredis.Scripter, key string, limit limiter.Limit, opts ...Option) (*Limiter, error) {
	return NewComposite(client, []limiter.Quota{{Key: key, Limits: []limiter.Limit{limit}}}, opts...)
}

// NewComposite returns a limiter that grants a request only at a time that
// every quota allows, and records it in all of them in the same script
// call, at one shared time. A quota may carry several limits (say 20/1s and
// 1000/10m on one key).
//
// The keys must hash to one Redis Cluster slot, so give them one hash tag:
// "{descope:project-1}:user-create" and "{descope:project-1}:user-mgmt"
// ([KeyFor] builds such keys). The check is made on every server, so code
// that works on one Redis keeps working on a Cluster.
func NewComposite(client goredis.Scripter, quotas []limiter.Quota, opts ...Option) (*Limiter, error) {
	if isNil(client) {
		return nil, fmt.Errorf("%w: client is nil, want a go-redis client such as *redis.Client", limiter.ErrInvalidConfig)
	}
	if len(quotas) == 0 {
		return nil, fmt.Errorf("%w: no quotas", limiter.ErrInvalidConfig)
	}
	l := &Limiter{script: newRunner(client), quotas: acquire.CloneQuotas(quotas), opts: defaultOptions()}
	seen := map[string]bool{}
	for _, q := range quotas {
		if q.Key == "" {
			return nil, fmt.Errorf("%w: key is empty", limiter.ErrInvalidConfig)
		}
		if seen[q.Key] {
			return nil, fmt.Errorf("%w: key %q named twice; give one quota several limits instead", limiter.ErrInvalidConfig, q.Key)
		}
		seen[q.Key] = true
		if err := q.Validate(); err != nil {
			return nil, err
		}
		if slot, first := Slot(q.Key), Slot(quotas[0].Key); slot != first {
			return nil, fmt.Errorf("%w: keys %q (slot %d) and %q (slot %d) cannot live in one Redis Cluster slot; give them one hash tag, like {descope:<project>}:<name>",
				limiter.ErrInvalidConfig, quotas[0].Key, first, q.Key, slot)
		}
		l.keys = append(l.keys, q.Key)
	}
	if err := option.Apply(&l.opts, opts); err != nil {
		return nil, err
	}
	enforced, err := acquire.Widen(quotas, l.opts.margin)
	if err != nil {
		return nil, err
	}
	for _, q := range enforced {
		arg := []any{len(q.Limits)}
		for _, lim := range q.Limits {
			arg = append(arg, lim.Requests, micros(lim.Window))
		}
		l.limitArg = append(l.limitArg, arg)
	}
	l.known = make([]atomic.Int64, len(l.keys))
	l.batch = &coalescer{l: l, max: maxBatch}
	if l.opts.noCoalescing {
		l.batch.max = 1
	}
	l.loop = acquire.Loop{Backend: storage{l}, Tightest: acquire.Tightest(enforced), Observer: l.opts.observer}
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

// Quotas returns the quotas the limiter enforces: every key, with its
// limits, as it was given them.
func (l *Limiter) Quotas() []limiter.Quota { return acquire.CloneQuotas(l.quotas) }

// Keys returns the Redis key of every quota, in the order given.
func (l *Limiter) Keys() []string { return slices.Clone(l.keys) }

// Load loads window.lua into the server (every master of a cluster): as a
// function library where the server has functions and the client may load
// them, else as a script. The first grants then need no extra round trip
// to load it, and Load reports whether Redis answers. Calling it is
// optional: what is missing is loaded on first use.
func (l *Limiter) Load(ctx context.Context) error {
	if err := l.script.load(ctx); err != nil {
		return l.errorf("load script: %w", err)
	}
	return nil
}

// errorf makes an error of this limiter's: one prefix, its first key, and
// the cause kept matchable.
func (l *Limiter) errorf(format string, args ...any) error {
	return scriptError(fmt.Errorf("limiter/redis: key %q: "+format, append([]any{l.keys[0]}, args...)...))
}

// limitsDiffer reports, at most once a window, that another process wrote
// other limits in one of the keys (see limiter.EventLimitsDiffer).
func (l *Limiter) limitsDiffer() {
	now := time.Now().UnixNano()
	last := l.lastDiffer.Load()
	if now-last < int64(l.loop.Tightest.Window) || !l.lastDiffer.CompareAndSwap(last, now) {
		return
	}
	l.loop.Observe(limiter.Event{Kind: limiter.EventLimitsDiffer, Key: l.keys[0], Limit: l.loop.Tightest})
}

// TryAcquire grants n units if that needs no wait; see [limiter.Limiter].
func (l *Limiter) TryAcquire(ctx context.Context, n int) (limiter.Decision, error) {
	return l.loop.TryAcquire(ctx, n)
}

// Acquire blocks until n units are granted; see [limiter.Limiter]. It makes
// one script call to reserve, then sleeps until the reserved time without
// asking Redis again. If ctx ends while it sleeps, it makes one more call to
// give the reservation back. With a [Watcher], a pause that comes to cover
// the reserved time makes it give the reservation back and queue again.
func (l *Limiter) Acquire(ctx context.Context, n int) error {
	return l.loop.Acquire(ctx, n)
}

// reservation is window.lua's answer to one reserve request.
type reservation struct {
	granted   bool
	full      bool // refused: the queue is full
	wait      time.Duration
	remaining int
	at        int64 // µs on the server's clock
}

// ask is one request for window.lua's reserve.
type ask struct {
	id            string // 8 random bytes: a retried call is recognised by it
	n             int
	maxWait       time.Duration // < 0: any wait
	wantRemaining bool
}

// newID returns 8 random bytes naming one request.
func newID() string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], rand.Uint64())
	return string(b[:])
}

// limits returns the limits of every key as reserve reads them, each with
// the end of a pause this process heard of on it, so a pause outlives the
// loss of the key that held it, and the latest reservation it knows the key
// held, so a replica that calls first after the key is lost fills the
// window the others' reservations are in.
func (l *Limiter) limits(args []any) []any {
	for i, arg := range l.limitArg {
		args = append(args, arg...)
		if l.opts.watcher != nil {
			args = append(args, l.opts.watcher.pauseEnd(l.keys[i]))
		} else {
			args = append(args, 0)
		}
		args = append(args, l.known[i].Load())
	}
	return args
}

// reserveAll runs window.lua once for several requests, served in order.
// If the call fails in a way that may have run the script (a timeout, a
// broken connection), what it may have reserved is given back by id, in
// the background.
func (l *Limiter) reserveAll(ctx context.Context, asks []ask) ([]reservation, error) {
	args := make([]any, 0, 3+4*len(asks)+4*len(l.limitArg))
	args = append(args, "reserve", l.seen.Load(), len(asks))
	for _, a := range asks {
		mw, want := int64(-1), 0
		if a.maxWait >= 0 {
			mw = a.maxWait.Microseconds()
		}
		if a.wantRemaining {
			want = 1
		}
		args = append(args, a.id, a.n, mw, want)
	}
	args = l.limits(args)
	vals, err := l.script.run(ctx, l.keys, args...).Int64Slice()
	if err != nil {
		if mayHaveRun(err) {
			go l.forget(ctx, asks)
		}
		return nil, l.errorf("reserve: %w", err)
	}
	rs, rest, err := decodeAnswers(vals, len(asks))
	if err == nil && len(rest) != 1+len(l.keys) {
		err = fmt.Errorf("window.lua answered %d values after the answers, want %d", len(rest), 1+len(l.keys))
	}
	if err != nil {
		return nil, l.errorf("reserve: %w", err)
	}
	if rest[0] == 1 {
		l.limitsDiffer()
	}
	for i, latest := range rest[1:] {
		raise(&l.known[i], latest) // never lower: after a loss, filling late only delays
	}
	for _, r := range rs {
		if r.granted {
			raise(&l.seen, r.at)
		}
	}
	return rs, nil
}

// decodeAnswers reads window.lua's answers to k requests, run-length
// encoded as segments of {count, granted, wait µs, at µs, remaining,
// step} (the j-th answer of a segment, from 0, has remaining - j*step), and
// returns them with the values that follow.
func decodeAnswers(vals []int64, k int) (rs []reservation, rest []int64, err error) {
	rs = make([]reservation, 0, k)
	for len(rs) < k {
		if len(vals) < 6 || vals[0] < 1 || vals[0] > int64(k-len(rs)) {
			return nil, nil, fmt.Errorf("window.lua answered %d of %d requests, then %v", len(rs), k, vals[:min(len(vals), 6)])
		}
		count, granted, wait, at, remaining, step := vals[0], vals[1], vals[2], vals[3], vals[4], vals[5]
		for j := range count {
			rs = append(rs, reservation{granted: granted == 1, full: granted == -1, wait: time.Duration(wait) * time.Microsecond, at: at, remaining: int(remaining - j*step)})
		}
		vals = vals[6:]
	}
	return rs, vals, nil
}

func raise(v *atomic.Int64, to int64) {
	for cur := v.Load(); to > cur && !v.CompareAndSwap(cur, to); cur = v.Load() {
	}
}

func lower(v *atomic.Int64, to int64) {
	for cur := v.Load(); to < cur && !v.CompareAndSwap(cur, to); cur = v.Load() {
	}
}

// mayHaveRun reports whether a failed script call may still have run: any
// failure but an error reply from Redis (which window.lua gives before it
// writes anything).
func mayHaveRun(err error) bool {
	var reply goredis.Error
	if errors.As(err, &reply) {
		return false
	}
	var op *net.OpError
	return !errors.As(err, &op) || op.Op != "dial" // never connected: never ran
}

// forgetFor bounds how long a failed call's give-backs keep trying: as
// long as the key is sure to live after recording a request's id (20s; it
// keeps the ids of its last 64 grants).
const forgetFor = 20 * time.Second

// forget gives back whatever the requests of a failed call were granted, by
// their ids. A give-back by id runs once however often it is sent, so each
// is tried again (50ms, doubling to 1s, each try bounded by the cancel
// timeout) until Redis answers or forgetFor passes. A request the script
// never ran, or that was refused, is not found and costs nothing. If Redis
// stays out of reach, the units stay reserved: they delay later callers,
// never over-admit.
func (l *Limiter) forget(ctx context.Context, asks []ask) {
	until := time.Now().Add(forgetFor)
	for _, a := range asks {
		for pause := 50 * time.Millisecond; ; pause = min(2*pause, time.Second) {
			err := l.cancel(ctx, a.id, a.n, -1)
			if err == nil || errors.Is(err, goredis.ErrClosed) {
				break
			}
			if time.Now().Add(pause).After(until) {
				return
			}
			time.Sleep(pause)
		}
	}
}

// cancel gives back the n units that request id was granted at at. It runs
// on a context of its own, since the caller's has ended; if it fails, the
// units stay reserved and only delay later callers, they never over-admit.
// Run twice, it gives back once.
func (l *Limiter) cancel(ctx context.Context, id string, n int, at int64) error {
	cctx, stop := context.WithTimeout(context.WithoutCancel(ctx), l.opts.cancelTimeout)
	defer stop()
	vals, err := l.script.run(cctx, l.keys, "cancel", id, n, strconv.FormatInt(at, 10)).Int64Slice()
	if err != nil {
		return l.errorf("give back n=%d at %d: %w", n, at, err)
	}
	if len(vals) != 3 {
		return l.errorf("give back: window.lua answered %d values, want 3", len(vals))
	}
	// The key's latest grant now; this limiter holds none later (its other
	// reservations are still in the key), so a given-back reservation is
	// never taken for lost data. A key that is gone (-1) says nothing: the
	// grants this limiter holds must still count.
	if vals[1] >= 0 {
		lower(&l.seen, vals[1])
	}
	return nil
}

// storage is the limiter's side of the acquire loop: window.lua, the
// coalescer and the pause watcher.
type storage struct{ l *Limiter }

func (b storage) Reserve(ctx context.Context, n int, maxWait time.Duration, wantRemaining bool) (acquire.Reservation, error) {
	id := newID()
	r, err := b.l.batch.reserve(ctx, ask{id: id, n: n, maxWait: maxWait, wantRemaining: wantRemaining})
	if err != nil {
		return acquire.Reservation{}, err
	}
	if r.full {
		return acquire.Reservation{}, b.l.errorf("reserve n=%d: %w", n, limiter.ErrQueueFull)
	}
	return acquire.Reservation{Granted: r.granted, Wait: r.wait, At: time.UnixMicro(r.at), Remaining: r.remaining, Token: r.at, ID: id}, nil
}

func (b storage) Cancel(ctx context.Context, n int, r acquire.Reservation) error {
	return b.l.cancel(ctx, r.ID, n, r.Token)
}

func (b storage) Pauses() <-chan struct{} {
	if w := b.l.opts.watcher; w != nil {
		return w.pauses()
	}
	return nil
}

func (b storage) Covered(r acquire.Reservation) bool {
	w := b.l.opts.watcher
	return w != nil && w.pausedPast(b.l.keys, r.Token)
}
