package redis

import (
	"context"
	"fmt"
	"time"
)

// Status is a read of a quota's state at one instant of the server's clock.
type Status struct {
	// Now is the server's time of the read.
	Now time.Time
	// Used is how many units were granted in the window ending now.
	Used int
	// Queued is how many units are reserved after now, by callers waiting.
	Queued int
	// NextFree is how long until one more unit could be granted if nobody
	// else asks; zero when one could be granted now.
	NextFree time.Duration
}

// Status reads the quota without writing to it or consuming anything.
func (l *Limiter) Status(ctx context.Context) (Status, error) {
	args := append([]any{"status"}, l.limitArg...)
	vals, err := script.Run(ctx, l.client, l.keys, args...).Int64Slice()
	if err != nil {
		return Status{}, fmt.Errorf("limiter/redis: status of key %q: %w", l.keys[0], err)
	}
	if len(vals) != 4 {
		return Status{}, fmt.Errorf("limiter/redis: status of key %q: window.lua answered %d values, want 4", l.keys[0], len(vals))
	}
	return Status{
		Now:      time.UnixMicro(vals[0]),
		Used:     int(vals[1]),
		Queued:   int(vals[2]),
		NextFree: time.Duration(vals[3]) * time.Microsecond,
	}, nil
}
