package window

import (
	"slices"
	"testing"
)

// FuzzNeverOverAdmits drives a window with random acquires (after the
// latest reservation, or into a freed slot), give-backs and time advances
// (decoded from the input), keeps its own record of every unit that counts,
// and checks that no window ever holds more than the limit, at the tick
// given by the limit (coarse for limits above Fine).
// `go test -fuzz FuzzNeverOverAdmits ./limiter/internal/window` explores;
// plain `go test` replays the seeds in testdata/fuzz.
func FuzzNeverOverAdmits(f *testing.F) {
	f.Add([]byte{3, 10, 1, 2, 3, 200, 4, 4, 4, 0, 9, 9})
	f.Add([]byte{1, 50, 0, 0, 0, 0, 255, 255, 1, 1, 1, 1, 1})
	f.Add([]byte{255, 90, 5, 9, 13, 17, 3, 7, 11, 0, 0, 21, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		requests := 1 + int(data[0]%8)
		if data[0] >= 200 { // a coarse tick
			requests = Fine + int(data[0])
		}
		l := Limit{Requests: requests, Window: int64(1+data[1]%100) * 1000}
		w := new(Window)
		// Every grant not given back: what callers use. Its units are at
		// their grant times; no window of them may hold more than the limit.
		type grant struct {
			at int64
			n  int
		}
		var active []grant
		now := int64(0)
		for _, b := range data[2:] {
			w.Prepare(now, l.Window, Tick([]Limit{l}, false), false)
			switch op := b % 4; op {
			case 0: // time passes
				now += int64(b/4) * 37
			case 1, 2: // acquire n, any wait or none
				n := 1 + int(b/4)%min(requests, 8)
				if requests > Fine {
					n *= 50
				}
				at, slot, freed := FreedSlot([]*Window{w}, now, n)
				if !freed {
					at = w.After(now, n, []Limit{l})
				}
				if op == 2 && at != now {
					continue
				}
				if at < now {
					t.Fatalf("grant at %d before now %d", at, now)
				}
				if freed {
					w.Take(slot[0], n)
				} else {
					w.Record(at, n)
				}
				active = append(active, grant{at, n})
			case 3: // its caller gives back an earlier grant
				if len(active) == 0 {
					continue
				}
				i := int(b/4) % len(active)
				w.Cancel(active[i].at, active[i].n, now)
				active = slices.Delete(active, i, i+1)
			}
			var used []int64
			for _, g := range active {
				for range g.n {
					used = append(used, g.at)
				}
			}
			checkWindows(t, used, requests, l.Window)
		}
	})
}

// checkWindows fails if any window (t-window, t] holds more than requests.
func checkWindows(t *testing.T, held []int64, requests int, window int64) {
	sorted := slices.Sorted(slices.Values(held))
	lo := 0
	for hi, at := range sorted {
		for sorted[lo] <= at-window {
			lo++
		}
		if hi-lo+1 > requests {
			t.Fatalf("%d units in the window ending at %d, limit %d", hi-lo+1, at, requests)
		}
	}
}
