package redis_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/internal/redistest"
	"github.com/descope-mgmt/ratelimit/limiter/internal/window"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
	"github.com/descope-mgmt/ratelimit/scripts/lua"
)

// The Lua script and the Go twin give the same answers for the same
// sequence of requests, give-backs, pauses, lost keys and times, over one
// or two keys with one or two limits each: the twins implement one rule. On
// miniredis the clock is set before each step; on a real server it runs,
// and the Go twin is given the server's time from each reply.
func TestLuaAndGoAgree(t *testing.T) {
	shapes := []struct {
		name string
		keys [][]window.Limit
	}{
		{"one limit", [][]window.Limit{{{Requests: 5, Window: 1000}}}},
		{"two limits", [][]window.Limit{{{Requests: 5, Window: 1000}, {Requests: 12, Window: 5000}}}},
		{"two keys", [][]window.Limit{{{Requests: 5, Window: 1000}}, {{Requests: 3, Window: 700}, {Requests: 9, Window: 4000}}}},
		{"coarse ticks", [][]window.Limit{{{Requests: 5000, Window: 3_000_000}}}},
		// Small grants under a wide limit: hundreds of entries, so the
		// key's rings of entries and records grow, wrap and shrink.
		{"many entries", [][]window.Limit{{{Requests: 250, Window: 40_000}}}},
	}
	for _, shape := range shapes {
		for seed := range uint64(3) {
			t.Run(fmt.Sprintf("miniredis/%s/seed%d", shape.name, seed), func(t *testing.T) {
				m := miniredis.RunT(t)
				base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
				c := newClient(t, m.Addr())
				agree(t, c, evalOn(c), []string{"{q}a", "{q}b"}[:len(shape.keys)], shape.keys, seed, 1, func(now int64) { m.SetTime(base.Add(time.Duration(now) * time.Microsecond)) })
			})
		}
	}
	c := newClient(t, redistest.Addr(t))
	// The same code as a function library, which the limiter runs where
	// Redis has functions (Redis 7 and later).
	require.NoError(t, c.FunctionLoadReplace(t.Context(), lua.Library).Err())
	fcall := func(ctx context.Context, keys []string, args ...any) *goredis.Cmd {
		return c.FCall(ctx, lua.Function, keys, args...)
	}
	for _, shape := range shapes {
		for _, way := range []struct {
			name string
			run  runFunc
		}{{"script", evalOn(c)}, {"function", fcall}} {
			t.Run("redis-server/"+way.name+"/"+shape.name, func(t *testing.T) {
				// Windows 20 times longer: the real clock slides them during the run.
				keys := make([][]window.Limit, len(shape.keys))
				for i, limits := range shape.keys {
					for _, l := range limits {
						keys[i] = append(keys[i], window.Limit{Requests: l.Requests, Window: 20 * l.Window})
					}
				}
				key := redistest.Key(t)
				agree(t, c, way.run, []string{"{" + key + "}a", "{" + key + "}b"}[:len(keys)], keys, 7, 20, nil)
			})
		}
	}
}

// runFunc runs one operation of window.lua.
type runFunc func(ctx context.Context, keys []string, args ...any) *goredis.Cmd

// evalOn runs window.lua as a script on c.
func evalOn(c *goredis.Client) runFunc {
	return func(ctx context.Context, keys []string, args ...any) *goredis.Cmd {
		return c.Eval(ctx, lua.Window, keys, args...)
	}
}

// twin is the Go side: one window and pause per key, as window.lua keeps
// them, and the caller's own memory (seen, the pause it heard).
type twin struct {
	limits [][]window.Limit
	ws     []*window.Window
	pause  []int64
	heard  []int64 // the pause end the caller heard of, per key
	seen   int64
}

func (g *twin) reserve(now int64, n int, maxWait int64) (granted bool, at int64, remaining int) {
	from := now
	for i, w := range g.ws {
		keep := window.Widest(g.limits[i])
		w.Prepare(now, keep, window.Tick(g.limits[i], true), true)
		g.pause[i] = max(g.pause[i], g.heard[i])
		if g.seen > now-keep && g.seen > w.Latest() {
			most := 0
			for _, l := range g.limits[i] {
				most = max(most, l.Requests)
			}
			w.Record(max(g.seen, now), most)
		}
		from = max(from, g.pause[i])
	}
	at, slot, freed := window.FreedSlot(g.ws, from, n)
	if !freed {
		at = from
		for i, w := range g.ws {
			at = w.After(at, n, g.limits[i])
		}
	}
	granted = maxWait < 0 || at-now <= maxWait
	if granted {
		for i, w := range g.ws {
			if freed {
				w.Take(slot[i], n)
			} else {
				w.Record(at, n)
			}
		}
		g.seen = max(g.seen, at)
	}
	remaining = -1
	for i, w := range g.ws {
		for _, l := range g.limits[i] {
			left := 0
			if g.pause[i] <= now {
				left = w.Remaining(now, l)
			}
			if remaining < 0 || left < remaining {
				remaining = left
			}
		}
	}
	return granted, at, remaining
}

// agree runs random steps against window.lua and the Go twin. setClock,
// when set, moves the server's clock to a time (µs from the start) before
// each step; without it the server's own clock runs and each reply's time
// drives the twin. scale stretches the clock steps.
func agree(t *testing.T, c *goredis.Client, run runFunc, keys []string, limits [][]window.Limit, seed uint64, scale int64, setClock func(now int64)) {
	rng := rand.New(rand.NewPCG(seed, 42))
	g := &twin{limits: limits, pause: make([]int64, len(keys)), heard: make([]int64, len(keys))}
	for range keys {
		g.ws = append(g.ws, new(window.Window))
	}
	limitArgs := func(withPause bool) []any {
		var args []any
		for i, ls := range limits {
			args = append(args, len(ls))
			for _, l := range ls {
				args = append(args, l.Requests, l.Window)
			}
			if withPause { // and the latest reservation known: the caller's own here
				args = append(args, g.heard[i], g.seen)
			}
		}
		return args
	}
	tightest := limits[0][0]
	for _, ls := range limits {
		for _, l := range ls {
			if l.Requests < tightest.Requests {
				tightest = l
			}
		}
	}
	type granted struct {
		id string
		at int64 // µs on the server's clock
		n  int
	}
	var held []granted
	// serve has the twin serve one request at now, keeps what it grants in
	// held, and returns window.lua's four values for it: granted, wait, at
	// and remaining (0 unless asked for).
	serve := func(now int64, id string, n int, maxWait int64, wantRemaining bool) []int64 {
		ok, at, remaining := g.reserve(now, n, maxWait)
		answer := []int64{0, at - now, at, 0}
		if ok {
			held = append(held, granted{id, at, n})
			answer[0] = 1
		}
		if wantRemaining {
			answer[3] = int64(remaining)
		}
		return answer
	}
	// ending is what window.lua returns after the answers: 0, since no key
	// ever holds other limits here, then each key's latest reservation.
	ending := func() []int64 {
		e := []int64{0}
		for _, w := range g.ws {
			e = append(e, w.Latest())
		}
		return e
	}
	last := int64(0) // the server's time at the last step
	ctx := t.Context()
	// reserve runs a reserve of k requests and returns window.lua's answer
	// with four values per request.
	reserve := func(args []any, k int) []int64 {
		vals, err := run(ctx, keys, args...).Int64Slice()
		require.NoError(t, err)
		answers, err := redislimiter.DecodeAnswers(vals, k)
		require.NoError(t, err)
		return answers
	}
	clock := int64(1_893_456_000_000_000) // µs: the miniredis start, 2030-01-01
	var nextID uint64
	for step := range 1500 {
		if setClock != nil {
			clock += []int64{0, 1, 7, 100, 333, 999, 1000, 2500}[rng.IntN(8)] * scale
			setClock(clock - 1_893_456_000_000_000)
		} else if rng.IntN(10) == 0 {
			time.Sleep(time.Duration(rng.IntN(int(min(tightest.Window, 20_000)))) * time.Microsecond)
		}
		held = slices.DeleteFunc(held, func(h granted) bool { return h.at <= last-window.Widest(limits[0]) })
		switch op := rng.IntN(40); {
		case op < 8 && len(held) > 0: // give back a reservation, sometimes twice
			i := rng.IntN(len(held))
			h := held[i]
			held = append(held[:i], held[i+1:]...)
			for try := range 1 + rng.IntN(2) {
				got, err := run(ctx, keys, "cancel", h.id, h.n, h.at).Int64Slice()
				require.NoError(t, err)
				removed, now := 0, got[2]
				if try == 0 { // the second time, window.lua knows the id no more
					removed = g.ws[0].Cancel(h.at, h.n, now)
					for _, w := range g.ws[1:] {
						w.Cancel(h.at, h.n, now)
					}
				}
				if h.at > now-window.Widest(limits[0]) { // else a real server may have let the key expire
					require.EqualValues(t, removed, got[0], "step %d: cancel %+v (try %d)", step, h, try)
				}
				if got[1] >= 0 {
					g.seen = min(g.seen, got[1])
				}
			}
			continue
		case op == 8: // a pause, heard by the caller
			d := tightest.Window * int64(1+rng.IntN(3)) / 2
			vals, err := run(ctx, keys, append([]any{"pause", d}, limitArgs(false)...)...).Int64Slice()
			require.NoError(t, err)
			for i, w := range g.ws { // a pause writes the keys: what no window needs is dropped
				w.Prepare(vals[0], window.Widest(limits[i]), window.Tick(limits[i], true), true)
				g.pause[i] = max(g.pause[i], vals[1])
				g.heard[i] = max(g.heard[i], vals[1])
			}
			continue
		case op == 9: // the keys lose their data
			require.NoError(t, c.Del(ctx, keys...).Err())
			for i := range keys {
				g.ws[i], g.pause[i] = new(window.Window), 0
			}
			held = nil
			continue
		}
		n := 1 + rng.IntN(min(tightest.Requests, 8))
		maxWait := []int64{-1, 0, 0, tightest.Window / 2, tightest.Window * 3 / 2}[rng.IntN(5)]
		if rng.IntN(4) == 0 { // a coalesced call: several requests, mostly for the same n
			k := 2 + rng.IntN(6)
			args := []any{"reserve", g.seen, k}
			type ask struct {
				id      string
				n       int
				maxWait int64
				want    bool
			}
			var asks []ask
			for range k {
				nextID++
				var id [8]byte
				binary.BigEndian.PutUint64(id[:], nextID)
				a := ask{string(id[:]), n, []int64{-1, -1, 0, tightest.Window / 2}[rng.IntN(4)], rng.IntN(2) == 0}
				if rng.IntN(4) == 0 {
					a.n = 1 + rng.IntN(min(tightest.Requests, 8))
				}
				asks = append(asks, a)
				args = append(args, a.id, a.n, a.maxWait, map[bool]int{true: 1, false: 0}[a.want])
			}
			args = append(args, limitArgs(true)...)
			vals := reserve(args, k)
			now := vals[2] - vals[1]
			last = now
			var want []int64
			for _, a := range asks { // the twin serves them one at a time
				want = append(want, serve(now, a.id, a.n, a.maxWait, a.want)...)
			}
			want = append(want, ending()...)
			require.Equal(t, want, vals, "step %d: a call of %d requests %+v, now=%d", step, k, asks, now)
			continue
		}
		nextID++
		var id [8]byte
		binary.BigEndian.PutUint64(id[:], nextID)
		args := append([]any{"reserve", g.seen, 1, string(id[:]), n, maxWait, 1}, limitArgs(true)...)
		vals := reserve(args, 1)
		now := vals[2] - vals[1] // the server's time for this step: at - wait
		last = now

		answer := serve(now, string(id[:]), n, maxWait, true)
		ok, at := answer[0] == 1, answer[2]
		require.Equal(t, append(answer, ending()...), vals, "step %d: n=%d maxWait=%d now=%d", step, n, maxWait, now)
		if raw, err := c.Get(ctx, keys[0]).Bytes(); err == nil && ok { // written: what no window needs is gone
			ents := int(binary.BigEndian.Uint32(raw[56:60])) // the header's count of entries kept
			held := int(binary.BigEndian.Uint32(raw[76:80]) - binary.BigEndian.Uint32(raw[20:24]))
			require.Equal(t, []int{g.ws[0].Len(), g.ws[0].Held()}, []int{ents, held}, "step %d: entries and units held", step)
		}
		if rng.IntN(6) == 0 { // the client retries the call: the same answer, nothing recorded
			again := reserve(args, 1)
			if ok {
				require.Equal(t, []int64{1, at - (again[2] - again[1]), at}, again[:3], "step %d: a retried grant", step)
			} else { // refused the first time: asked afresh
				answer := serve(again[2]-again[1], string(id[:]), n, maxWait, true)
				require.Equal(t, append(answer, ending()...), again, "step %d: a refused request retried", step)
			}
		}
	}
}
