package limiter_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/internal/acquire"
)

// FuzzParseLimit: any input either parses to a limit that validates and
// round-trips through String, or fails with ErrInvalidLimit; never a panic.
func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"100/1m", "20/1s", "1000/10m30s", "100/m", "0/1s", "5/-1s", "x/1s", "5", "/", "9999999999999999999/1s", "3/1µs"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := limiter.ParseLimit(s)
		if err != nil {
			if !errors.Is(err, limiter.ErrInvalidLimit) {
				t.Fatalf("ParseLimit(%q): %v does not match ErrInvalidLimit", s, err)
			}
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("ParseLimit(%q) = %+v, which does not validate: %v", s, l, err)
		}
		back, err := limiter.ParseLimit(l.String())
		if err != nil || back != l {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, l, l.String(), back, err)
		}
		// A request past the limit fails, naming the limit as String writes it.
		if n := acquire.CheckN(l.Requests+1, l); !errors.Is(n, limiter.ErrExceedsLimit) || !strings.Contains(n.Error(), l.String()) {
			t.Fatalf("CheckN past %v: %v", l, n)
		}
	})
}
