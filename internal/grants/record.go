package grants

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/descope-mgmt/ratelimit/limiter"
)

// Recorder is a limiter.Observer that keeps the time of every unit granted
// (a grant of n units is n Grants). It is safe for concurrent use; the zero
// Recorder is ready.
type Recorder struct {
	mu     sync.Mutex
	grants []Grant
}

// Observe records e if it is a grant.
func (r *Recorder) Observe(e limiter.Event) {
	if e.Kind != limiter.EventGrant {
		return
	}
	r.mu.Lock()
	for range max(e.N, 1) {
		r.grants = append(r.grants, Grant{At: e.At})
	}
	r.mu.Unlock()
}

// Grants returns a copy of the grants recorded so far.
func (r *Recorder) Grants() []Grant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Grant(nil), r.grants...)
}

// Len returns how many units were recorded.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.grants)
}

// Drive runs workers goroutines that call acquire until ctx ends. A call
// that fails while ctx is live counts as a failure, and its goroutine
// pauses 20ms so a dead backend is not spun on. wait blocks until every
// goroutine has returned and reports the failures.
func Drive(ctx context.Context, workers int, acquire func(context.Context) error) (wait func() int64) {
	var failures atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := acquire(ctx); err != nil && ctx.Err() == nil {
					failures.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	return func() int64 {
		wg.Wait()
		return failures.Load()
	}
}

// Storm runs callers goroutines that, for run, each call acquire with a
// context of its own (no deadline) that a timer cancels at a random time up
// to cancelWithin; it returns how many calls failed, that is, were
// cancelled. Each goroutine draws its times from a generator seeded with its
// index, so a run in a synctest bubble repeats exactly.
func Storm(ctx context.Context, callers int, run, cancelWithin time.Duration, acquire func(context.Context) error) (cancelled int64) {
	start := time.Now()
	var n atomic.Int64
	var wg sync.WaitGroup
	for g := range callers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for time.Since(start) < run {
				cctx, cancel := context.WithCancel(ctx)
				timer := time.AfterFunc(time.Duration(rng.Int64N(int64(cancelWithin))), cancel)
				if acquire(cctx) != nil {
					n.Add(1)
				}
				timer.Stop()
				cancel()
			}
		})
	}
	wg.Wait()
	return n.Load()
}
