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
// There is no goroutine of its own: the first request to arrive leads. It
// sends the batch, delivers the answers, and hands the lead to the oldest
// request that arrived meanwhile.
type coalescer struct {
	l       *Limiter
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
	c.mu.Lock()
	c.pending = append(c.pending, q)
	lead := !c.busy
	c.busy = true
	c.mu.Unlock()
	for {
		if lead {
			c.send(ctx)
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
				// Acquire gives back what it reserved.
				return o.r, o.err
			}
			return reservation{}, ctx.Err()
		}
	}
}

// abandon lets a caller whose context ended leave at once. A request not
// sent yet leaves the queue (passing on the lead if it had just been handed
// it); one in flight is marked, and the leader gives back what it gets; one
// already answered returns its answer (delivered), so nothing it was
// granted is lost.
func (c *coalescer) abandon(q *queued) (o outcome, delivered bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := slices.Index(c.pending, q); i >= 0 {
		c.pending = slices.Delete(c.pending, i, i+1)
		select {
		case <-q.done: // the lead, handed to q as the head of the queue
			c.handOn()
		default:
		}
		return outcome{}, false
	}
	select {
	case o := <-q.done: // answered: delivery happens under mu
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

// send reserves the pending requests in one call, then passes the lead on.
func (c *coalescer) send(ctx context.Context) {
	c.mu.Lock()
	batch := c.pending[:min(len(c.pending), maxBatch)]
	c.pending = c.pending[len(batch):]
	c.mu.Unlock()
	if len(batch) == 0 { // every request left before it was sent
		c.mu.Lock()
		c.handOn()
		c.mu.Unlock()
		return
	}
	now := time.Now()
	asks := make([]ask, len(batch))
	for i, q := range batch {
		asks[i] = q.ask
		if q.ask.maxWait >= 0 {
			asks[i].maxWait = max(0, q.ask.maxWait-now.Sub(q.since))
		}
	}
	latest := latestDeadline(batch)
	// The call carries other goroutines' requests: the leader's own
	// cancellation must not fail them.
	callCtx := context.WithoutCancel(ctx)
	if !latest.IsZero() {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithDeadline(callCtx, latest)
		defer cancel()
	}
	rs, err := c.l.reserveAll(callCtx, asks)
	// Answers are delivered under mu, like abandon's check, so each request
	// is either answered or marked abandoned, never neither.
	c.mu.Lock()
	c.handOn()
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
		c.l.loop.GiveBack(ctx, batch[i].ask.n, acquire.Reservation{Granted: true, At: time.UnixMicro(rs[i].at), Token: rs[i].at})
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
