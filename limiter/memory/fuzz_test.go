package memory_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/memory"
)

// FuzzBadInput: any limit and n either work or fail with the sentinel that
// names the mistake (ErrInvalidLimit, ErrInvalidN, ErrExceedsLimit); never
// a panic, and a refused request consumes nothing.
func FuzzBadInput(f *testing.F) {
	f.Add(5, int64(time.Second), 1)
	f.Add(0, int64(time.Second), 1)
	f.Add(5, int64(0), 1)
	f.Add(5, int64(-1), 1)
	f.Add(5, int64(time.Second), 0)
	f.Add(5, int64(time.Second), 6)
	f.Add(-1, int64(time.Minute), -7)
	f.Fuzz(func(t *testing.T, requests int, window int64, n int) {
		if requests > 1<<16 {
			requests = 1<<16 + requests%8 // keep the ring small; still past no bound we test
		}
		limit := limiter.Limit{Requests: requests, Window: time.Duration(window)}
		l, err := memory.New(limit)
		if requests < 1 || window <= 0 {
			if !errors.Is(err, limiter.ErrInvalidLimit) {
				t.Fatalf("New(%+v) = %v, want ErrInvalidLimit", limit, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("New(%+v): %v", limit, err)
		}
		ctx := context.Background()
		_, err = l.TryAcquire(ctx, n)
		if n >= 1 && n <= requests {
			if err != nil {
				t.Fatalf("n=%d under %v: %v", n, limit, err)
			}
			return
		}
		aerr := l.Acquire(ctx, n) // bad n: must fail at once, not wait
		switch {
		case n < 1:
			if !errors.Is(err, limiter.ErrInvalidN) || !errors.Is(aerr, limiter.ErrInvalidN) {
				t.Fatalf("n=%d: %v / %v, want ErrInvalidN", n, err, aerr)
			}
		case n > requests:
			if !errors.Is(err, limiter.ErrExceedsLimit) || !errors.Is(aerr, limiter.ErrExceedsLimit) {
				t.Fatalf("n=%d over %v: %v / %v, want ErrExceedsLimit", n, limit, err, aerr)
			}
		}
		d, err := l.TryAcquire(ctx, requests)
		if err != nil || !d.Allowed {
			t.Fatalf("refused requests consumed something: %+v %v", d, err)
		}
	})
}
