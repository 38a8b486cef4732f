package redis

import (
	"context"
	"sync"
	"time"
)

// maxBatch bounds how many requests one script call carries.
const maxBatch = 256

// coalescer sends the Acquire and TryAcquire requests of one Limiter that arrive while a
// script call is in flight as the next call, all at once (group commit):
// one round trip grants many goroutines, so one process can be granted more
// units per second than Redis can serve round trips. The script serves a
// batch in arrival order, as if each request were its own call, so first
// come, first served still holds.
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
	ask   ask
	since time.Time // its max wait shrinks by the time it spent queued
	done  chan outcome
}

type outcome struct {
	r    reservation
	err  error
	lead bool // send the next batch
}

func (c *coalescer) reserve(ctx context.Context, a ask) (reservation, error) {
	q := &queued{ask: a, since: time.Now(), done: make(chan outcome, 1)}
	c.mu.Lock()
	c.pending = append(c.pending, q)
	lead := !c.busy
	c.busy = true
	c.mu.Unlock()
	for {
		if lead {
			c.send(ctx)
		}
		o := <-q.done
		if !o.lead {
			return o.r, o.err
		}
		lead = true
	}
}

// send reserves the pending requests in one call, then passes the lead on.
func (c *coalescer) send(ctx context.Context) {
	c.mu.Lock()
	batch := c.pending[:min(len(c.pending), maxBatch)]
	c.pending = c.pending[len(batch):]
	c.mu.Unlock()
	now := time.Now()
	asks := make([]ask, len(batch))
	for i, q := range batch {
		asks[i] = q.ask
		if q.ask.maxWait >= 0 {
			asks[i].maxWait = max(0, q.ask.maxWait-now.Sub(q.since))
		}
	}
	// The call carries other goroutines' requests: the leader's own
	// cancellation must not fail them (go-redis's timeouts still bound it).
	rs, err := c.l.reserveAll(context.WithoutCancel(ctx), asks)
	c.mu.Lock()
	if len(c.pending) > 0 {
		c.pending[0].done <- outcome{lead: true}
	} else {
		c.busy = false
	}
	c.mu.Unlock()
	for i, q := range batch {
		if err != nil {
			q.done <- outcome{err: err}
		} else {
			q.done <- outcome{r: rs[i]}
		}
	}
}
