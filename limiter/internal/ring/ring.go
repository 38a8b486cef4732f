// Package ring implements the reservation rule of package limiter on a ring
// of grant times. It is the Go twin of scripts/lua/reserve.lua: the memory
// backend runs it, and the differential tests hold the two to the same answers.
//
// Times are int64 in any unit (the memory backend uses nanoseconds, the Lua
// script microseconds), passed in by the caller so tests can drive time.
package ring

// Ring holds the grant times of the newest units, one slot per unit, oldest
// first. Grants never go back in time, so the slots stay sorted, and the
// unit that decides whether n more fit in a window is found by index alone.
//
// The ring never drops a unit that may still count: when waiters queue more
// units than it holds, it grows, so giving reservations back is exact.
//
// A Ring is not safe for concurrent use; the zero Ring has no capacity.
type Ring struct {
	slots []int64 // slots[(head-k) mod len] is the k-th newest unit
	head  int     // where the next unit is written
	count int     // valid slots, at most len(slots)
}

// New returns an empty ring that remembers the newest capacity units, which
// must be at least the largest Requests it will be asked about.
func New(capacity int) *Ring {
	return &Ring{slots: make([]int64, capacity)}
}

// Len reports how many grant times the ring holds.
func (r *Ring) Len() int { return r.count }

// Newest returns the grant time of the k-th newest unit, 1 ≤ k ≤ Len.
func (r *Ring) Newest(k int) int64 {
	i := r.head - k
	if i < 0 {
		i += len(r.slots)
	}
	return r.slots[i]
}

// Earliest returns the earliest time, not before now, at which n more units
// may be granted under a limit of requests per window: not before the latest
// grant (first come, first served), and late enough that the window ending
// then holds at most requests units. It requires 1 ≤ n ≤ requests ≤ capacity.
func (r *Ring) Earliest(now int64, n, requests int, window int64) int64 {
	at := now
	if r.count > 0 {
		at = max(at, r.Newest(1))
	}
	// The n new units fit once the (requests-n+1)-th newest has left the window.
	if k := requests - n + 1; r.count >= k {
		at = max(at, r.Newest(k)+window)
	}
	return at
}

// Record appends n units granted at at, which must not be earlier than the
// newest unit. Units granted after keepAfter (now minus the longest window)
// may still count: if writing would drop one, the ring grows instead.
func (r *Ring) Record(at int64, n int, keepAfter int64) {
	if drop := r.count + n - len(r.slots); drop > 0 && r.Newest(r.count-drop+1) > keepAfter {
		r.grow(max(2*len(r.slots), r.count+n))
	}
	for range n {
		r.slots[r.head] = at
		r.head++
		if r.head == len(r.slots) {
			r.head = 0
		}
	}
	r.count = min(r.count+n, len(r.slots))
}

// Grow makes room for at least capacity units.
func (r *Ring) Grow(capacity int) {
	if capacity > len(r.slots) {
		r.grow(capacity)
	}
}

// grow moves the held units, oldest first, into a larger ring.
func (r *Ring) grow(capacity int) {
	slots := make([]int64, capacity)
	for k := r.count; k >= 1; k-- {
		slots[r.count-k] = r.Newest(k)
	}
	r.slots, r.head = slots, r.count%capacity
}

// newer returns how many of the held units were granted after t.
func (r *Ring) newer(t int64) int {
	// The k-th newest time falls as k grows: find the largest k with a time
	// after t by bisection.
	lo, hi := 0, r.count
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if r.Newest(mid) > t {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// Remaining returns how many units could be granted at now without waiting
// under a limit of requests per window: none while a reservation lies in the
// future (it is served first), else what the window ending now leaves free.
func (r *Ring) Remaining(now int64, requests int, window int64) int {
	if r.count > 0 && r.Newest(1) > now {
		return 0
	}
	return max(0, requests-r.newer(now-window))
}

// Used returns how many units were granted in the window of length window
// ending at now: after now-window, not after now.
func (r *Ring) Used(now, window int64) int {
	return r.newer(now-window) - r.newer(now)
}

// Cancel removes up to n units granted at exactly at, and moves the units
// granted after them back into their place. It returns how many it removed.
//
// Units with the same grant time are interchangeable, so removing any n of
// them leaves the state that the reservation's owner would have left.
func (r *Ring) Cancel(at int64, n int) int {
	after := r.newer(at)
	removed := min(n, r.newer(at-1)-after)
	if removed == 0 {
		return 0
	}
	// Slide the `after` newest units back over the removed ones, oldest first.
	dst := r.head - after - removed
	if dst < 0 {
		dst += len(r.slots)
	}
	for k := after; k >= 1; k-- {
		r.slots[dst] = r.Newest(k)
		dst++
		if dst == len(r.slots) {
			dst = 0
		}
	}
	r.head = dst
	r.count -= removed
	return removed
}
