package limiter

import "time"

// EventKind says what a limiter did.
type EventKind int

// The kinds of [Event].
const (
	// EventGrant: units were granted; for a reservation, when its wait ended.
	EventGrant EventKind = iota + 1
	// EventDeny: TryAcquire refused, or Acquire refused because the grant would
	// come after the context's deadline. Nothing was recorded.
	EventDeny
	// EventCancel: a caller gave back a reservation it no longer needs.
	EventCancel
	// EventError: the backend failed. Either nothing was granted, or a
	// reservation could not be given back (it then stays reserved, which
	// only delays later callers); Err says which.
	EventError
	// EventFallbackEnter: a fallback limiter stopped using its backend after a
	// failure and grants from this replica's local share.
	EventFallbackEnter
	// EventFallbackLeave: the backend answered a probe; grants come from it again.
	EventFallbackLeave
	// EventLimitLowered: the limit of the quota Key was lowered to Limit, below
	// its configured one, because the API it guards refused a request that
	// was within it (see package descope's learned limits).
	EventLimitLowered
	// EventLimitRestored: a lowered limit of the quota Key expired; Limit, the
	// configured one, applies again.
	EventLimitRestored
	// EventLimitsDiffer: the quota Key stored other limits than this
	// limiter's Limit: another process uses other limits on it (as during a
	// rolling deploy that changes them). Each process keeps enforcing its
	// own; the key now stores this limiter's. Reported at most once a
	// window per limiter.
	EventLimitsDiffer
)

// String returns the kind's lower-case name.
func (k EventKind) String() string {
	switch k {
	case EventGrant:
		return "grant"
	case EventDeny:
		return "deny"
	case EventCancel:
		return "cancel"
	case EventError:
		return "error"
	case EventFallbackEnter:
		return "fallback-enter"
	case EventFallbackLeave:
		return "fallback-leave"
	case EventLimitLowered:
		return "limit-lowered"
	case EventLimitRestored:
		return "limit-restored"
	case EventLimitsDiffer:
		return "limits-differ"
	}
	return "unknown"
}

// Event describes one decision or failure of a limiter, for metrics and logs.
type Event struct {
	Kind EventKind
	// N is the number of units asked for.
	N int
	// At is the grant time (EventGrant, EventCancel), on the backend's clock: the Redis
	// server's TIME for the Redis backend.
	At time.Time
	// Wait is how long the caller waits for a EventGrant, or the RetryAfter of a
	// EventDeny.
	Wait time.Duration
	// Err is the backend's error (EventError only).
	Err error
	// Key is the quota whose limit changed (EventLimitLowered, EventLimitRestored).
	Key string
	// Limit is the quota's limit from now on (EventLimitLowered, EventLimitRestored).
	Limit Limit
}

// Observer receives an Event for every decision a limiter makes. Observe is
// called synchronously on the caller's goroutine, possibly from many
// goroutines at once, so it must be quick and safe for concurrent use.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to an [Observer].
type ObserverFunc func(Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }

// Observers returns an Observer that passes every event to each of os, in
// order. Nil observers are skipped.
func Observers(os ...Observer) Observer {
	var list []Observer
	for _, o := range os {
		if o != nil {
			list = append(list, o)
		}
	}
	return ObserverFunc(func(e Event) {
		for _, o := range list {
			o.Observe(e)
		}
	})
}
