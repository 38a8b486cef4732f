package grants

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/descope-mgmt/ratelimit/limiter"
)

// Recorder is a limiter.Observer that keeps the time of every grant. It is
// safe for concurrent use; the zero Recorder is ready.
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
	r.grants = append(r.grants, Grant{At: e.At})
	r.mu.Unlock()
}

// Grants returns a copy of the grants recorded so far.
func (r *Recorder) Grants() []Grant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Grant(nil), r.grants...)
}

// Len returns how many grants were recorded.
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
