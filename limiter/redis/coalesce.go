package redis

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/descope-mgmt/ratelimit/limiter/internal/acquire"
)

// maxBatch bounds how many requests one script call carries.
const maxBatch = 256

// coalescer sends the Acquire and TryAcquire requests of one Limiter that
// arrive while a script call is in flight as the next call, all at once
// (group commit): one round trip grants many goroutines, so one process can
// be granted more units per second than Redis can serve round trips. The
// script serves a batch in arrival order, as if each request were its own
// call, so first come, first served still holds.
//
// The first request to arrive leads: it starts a goroutine that sends the
// batch, delivers the answers, and hands the lead to the oldest request
// that arrived meanwhile. The leader waits for its answer like any other
// request, so it too leaves at its own deadline while the call is in
// flight (go-redis may hold a call until its ReadTimeout); what it was
// granted after it left is given back.
//
// With coalescing off, each request is a call of its own, sent at once from
// its own goroutine, and leaves the same way.
type coalescer struct {
	l       *Limiter
	max     int // requests per batch
	mu      sync.Mutex
	pending []*queued
	busy    bool // a batch is being sent, or is about to be
}

type queued struct {
	ask       ask
	since     time.Time // its max wait shrinks by the time it spent queued
	deadline  time.Time // its caller's deadline; zero if none
	done      chan outcome
	abandoned bool // its caller left while it was in flight (under mu)
}

type outcome struct {
	r    reservation
	err  error
	lead bool // send the next batch
}

func (c *coalescer) reserve(ctx context.Context, a ask) (reservation, error) {
	q := &queued{ask: a, since: time.Now(), done: make(chan outcome, 1)}
	q.deadline, _ = ctx.Deadline()
	lead := false
	if c.max == 1 {
		// Coalescing off: each request is its own call, all at once.
		runFor(ctx, func(ctx context.Context) { c.call(ctx, []*queued{q}, false) })
	} else {
		c.mu.Lock()
		c.pending = append(c.pending, q)
		lead = !c.busy
		c.busy = true
		c.mu.Unlock()
	}
	for {
		if lead {
			runFor(ctx, c.send)
		}
		select {
		case o := <-q.done:
			if !o.lead {
				return o.r, o.err
			}
			lead = true
		case <-ctx.Done():
			if o, delivered := c.abandon(q); delivered {
				// Its answer came as the context ended: return it, and
				// Acquire gives back what it reserved before it returns.
				return o.r, o.err
			}
			return reservation{}, ctx.Err()
		}
	}
}

// runFor runs a call made for a caller: in the caller's goroutine when its
// context can never end (it never needs to leave early), else in a
// goroutine of its own, on a context that the caller's leaving does not
// cancel, so that the caller can wait for the answer and leave at its
// deadline.
func runFor(ctx context.Context, call func(context.Context)) {
	if ctx.Done() == nil {
		call(ctx)
		return
	}
	go call(context.WithoutCancel(ctx))
}

// abandonGrace is how long a caller whose context ended waits for the
// answer of its call in flight: long enough that a healthy Redis answers
// and the caller gives its reservation back itself, short enough that it
// leaves close to its deadline when Redis is silent.
const abandonGrace = 20 * time.Millisecond

// abandon lets a caller whose context ended leave. A request not sent yet
// leaves the queue (passing on the lead if it had just been handed it). One
// in flight waits up to abandonGrace for its answer and returns it
// (delivered), so nothing it was granted is lost; after that it is marked,
// and the sender gives back what it gets.
func (c *coalescer) abandon(q *queued) (o outcome, delivered bool) {
	c.mu.Lock()
	if i := slices.Index(c.pending, q); i >= 0 {
		c.pending = slices.Delete(c.pending, i, i+1)
		select {
		case <-q.done: // the lead, handed to q as the head of the queue
			c.handOn()
		default:
		}
		c.mu.Unlock()
		return outcome{}, false
	}
	c.mu.Unlock()
	grace := time.NewTimer(abandonGrace)
	defer grace.Stop()
	select {
	case o := <-q.done:
		return o, true
	case <-grace.C:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case o := <-q.done: // answered as the grace ended: delivery happens under mu
		return o, true
	default:
		q.abandoned = true
		return outcome{}, false
	}
}

// handOn passes the lead to the head of the queue, or ends the busy spell.
// It is called with mu held.
func (c *coalescer) handOn() {
	if len(c.pending) > 0 {
		c.pending[0].done <- outcome{lead: true}
	} else {
		c.busy = false
	}
}

// send takes the pending requests and reserves them in one call.
func (c *coalescer) send(ctx context.Context) {
	c.mu.Lock()
	batch := c.pending[:min(len(c.pending), c.max)]
	c.pending = c.pending[len(batch):]
	c.mu.Unlock()
	if len(batch) == 0 { // every request left before it was sent
		c.mu.Lock()
		c.handOn()
		c.mu.Unlock()
		return
	}
	c.call(ctx, batch, true)
}

// call reserves batch in one script call and delivers each answer; with
// lead, it first hands the lead on.
func (c *coalescer) call(ctx context.Context, batch []*queued, lead bool) {
	now := time.Now()
	asks := make([]ask, len(batch))
	for i, q := range batch {
		asks[i] = q.ask
		if q.ask.maxWait >= 0 {
			asks[i].maxWait = max(0, q.ask.maxWait-now.Sub(q.since))
		}
	}
	latest := latestDeadline(batch)
	// The call carries other goroutines' requests: no one caller's
	// cancellation may fail them (ctx is already WithoutCancel).
	callCtx := ctx
	if !latest.IsZero() {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithDeadline(callCtx, latest)
		defer cancel()
	}
	rs, err := c.l.reserveAll(callCtx, asks)
	// Answers are delivered under mu, like abandon's check, so each request
	// is either answered or marked abandoned, never neither.
	c.mu.Lock()
	if lead {
		c.handOn()
	}
	var giveBack []int
	for i, q := range batch {
		switch {
		case q.abandoned:
			if err == nil && rs[i].granted {
				giveBack = append(giveBack, i)
			}
		case err != nil:
			q.done <- outcome{err: err}
		default:
			q.done <- outcome{r: rs[i]}
		}
	}
	c.mu.Unlock()
	for _, i := range giveBack {
		c.l.loop.GiveBack(ctx, batch[i].ask.n, acquire.Reservation{Granted: true, At: time.UnixMicro(rs[i].at), Token: rs[i].at, ID: batch[i].ask.id})
	}
}

// latestDeadline is how long a batch's call may last: until its most
// patient caller's deadline, or without one (zero) if any caller has none.
func latestDeadline(batch []*queued) time.Time {
	var latest time.Time
	for _, q := range batch {
		if q.deadline.IsZero() {
			return time.Time{}
		}
		if q.deadline.After(latest) {
			latest = q.deadline
		}
	}
	return latest
}
