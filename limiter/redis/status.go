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

// Status reads the quota without writing to it or consuming anything. For a
// limiter over several quotas or limits, it reports the one that would make
// a caller wait longest.
func (l *Limiter) Status(ctx context.Context) (Status, error) {
	args := append([]any{"status"}, l.limitArg...)
	vals, err := script.Run(ctx, l.client, l.keys, args...).Int64Slice()
	if err != nil {
		return Status{}, fmt.Errorf("limiter/redis: status of key %q: %w", l.keys[0], err)
	}
	if len(vals) < 4 || (len(vals)-1)%3 != 0 {
		return Status{}, fmt.Errorf("limiter/redis: status of key %q: window.lua answered %d values", l.keys[0], len(vals))
	}
	var st Status
	for i := 1; i < len(vals); i += 3 {
		next := time.Duration(vals[i+2]) * time.Microsecond
		if i == 1 || next > st.NextFree {
			st = Status{Used: int(vals[i]), Queued: int(vals[i+1]), NextFree: next}
		}
	}
	st.Now = time.UnixMicro(vals[0])
	return st, nil
}
