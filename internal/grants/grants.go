// Package grants measures a record of grants against a limit: the busiest
// window, utilisation and how evenly the grants were shared. The demo and
// the multi-process tests report the same figures through it.
package grants

import (
	"slices"
	"time"
)

// Grant is one unit granted to one worker.
type Grant struct {
	Replica, Worker int
	At              time.Time // on the quota's clock
}

// Figures summarises a record of grants.
type Figures struct {
	Grants int
	// Most is the largest number of grants in any window of the limit's
	// length; exact enforcement keeps it at or below the limit.
	Most int
	// Span is the time from the first grant to the last.
	Span time.Duration
	// Utilisation is Grants over the most an exact limiter could have
	// granted in Span, starting with a full window at the first grant.
	Utilisation float64
}

// Measure computes the figures of gs under requests per window. It sorts gs
// by time.
func Measure(gs []Grant, requests int, window time.Duration) Figures {
	if len(gs) == 0 {
		return Figures{}
	}
	slices.SortStableFunc(gs, func(a, b Grant) int { return a.At.Compare(b.At) })
	f := Figures{Grants: len(gs), Span: gs[len(gs)-1].At.Sub(gs[0].At)}
	// The busiest window ends at some grant: count grants in (at-window, at].
	lo := 0
	for hi, g := range gs {
		for !gs[lo].At.After(g.At.Add(-window)) {
			lo++
		}
		f.Most = max(f.Most, hi-lo+1)
	}
	possible := requests * (int(f.Span/window) + 1)
	f.Utilisation = float64(len(gs)) / float64(possible)
	return f
}

// Before counts the grants of gs made before t.
func Before(gs []Grant, t time.Time) int {
	n := 0
	for _, g := range gs {
		if g.At.Before(t) {
			n++
		}
	}
	return n
}

// Shares counts the grants of each worker, indexed replica*workers+worker,
// and of each replica, counting only grants at or after from.
func Shares(gs []Grant, replicas, workers int, from time.Time) (perWorker, perReplica []int) {
	perWorker, perReplica = make([]int, replicas*workers), make([]int, replicas)
	for _, g := range gs {
		if g.At.Before(from) {
			continue
		}
		perWorker[g.Replica*workers+g.Worker]++
		perReplica[g.Replica]++
	}
	return perWorker, perReplica
}

// Spread returns max(xs) - min(xs), or 0 for none.
func Spread(xs []int) int {
	if len(xs) == 0 {
		return 0
	}
	return slices.Max(xs) - slices.Min(xs)
}
