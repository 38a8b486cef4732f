package limiter

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The largest limit a limiter accepts. A quota's cost does not grow with
// its limit (backends keep one entry per tick that holds units, at most
// 256 per window of a limit above 256), so the bounds are set by arithmetic: Requests
// below 2^30 units, and a Window of at most a year, so no time overflows.
const (
	MaxRequests = 1 << 30
	MaxWindow   = 366 * 24 * time.Hour
)

// Limit allows at most Requests units in any sliding window of length Window.
//
// The zero Limit is invalid: [Limit.Validate] rejects it.
type Limit struct {
	// Requests is how many units any window may hold; at least 1.
	Requests int
	// Window is the length of the sliding window; more than zero.
	Window time.Duration
}

// PerSecond returns a limit of n units in any one-second window.
func PerSecond(n int) Limit { return Limit{Requests: n, Window: time.Second} }

// PerMinute returns a limit of n units in any one-minute window.
func PerMinute(n int) Limit { return Limit{Requests: n, Window: time.Minute} }

// PerHour returns a limit of n units in any one-hour window.
func PerHour(n int) Limit { return Limit{Requests: n, Window: time.Hour} }

// Validate reports whether l can be enforced. The error matches
// [ErrInvalidLimit] and names the value that is wrong.
func (l Limit) Validate() error {
	if p := l.problem(); p != "" {
		return fmt.Errorf("%w: %s", ErrInvalidLimit, p)
	}
	return nil
}

// problem says what is wrong with l, or "" if nothing is.
func (l Limit) problem() string {
	switch {
	case l.Requests < 1:
		return fmt.Sprintf("requests=%d, want at least 1", l.Requests)
	case l.Requests > MaxRequests:
		return fmt.Sprintf("requests=%d, want at most %d", l.Requests, MaxRequests)
	case l.Window <= 0:
		return fmt.Sprintf("window=%v, want more than 0", l.Window)
	case l.Window > MaxWindow:
		return fmt.Sprintf("window=%v, want at most %v (366 days)", l.Window, MaxWindow)
	}
	return ""
}

// String formats l as "requests/window", for example "100/1m" or "20/1s",
// the form [ParseLimit] reads.
func (l Limit) String() string {
	return strconv.Itoa(l.Requests) + "/" + formatWindow(l.Window)
}

// formatWindow drops the zero parts time.Duration.String keeps ("1m0s").
func formatWindow(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if d > 0 && d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return d.String()
}

// ParseLimit reads a limit written as "requests/window", where window is a
// Go duration ("100/1m", "20/1s", "1000/10m30s") or a bare unit meaning one
// of it ("100/m"). The result is validated.
func ParseLimit(s string) (Limit, error) {
	reqs, win, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Limit{}, fmt.Errorf("%w: %q, want requests/window such as 100/1m", ErrInvalidLimit, s)
	}
	n, err := strconv.Atoi(reqs)
	if err != nil {
		return Limit{}, fmt.Errorf("%w: requests %q in %q is not a whole number", ErrInvalidLimit, reqs, s)
	}
	dur := win
	if dur != "" && !strings.ContainsAny(dur[:1], "0123456789.") {
		dur = "1" + dur // "100/m" is 100 per minute
	}
	d, err := time.ParseDuration(dur)
	if err != nil {
		return Limit{}, fmt.Errorf("%w: window %q in %q is not a duration such as 1s or 10m", ErrInvalidLimit, win, s)
	}
	l := Limit{Requests: n, Window: d}
	return l, l.Validate()
}
