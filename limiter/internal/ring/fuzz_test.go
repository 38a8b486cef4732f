package ring

import (
	"slices"
	"testing"
)

// FuzzNeverOverAdmits drives a ring with random acquires, cancels and time
// advances (decoded from the input), keeps its own record of every unit
// held, and checks that no window ever holds more than the limit.
// `go test -fuzz FuzzNeverOverAdmits ./limiter/internal/ring` explores;
// plain `go test` replays the seeds in testdata/fuzz.
func FuzzNeverOverAdmits(f *testing.F) {
	f.Add([]byte{3, 10, 1, 2, 3, 200, 4, 4, 4, 0, 9, 9})
	f.Add([]byte{1, 50, 0, 0, 0, 0, 255, 255, 1, 1, 1, 1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		requests := 1 + int(data[0]%8)
		window := int64(1 + data[1]%100)
		r := New(requests)
		var held []int64 // every unit's grant time, as granted and not given back
		var grants []int64
		now := int64(0)
		for _, b := range data[2:] {
			switch op := b % 4; op {
			case 0: // time passes
				now += int64(b / 4)
			case 1, 2: // acquire n, any wait or none
				n := 1 + int(b/4)%requests
				at := r.Earliest(now, n, requests, window)
				if op == 2 && at != now {
					continue
				}
				if at < now || (len(held) > 0 && at < slices.Max(held)) {
					t.Fatalf("grant at %d: before now %d or before an earlier grant", at, now)
				}
				r.Record(at, n, now-window)
				for range n {
					held = append(held, at)
				}
				grants = append(grants, at)
			case 3: // give back one earlier grant
				if len(grants) == 0 {
					continue
				}
				at := grants[int(b/4)%len(grants)]
				if r.Cancel(at, 1) == 1 {
					held = slices.Delete(held, slices.Index(held, at), slices.Index(held, at)+1)
				}
			}
			checkWindows(t, held, requests, window)
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
			t.Fatalf("%d units in the window ending at %d, limit %d: %v", hi-lo+1, at, requests, sorted)
		}
	}
}
