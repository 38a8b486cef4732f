package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/limiter"
)

// pauseChannel is where window.lua publishes "key now until" (µs) on every pause.
const pauseChannel = "ratelimit:pause"

// Pause holds every grant on l's quotas until d from now on the server's
// clock, for every process; see [limiter.Pauser]. Callers waiting in a
// process whose limiters have a [Watcher] give back reservations that fall
// inside the pause and queue again after it; without one, only new requests
// see the pause.
func (l *Limiter) Pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("limiter: pause of %v, want more than 0", d)
	}
	args := []any{"pause", micros(d)}
	for _, arg := range l.limitArg {
		args = append(args, arg...)
	}
	vals, err := l.script.run(ctx, l.keys, args...).Int64Slice()
	if err != nil {
		return fmt.Errorf("limiter/redis: pause key %q: %w", l.keys[0], err)
	}
	if w := l.opts.watcher; w != nil && len(vals) == 2 {
		for _, k := range l.keys { // at once here; other processes hear it from Redis
			w.notify(k, vals[0], vals[1])
		}
	}
	return nil
}

// Watcher listens for pauses set by any process on the server (one
// subscription per process), and tells the waiting callers of this
// process's limiters, so that no unit is granted inside a pause. Pass it to
// limiters with [WithWatcher]. It is safe for concurrent use.
//
// It forgets a key once the pauses it heard of have ended.
type Watcher struct {
	pubsub *goredis.PubSub
	done   chan struct{}

	mu      sync.Mutex
	until   map[string]int64 // the latest pause end heard per key, µs
	changed chan struct{}    // closed and replaced on every pause heard
}

// NewWatcher subscribes to pause announcements through client and returns
// once Redis confirmed the subscription. It takes a UniversalClient, not a
// Scripter, because it needs SUBSCRIBE; on a Cluster, announcements reach
// every node's subscribers. Close it when done.
func NewWatcher(ctx context.Context, client goredis.UniversalClient) (*Watcher, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: NewWatcher: client is nil", limiter.ErrInvalidConfig)
	}
	ps := client.Subscribe(ctx, pauseChannel)
	if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
		ps.Close()
		return nil, fmt.Errorf("limiter/redis: subscribe to %s: %w", pauseChannel, err)
	}
	w := &Watcher{pubsub: ps, done: make(chan struct{}), until: map[string]int64{}, changed: make(chan struct{})}
	go w.listen()
	return w, nil
}

func (w *Watcher) listen() {
	defer close(w.done)
	for msg := range w.pubsub.Channel() {
		if key, now, until, ok := parseAnnouncement(msg.Payload); ok {
			w.notify(key, now, until)
		}
	}
}

// parseAnnouncement reads "key now until" from the end: the key is every
// byte before the last two fields, spaces and all.
func parseAnnouncement(s string) (key string, now, until int64, ok bool) {
	i := strings.LastIndexByte(s, ' ')
	if i < 0 {
		return "", 0, 0, false
	}
	j := strings.LastIndexByte(s[:i], ' ')
	if j < 0 {
		return "", 0, 0, false
	}
	now, err1 := strconv.ParseInt(s[j+1:i], 10, 64)
	until, err2 := strconv.ParseInt(s[i+1:], 10, 64)
	return s[:j], now, until, err1 == nil && err2 == nil
}

// notify records a pause of key until (µs, server clock, announced at now)
// and wakes every waiter to check its reservation. Keys whose pauses ended
// before now are forgotten.
func (w *Watcher) notify(key string, now, until int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, u := range w.until {
		if u <= now {
			delete(w.until, k)
		}
	}
	w.until[key] = max(w.until[key], until)
	close(w.changed)
	w.changed = make(chan struct{})
}

// pauses returns the channel closed at the next pause heard.
func (w *Watcher) pauses() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// pauseEnd returns the end of the pause heard on key (µs, server clock), 0
// if none.
func (w *Watcher) pauseEnd(key string) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.until[key]
}

// pausedPast reports whether a pause heard on one of keys ends after at (µs).
func (w *Watcher) pausedPast(keys []string, at int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, k := range keys {
		if w.until[k] > at {
			return true
		}
	}
	return false
}

// Close ends the subscription and its goroutine.
func (w *Watcher) Close() error {
	err := w.pubsub.Close()
	<-w.done
	return err
}
