package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/limiter"
)

// ErrNoQuota is returned by [ReadStatus] for a key that does not exist:
// never used, expired a window after its last grant, or mistyped.
var ErrNoQuota = errors.New("limiter/redis: no quota at this key")

// ErrNotAQuota is wrapped by every operation on a key that holds something
// this package did not write (another type, or a string of other bytes).
// The key is never overwritten.
var ErrNotAQuota = errors.New("limiter/redis: not a quota")

// Status is a read of a quota's state at one instant of the server's clock.
type Status struct {
	// Now is the server's time of the read.
	Now time.Time
	// Limit is the limit the figures below are for: of the limits read, the
	// one that would make a caller wait longest.
	Limit limiter.Limit
	// Used is how many units were granted in the window ending now.
	Used int
	// Queued is how many units are reserved after now, by callers waiting.
	Queued int
	// NextFree is how long until one more unit could be granted if nobody
	// else asks; zero when one could be granted now.
	NextFree time.Duration
	// LimitsChangedAt is when a process last found other limits stored in
	// the key than its own: replicas disagree on the limit if it is recent
	// (within a window). Zero if that never happened in the key's life.
	LimitsChangedAt time.Time
}

// Status reads the quota under the limiter's own limits, without writing to
// it or consuming anything. For a limiter over several quotas or limits, it
// reports the one that would make a caller wait longest.
func (l *Limiter) Status(ctx context.Context) (Status, error) {
	var args []any
	for _, arg := range l.limitArg {
		args = append(args, arg...)
	}
	st, _, err := readStatus(ctx, l.script, l.keys, args)
	if err != nil {
		return Status{}, l.errorf("status: %w", err)
	}
	return st, nil
}

// ReadStatus reads the quota at key under the limits stored in it (the
// limits its last writer uses), without writing or consuming anything, and
// without knowing its limit. It fails with an error matching [ErrNoQuota]
// if the key does not exist, and [ErrNotAQuota] if it holds other data.
func ReadStatus(ctx context.Context, client goredis.Scripter, key string) (Status, error) {
	st, exists, err := readStatus(ctx, newRunner(client), []string{key}, []any{0})
	switch {
	case err != nil:
		return Status{}, scriptError(fmt.Errorf("limiter/redis: key %q: status: %w", key, err))
	case !exists:
		return Status{}, fmt.Errorf("%w %q", ErrNoQuota, key)
	}
	return st, nil
}

// readStatus runs window.lua's status and keeps the binding limit.
func readStatus(ctx context.Context, r *runner, keys []string, limitArg []any) (st Status, exists bool, err error) {
	vals, err := r.run(ctx, keys, append([]any{"status"}, limitArg...)...).Int64Slice()
	if err != nil {
		return Status{}, false, err
	}
	bad := fmt.Errorf("window.lua answered %d values", len(vals))
	if len(vals) < 1 {
		return Status{}, false, bad
	}
	st.Now = time.UnixMicro(vals[0])
	first := true
	for i := 1; i < len(vals); {
		if i+3 > len(vals) {
			return Status{}, false, bad
		}
		exists = exists || vals[i] == 1
		if vals[i+1] > 0 && (st.LimitsChangedAt.IsZero() || vals[i+1] > st.LimitsChangedAt.UnixMicro()) {
			st.LimitsChangedAt = time.UnixMicro(vals[i+1])
		}
		n := int(vals[i+2])
		i += 3
		if i+5*n > len(vals) {
			return Status{}, false, bad
		}
		for j := 0; j < n; j, i = j+1, i+5 {
			next := time.Duration(vals[i+4]) * time.Microsecond
			if first || next > st.NextFree {
				first = false
				st.Limit = limiter.Limit{Requests: int(vals[i]), Window: time.Duration(vals[i+1]) * time.Microsecond}
				st.Used, st.Queued, st.NextFree = int(vals[i+2]), int(vals[i+3]), next
			}
		}
	}
	return st, exists, nil
}

// scriptError turns window.lua's "not a quota" reply into an error that
// matches ErrNotAQuota and says what the key holds; other errors pass as
// they are.
func scriptError(err error) error {
	if err == nil || errors.Is(err, ErrNotAQuota) {
		return err
	}
	const mark = "window.lua: not a quota: "
	if _, detail, ok := strings.Cut(err.Error(), mark); ok {
		return fmt.Errorf("%w: %s; delete it or use another key", ErrNotAQuota, detail)
	}
	return err
}
