package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
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
		return fmt.Errorf("limiter/redis: pause of %v, want more than 0", d)
	}
	args := append([]any{"pause", micros(d)}, l.limitArg...)
	vals, err := script.Run(ctx, l.client, l.keys, args...).Int64Slice()
	if err != nil {
		return fmt.Errorf("limiter/redis: pause key %q: %w", l.keys[0], err)
	}
	if w := l.opts.watcher; w != nil && len(vals) == 2 {
		for _, k := range l.keys { // at once here; other processes hear it from Redis
			w.notify(k, vals[1])
		}
	}
	return nil
}

// Watcher listens for pauses set by any process on the server (one
// subscription per process), and tells the waiting callers of this
// process's limiters, so that no unit is granted inside a pause. Pass it to
// limiters with [WithWatcher]. It is safe for concurrent use.
type Watcher struct {
	pubsub *goredis.PubSub
	done   chan struct{}

	mu      sync.Mutex
	until   map[string]int64 // the latest pause end heard per key, µs
	waiters map[string]map[chan struct{}]struct{}
}

// NewWatcher subscribes to pause announcements through client and returns
// once Redis confirmed the subscription. Close it when done.
func NewWatcher(ctx context.Context, client goredis.UniversalClient) (*Watcher, error) {
	ps := client.Subscribe(ctx, pauseChannel)
	if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
		ps.Close()
		return nil, fmt.Errorf("limiter/redis: subscribe to %s: %w", pauseChannel, err)
	}
	w := &Watcher{pubsub: ps, done: make(chan struct{}), until: map[string]int64{}, waiters: map[string]map[chan struct{}]struct{}{}}
	go w.listen()
	return w, nil
}

func (w *Watcher) listen() {
	defer close(w.done)
	for msg := range w.pubsub.Channel() {
		fields := strings.Fields(msg.Payload)
		if len(fields) != 3 {
			continue
		}
		if until, err := strconv.ParseInt(fields[2], 10, 64); err == nil {
			w.notify(fields[0], until)
		}
	}
}

// notify records a pause of key until (µs) and wakes the waiters on key.
func (w *Watcher) notify(key string, until int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.until[key] = max(w.until[key], until)
	for ch := range w.waiters[key] {
		select {
		case ch <- struct{}{}:
		default: // already signalled
		}
	}
}

// watch registers a waiter on keys; the channel is signalled on each pause.
func (w *Watcher) watch(keys []string) (ch chan struct{}, stop func()) {
	ch = make(chan struct{}, 1)
	w.mu.Lock()
	for _, k := range keys {
		if w.waiters[k] == nil {
			w.waiters[k] = map[chan struct{}]struct{}{}
		}
		w.waiters[k][ch] = struct{}{}
	}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, k := range keys {
			delete(w.waiters[k], ch)
			if len(w.waiters[k]) == 0 {
				delete(w.waiters, k)
			}
		}
	}
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
