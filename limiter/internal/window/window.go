// Package window implements the reservation rule of package limiter on a
// list of entries, one per tick that holds units. It is the Go twin of
// scripts/lua/window.lua: the memory backend runs it, and the differential
// tests hold the two to the same answers.
//
// Times are int64 in any unit (the memory backend uses nanoseconds, the Lua
// script microseconds), passed in by the caller so tests can drive time.
package window

import "sort"

// The bounds both twins keep (see window.lua's header).
const (
	// Fine is how many entries a limit may need per window before its
	// quota's tick grows coarser.
	Fine = 256
	// Span is how many ticks the widest window of a stored quota may
	// cover: its 4-byte ticks are read as the nearest to a reference.
	Span = 1 << 29
	// Horizon is how many ticks ahead of now a stored grant may lie.
	Horizon = 1 << 30
	// MaxEntries is how many entries a quota holds at most; a request
	// that needs another is refused (the queue is full).
	MaxEntries = 8192
	// MaxFreed is how many freed slots a quota keeps; a reservation given
	// back beyond them stays spent.
	MaxFreed = 32
)

// Limit is requests per window, in the caller's time unit.
type Limit struct {
	Requests int
	Window   int64
}

// Tick returns the tick a quota with limits is kept at: 1 unless the
// widest limit (the longest window, then the most requests) has more than
// Fine requests, or, when stored is true (window.lua's 4-byte ticks), its
// window spans more than Span ticks.
func Tick(limits []Limit, stored bool) int64 {
	var wide Limit
	for _, l := range limits {
		if l.Window > wide.Window || (l.Window == wide.Window && l.Requests > wide.Requests) {
			wide = l
		}
	}
	t := int64(1)
	if stored {
		t = max(t, ceilDiv(wide.Window, Span))
	}
	if wide.Requests > Fine {
		// A tick that divides the window (Fine/2 to Fine ticks per
		// window), so saturated grants, a window apart, stay on ticks and
		// lose nothing.
		fine := ceilDiv(wide.Window, Fine)
		for m := int64(Fine); m >= Fine/2; m-- {
			if wide.Window%m == 0 {
				fine = wide.Window / m
				break
			}
		}
		t = max(t, fine)
	}
	return t
}

// Widest returns the longest window among limits.
func Widest(limits []Limit) int64 {
	w := int64(0)
	for _, l := range limits {
		w = max(w, l.Window)
	}
	return w
}

func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b > 0 {
		q++
	}
	return q
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

type entry struct {
	tick int64 // units recorded at tick*Tick
	cum  int64 // units recorded up to and including this entry
}

type freed struct {
	tick  int64
	units int
}

// Window holds a quota's reservations: entries oldest first, and the slots
// freed by reservations given back while later ones stayed. The zero
// Window is empty, with a tick of 1. It is not safe for concurrent use.
type Window struct {
	tick  int64
	cum0  int64 // units recorded before the first entry kept
	ents  []entry
	freed []freed // by tick
}

// TickSize reports the window's tick.
func (w *Window) TickSize() int64 { return max(w.tick, 1) }

// Len reports how many entries the window keeps.
func (w *Window) Len() int { return len(w.ents) }

// Held reports how many units the window keeps.
func (w *Window) Held() int {
	if len(w.ents) == 0 {
		return 0
	}
	return int(w.ents[len(w.ents)-1].cum - w.cum0)
}

// Prepare drops what no window of length keep can need at now, and sets
// the tick: a window that holds nothing takes want; one whose tick is
// finer than want, or too fine for keep when stored, is re-ticked coarser.
func (w *Window) Prepare(now, keep, want int64, stored bool) {
	tick := w.TickSize()
	first := w.afterTick(floorDiv(now-keep, tick))
	if first > 0 {
		w.cum0 = w.ents[first-1].cum
		w.ents = w.ents[first:] // append moves the rest when it grows
	}
	w.freed = deleteFunc(w.freed, func(f freed) bool { return f.tick*tick < now })
	switch {
	case len(w.ents) == 0 && len(w.freed) == 0:
		w.tick = want
	case want > tick || (stored && ceilDiv(keep, tick) > Span):
		t := want
		if stored {
			t = max(t, ceilDiv(keep, Span))
		}
		w.retick(t)
	}
}

func deleteFunc[T any](s []T, del func(T) bool) []T {
	out := s[:0]
	for _, v := range s {
		if !del(v) {
			out = append(out, v)
		}
	}
	return out
}

// retick re-records every time at the coarser tick t, rounding up.
func (w *Window) retick(t int64) {
	old := w.TickSize()
	ents := w.ents[:0]
	for _, e := range w.ents {
		e.tick = ceilDiv(e.tick*old, t)
		if n := len(ents); n > 0 && ents[n-1].tick == e.tick {
			ents[n-1].cum = e.cum
		} else {
			ents = append(ents, e)
		}
	}
	w.ents = ents
	for i := range w.freed {
		w.freed[i].tick = ceilDiv(w.freed[i].tick*old, t)
	}
	w.tick = t
}

// afterTick returns the index of the first entry whose tick is after t.
func (w *Window) afterTick(t int64) int {
	return sort.Search(len(w.ents), func(i int) bool { return w.ents[i].tick > t })
}

// Latest returns the time of the newest reservation, 0 if none.
func (w *Window) Latest() int64 {
	if len(w.ents) == 0 {
		return 0
	}
	return w.ents[len(w.ents)-1].tick * w.TickSize()
}

// latestStart returns the earliest time a grant recorded with the newest
// reservation may have: the start of its tick (0 if none).
func (w *Window) latestStart() int64 {
	if len(w.ents) == 0 {
		return 0
	}
	return (w.ents[len(w.ents)-1].tick-1)*w.TickSize() + 1
}

// newest returns the time of the k-th newest unit, 1 ≤ k ≤ Held.
func (w *Window) newest(k int) int64 {
	want := int64(w.Held() - k + 1)
	i := sort.Search(len(w.ents), func(i int) bool { return w.ents[i].cum-w.cum0 >= want })
	return w.ents[i].tick * w.TickSize()
}

// UnitsAfter returns how many units are recorded after time t.
func (w *Window) UnitsAfter(t int64) int {
	i := w.afterTick(floorDiv(t, w.TickSize()))
	if i == len(w.ents) {
		return 0
	}
	before := w.cum0
	if i > 0 {
		before = w.ents[i-1].cum
	}
	return int(w.ents[len(w.ents)-1].cum - before)
}

// After returns the earliest time, from at on, at which n more units fit
// after the latest reservation under every one of limits.
func (w *Window) After(at int64, n int, limits []Limit) int64 {
	at = max(at, w.latestStart())
	h := w.Held()
	for _, l := range limits {
		if k := l.Requests - n + 1; h >= k {
			at = max(at, w.newest(k)+l.Window)
		}
	}
	return at
}

// Record appends n units granted at at, not before the latest; they are
// recorded at the tick at or after at.
func (w *Window) Record(at int64, n int) {
	t := ceilDiv(at, w.TickSize())
	cum := w.cum0
	if k := len(w.ents); k > 0 {
		cum = w.ents[k-1].cum
		if w.ents[k-1].tick == t {
			w.ents[k-1].cum += int64(n)
			return
		}
	}
	w.ents = append(w.ents, entry{tick: t, cum: cum + int64(n)})
}

// Full reports whether recording another entry at time at would pass a
// bound: MaxEntries, or (when stored) Horizon ticks ahead of now.
func (w *Window) Full(now, at int64, stored bool) bool {
	tick := w.TickSize()
	return len(w.ents)+1 > MaxEntries || (stored && ceilDiv(at, tick)-floorDiv(now, tick) > Horizon)
}

// FreedSlot finds a slot freed in every window, for n units, at or after
// from: the time, and each window's slot index. Like window.lua it takes
// the earliest slot of the first window that every other window also has
// at the same time.
func FreedSlot(ws []*Window, from int64, n int) (at int64, pick []int, ok bool) {
	w1 := ws[0]
	t1 := w1.TickSize()
	for i, f := range w1.freed {
		if f.units < n {
			continue
		}
		at = max(from, f.tick*t1) // the tick's end: never before the time given back
		if ceilDiv(at, t1) != f.tick {
			continue
		}
		pick = []int{i}
		for _, w := range ws[1:] {
			j := w.freedAt(ceilDiv(at, w.TickSize()), n)
			if j < 0 {
				break
			}
			pick = append(pick, j)
		}
		if len(pick) == len(ws) {
			return at, pick, true
		}
	}
	return 0, nil, false
}

func (w *Window) freedAt(tick int64, n int) int {
	for j, f := range w.freed {
		if f.tick == tick && f.units >= n {
			return j
		}
	}
	return -1
}

// Take grants n units of freed slot i.
func (w *Window) Take(i, n int) {
	w.freed[i].units -= n
	if w.freed[i].units == 0 {
		w.freed = append(w.freed[:i], w.freed[i+1:]...)
	}
}

// Remaining returns how many units could be granted at now without waiting
// under l: none while a reservation lies in the future (it is served
// first), else what the window ending now leaves free.
func (w *Window) Remaining(now int64, l Limit) int {
	if w.latestStart() > now {
		return 0
	}
	return max(0, l.Requests-w.UnitsAfter(now-l.Window))
}

// Used returns how many units were granted in the window of length window
// ending at now: after now-window, not after now (with the tick now falls
// in, where a grant made now is recorded).
func (w *Window) Used(now, window int64) int {
	return w.UnitsAfter(now-window) - w.UnitsAfter(ceilDiv(now, w.TickSize())*w.TickSize())
}

// Cancel gives back n units granted at at, and returns how many it gave
// back. The newest reservation's units are removed; units with later
// reservations after them become a freed slot, if their time has not come
// (now) and a slot is left; otherwise they stop counting.
func (w *Window) Cancel(at int64, n int, now int64) int {
	tick := w.TickSize()
	w.freed = deleteFunc(w.freed, func(f freed) bool { return f.tick*tick < now })
	t := ceilDiv(at, tick)
	i := w.afterTick(t) - 1
	if i < 0 || w.ents[i].tick != t {
		return 0
	}
	free := w.unitsAt(i)
	if j := w.freedAt(t, 1); j >= 0 {
		free -= w.freed[j].units
	}
	removed := min(n, free)
	switch {
	case removed <= 0:
		return 0
	case i == len(w.ents)-1:
		w.dropNewest(removed)
		// A freed slot that is now the newest is no slot: drop it too.
		for len(w.ents) > 0 {
			last := len(w.ents) - 1
			j := w.freedAt(w.ents[last].tick, w.unitsAt(last))
			if j < 0 {
				break
			}
			w.dropNewest(w.freed[j].units)
			w.freed = append(w.freed[:j], w.freed[j+1:]...)
		}
	case t*tick >= now && (w.freedAt(t, 1) >= 0 || len(w.freed) < MaxFreed):
		if j := w.freedAt(t, 1); j >= 0 {
			w.freed[j].units += removed
		} else {
			w.freed = append(w.freed, freed{tick: t, units: removed})
			sort.Slice(w.freed, func(a, b int) bool { return w.freed[a].tick < w.freed[b].tick })
		}
	default:
		// Its time has passed (or no slot is left): the units just stop
		// counting. Every later count drops by them.
		for k := i; k < len(w.ents); k++ {
			w.ents[k].cum -= int64(removed)
		}
		if w.unitsAt(i) == 0 {
			w.ents = append(w.ents[:i], w.ents[i+1:]...)
		}
	}
	return removed
}

func (w *Window) unitsAt(i int) int {
	before := w.cum0
	if i > 0 {
		before = w.ents[i-1].cum
	}
	return int(w.ents[i].cum - before)
}

func (w *Window) dropNewest(n int) {
	last := len(w.ents) - 1
	if w.unitsAt(last) <= n {
		w.ents = w.ents[:last]
		return
	}
	w.ents[last].cum -= int64(n)
}
