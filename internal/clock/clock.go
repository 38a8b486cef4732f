// Package clock holds the one time helper the packages share.
package clock

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx ends, when it returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SleepUnless waits for d like Sleep, but also wakes on a signal from ch:
// the limiters' wait for a reservation, which a pause can cover. After each
// signal it takes the next channel from next, then asks covered, in that
// order, so a pause that comes between the two is never missed. It returns
// requeue=true when covered, and ok=false when ctx ended first.
func SleepUnless(ctx context.Context, d time.Duration, ch <-chan struct{}, next func() <-chan struct{}, covered func() bool) (requeue, ok bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return false, true
		case <-ctx.Done():
			return false, false
		case <-ch:
			ch = next()
			if covered() {
				return true, true
			}
		}
	}
}
