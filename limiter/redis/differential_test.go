package redis_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/limiter/internal/ring"
	"github.com/descope-mgmt/ratelimit/scripts/lua"
)

// The Lua script and the Go ring give the same decision for the same
// sequence of requests, cancellations and times: the twins implement one
// rule. Times are microseconds; miniredis's clock is set before each step.
func TestLuaAndGoAgree(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			m := miniredis.RunT(t)
			c := newClient(t, m.Addr())
			rng := rand.New(rand.NewPCG(seed, 42))
			const requests, window = 5, 1000 // µs
			base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			g := ring.New(requests)
			type granted struct {
				at int64 // relative µs
				n  int
			}
			var held []granted
			now := int64(0)
			for step := range 2000 {
				now += []int64{0, 1, 7, 100, 333, 999, 1000, 2500}[rng.IntN(8)]
				m.SetTime(base.Add(time.Duration(now) * time.Microsecond))
				ctx := t.Context()
				if len(held) > 0 && rng.IntN(5) == 0 { // give back a reservation
					i := rng.IntN(len(held))
					h := held[i]
					held = append(held[:i], held[i+1:]...)
					got, err := c.Eval(ctx, lua.Window, []string{"q"}, "cancel", h.n, base.UnixMicro()+h.at).Int64Slice()
					require.NoError(t, err)
					require.EqualValues(t, g.Cancel(h.at, h.n), got[0], "step %d: cancel %+v", step, h)
					continue
				}
				n := 1 + rng.IntN(requests)
				maxWait := []int64{-1, 0, 0, 500, 1500}[rng.IntN(5)]
				vals, err := c.Eval(ctx, lua.Window, []string{"q"}, "reserve", 0, 1, n, maxWait, 1, 1, requests, window).Int64Slice()
				require.NoError(t, err)

				at := g.Earliest(now, n, requests, window)
				ok := maxWait < 0 || at-now <= maxWait
				if ok {
					g.Record(at, n, now-window)
					held = append(held, granted{at, n})
				}
				remaining := g.Remaining(now, requests, window)
				want := []int64{0, at - now, base.UnixMicro() + at, int64(remaining)}
				if ok {
					want[0] = 1
				}
				require.Equal(t, want, vals, "step %d: n=%d maxWait=%d now=%d", step, n, maxWait, now)
			}
		})
	}
}
