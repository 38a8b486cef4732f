package limiter_test

import (
	"errors"
	"fmt"

	"github.com/descope-mgmt/ratelimit/limiter"
)

// ParseLimit reads limits as a flag or a config file writes them; String
// writes them back the same way.
func ExampleParseLimit() {
	for _, s := range []string{"100/1m", "1000/10s", "20/1s", "0/1s", "100/minute"} {
		l, err := limiter.ParseLimit(s)
		if err != nil {
			fmt.Printf("%-10s error (ErrInvalidLimit=%v): %v\n", s, errors.Is(err, limiter.ErrInvalidLimit), err)
			continue
		}
		fmt.Printf("%-10s %d per %v, written %s\n", s, l.Requests, l.Window, l)
	}
	// Output:
	// 100/1m     100 per 1m0s, written 100/1m
	// 1000/10s   1000 per 10s, written 1000/10s
	// 20/1s      20 per 1s, written 20/1s
	// 0/1s       error (ErrInvalidLimit=true): limiter: invalid limit: requests=0, want at least 1
	// 100/minute error (ErrInvalidLimit=true): limiter: invalid limit: window "minute" in "100/minute" is not a duration such as 1s or 10m
}
