package memory

import (
	"fmt"
	"sync"
	"time"

	"github.com/descope-mgmt/ratelimit/internal/option"
	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/internal/acquire"
	"github.com/descope-mgmt/ratelimit/limiter/internal/window"
)

// Store holds named quotas in memory. Limiters made from one Store share the
// quotas they name: the in-process counterpart of keys in one Redis. It is
// safe for concurrent use; create one with [NewStore].
type Store struct {
	start time.Time // times are nanoseconds since start, on the monotonic clock

	mu     sync.Mutex
	quotas map[string]*quota
	paused chan struct{} // closed and replaced on every pause
}

type quota struct {
	w           *window.Window
	longest     int64 // the longest window any limiter uses on it, ns
	pausedUntil int64
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{start: time.Now(), quotas: map[string]*quota{}, paused: make(chan struct{})}
}

func (s *Store) now() int64 { return int64(time.Since(s.start)) }

func (s *Store) wallTime(t int64) time.Time { return s.start.Add(time.Duration(t)) }

func (s *Store) pauses() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused
}

// Used returns how many units of the quota key were granted in the window
// of length window ending now: the memory twin of the Redis backend's
// Status.Used. A key no limiter of the store names has none.
func (s *Store) Used(key string, window time.Duration) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.quotas[key]
	if q == nil {
		return 0
	}
	return q.w.Used(s.now(), int64(window))
}

// NewComposite returns a limiter that grants a request only at a time every
// one of quotas allows, recording it in all of them at once. Quotas with
// the same key in one Store are one quota, whichever limiter names them;
// every limiter should give a key the same limits. It fails with an error
// matching limiter.ErrInvalidLimit for a limit it cannot enforce, and
// limiter.ErrInvalidConfig for no quotas, a key named twice, or a bad
// option.
func (s *Store) NewComposite(quotas []limiter.Quota, opts ...Option) (*Limiter, error) {
	if len(quotas) == 0 {
		return nil, fmt.Errorf("%w: no quotas", limiter.ErrInvalidConfig)
	}
	seen := map[string]bool{}
	for _, q := range quotas {
		if err := q.Validate(); err != nil {
			return nil, err
		}
		if seen[q.Key] {
			return nil, fmt.Errorf("%w: quota %q named twice; give one quota several limits instead", limiter.ErrInvalidConfig, q.Key)
		}
		seen[q.Key] = true
	}
	var o options
	if err := option.Apply(&o, opts); err != nil {
		return nil, err
	}
	l := &Limiter{store: s, given: acquire.CloneQuotas(quotas)}
	enforced, err := acquire.Widen(quotas, o.margin)
	if err != nil {
		return nil, err
	}
	l.loop = acquire.Loop{Backend: storage{l}, Tightest: acquire.Tightest(enforced), Observer: o.observer}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range enforced {
		limits := make([]window.Limit, len(q.Limits))
		for i, lim := range q.Limits {
			limits[i] = window.Limit{Requests: lim.Requests, Window: int64(lim.Window)}
		}
		st := s.quotas[q.Key]
		if st == nil {
			st = &quota{w: new(window.Window)}
			s.quotas[q.Key] = st
		}
		st.longest = max(st.longest, window.Widest(limits))
		l.quotas = append(l.quotas, st)
		l.limits = append(l.limits, limits)
		l.ticks = append(l.ticks, window.Tick(limits, false))
		l.windows = append(l.windows, st.w)
	}
	return l, nil
}
