package redis_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/internal/redistest"
	"github.com/descope-mgmt/ratelimit/limiter/internal/ring"
	"github.com/descope-mgmt/ratelimit/scripts/lua"
)

// The Lua script and the Go ring give the same decision for the same
// sequence of requests, cancellations and times: the twins implement one
// rule. On miniredis the clock is set before each step; on a real server it
// runs, and the Go ring is given the server's time from each reply.
func TestLuaAndGoAgree(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("miniredis/seed", seed), func(t *testing.T) {
			m := miniredis.RunT(t)
			base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			agree(t, newClient(t, m.Addr()), "q", seed, 1000, func(now int64) { m.SetTime(base.Add(time.Duration(now) * time.Microsecond)) })
		})
	}
	addr := redistest.Addr(t)
	for seed := range uint64(2) {
		t.Run(fmt.Sprint("redis-server/seed", seed), func(t *testing.T) {
			// A window of 20ms: the real clock slides it during the run.
			agree(t, newClient(t, addr), redistest.Key(t), seed, 20_000, nil)
		})
	}
}

// agree runs random steps against window.lua and the Go ring. setClock,
// when set, moves the server's clock to a time (µs from the start) before
// each step; without it the server's own clock runs and each reply's time
// drives the ring.
func agree(t *testing.T, c *goredis.Client, key string, seed uint64, window int64, setClock func(now int64)) {
	rng := rand.New(rand.NewPCG(seed, 42))
	const requests = 5
	g := ring.New(requests)
	type granted struct {
		at int64 // µs on the server's clock
		n  int
	}
	var held []granted
	last := int64(0) // the server's time at the last step
	ctx := t.Context()
	clock := int64(1_893_456_000_000_000) // µs: the miniredis start, 2030-01-01
	for step := range 2000 {
		if setClock != nil {
			clock += []int64{0, 1, 7, 100, 333, 999, 1000, 2500}[rng.IntN(8)]
			setClock(clock - 1_893_456_000_000_000)
		} else if rng.IntN(10) == 0 {
			time.Sleep(time.Duration(rng.IntN(int(window))) * time.Microsecond)
		}
		// Callers give back reservations they still wait for; a unit a
		// window old is gone from a real server's expired key, and counts
		// for nothing in either twin.
		held = slices.DeleteFunc(held, func(h granted) bool { return h.at <= last-window })
		if len(held) > 0 && rng.IntN(5) == 0 { // give back a reservation
			i := rng.IntN(len(held))
			h := held[i]
			held = append(held[:i], held[i+1:]...)
			got, err := c.Eval(ctx, lua.Window, []string{key}, "cancel", h.n, h.at).Int64Slice()
			require.NoError(t, err)
			require.EqualValues(t, g.Cancel(h.at, h.n), got[0], "step %d: cancel %+v", step, h)
			continue
		}
		n := 1 + rng.IntN(requests)
		maxWait := []int64{-1, 0, 0, window / 2, window * 3 / 2}[rng.IntN(5)]
		vals, err := c.Eval(ctx, lua.Window, []string{key}, "reserve", 0, 1, n, maxWait, 1, 1, requests, window).Int64Slice()
		require.NoError(t, err)
		now := vals[2] - vals[1] // the server's time for this step: at - wait
		last = now

		at := g.Earliest(now, n, requests, window)
		ok := maxWait < 0 || at-now <= maxWait
		if ok {
			g.Record(at, n, now-window)
			held = append(held, granted{at, n})
		}
		// The last value says whether the key held other limits: never here.
		want := []int64{0, at - now, at, int64(g.Remaining(now, requests, window)), 0}
		if ok {
			want[0] = 1
		}
		require.Equal(t, want, vals, "step %d: n=%d maxWait=%d now=%d", step, n, maxWait, now)
	}
}
