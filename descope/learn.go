package descope

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/memory"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

// Learned limits.
//
// Descope's real limit can be lower than the route says: another plan,
// another client on the same project, a changed page. Our own count proves
// it: every request the transport sends was within its routes' limits, so a
// 429 means Descope counted more than we did, or allows less. The
// transport then lowers the limit of the quota that was fullest, to the
// number of requests Descope accepted in its window: what every replica
// sent in the window ending now, less the requests refused since the first
// 429 of that window (counted beside the quota, so that a burst refused at
// once is counted whole), and stores
// it beside the quota, where every replica reads it, including replicas
// that start later. Two guards keep a 429 that has another cause (a burst
// from another client) from doing lasting harm: one 429 lowers a limit to
// no less than half of what it was, and a lowered limit expires (see
// WithLearnedLimits). It is never raised above the configured limit: when
// it expires, the configured limit applies again, and if that is still too
// high, one more 429 lowers it again.

// DefaultLearnedLimitTTL is how long a lowered limit lasts by default.
const DefaultLearnedLimitTTL = time.Hour

// refusedKey counts the 429s of a quota within one window.
func refusedKey(quotaKey string) string { return quotaKey + ":refused" }

// LearnedKey is where the lowered limit of the quota key is stored in
// Redis: beside it, in the same Cluster slot. The value is the number of
// requests per the route's window; the key expires when the lowered limit
// does.
func LearnedKey(quotaKey string) string { return quotaKey + ":learned" }

// learnStore keeps lowered limits and reads how full a quota is.
type learnStore interface {
	// load returns the lowered limit stored for each key, 0 for none.
	load(ctx context.Context, keys []string) ([]int, error)
	// lower stores n for key for ttl, unless a lower value is stored, and
	// returns the value now stored.
	lower(ctx context.Context, key string, n int, ttl time.Duration) (int, error)
	// used returns how many units of key were granted in the window of the
	// given length ending now.
	used(ctx context.Context, key string, limit limiter.Limit) (int, error)
	// refused counts one more 429 of key and returns how many there were
	// since the first of them, within one window.
	refused(ctx context.Context, key string, window time.Duration) (int, error)
}

// redisLearnStore keeps lowered limits beside the quotas in Redis.
type redisLearnStore struct{ client goredis.UniversalClient }

// lowerScript sets KEYS[1] to ARGV[1] for ARGV[2] ms unless it holds a
// lower value; it returns the value held after.
var lowerScript = goredis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]))
local n = tonumber(ARGV[1])
if cur and cur <= n then return cur end
redis.call('SET', KEYS[1], n, 'PX', ARGV[2])
return n
`)

// refusedScript counts a 429 in KEYS[1], which lasts ARGV[1] ms from the
// first one.
var refusedScript = goredis.NewScript(`
local c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return c
`)

func (s redisLearnStore) refused(ctx context.Context, key string, window time.Duration) (int, error) {
	c, err := refusedScript.Run(ctx, s.client, []string{refusedKey(key)}, window.Milliseconds()).Int()
	if err != nil {
		return 0, fmt.Errorf("descope: count 429s of %q: %w", key, err)
	}
	return c, nil
}

func (s redisLearnStore) load(ctx context.Context, keys []string) ([]int, error) {
	out := make([]int, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	learned := make([]string, len(keys))
	for i, k := range keys {
		learned[i] = LearnedKey(k)
	}
	vals, err := s.client.MGet(ctx, learned...).Result()
	if err != nil {
		return nil, fmt.Errorf("descope: read learned limits: %w", err)
	}
	for i, v := range vals {
		if str, ok := v.(string); ok {
			fmt.Sscan(str, &out[i]) // a value we did not write reads as none
		}
	}
	return out, nil
}

func (s redisLearnStore) lower(ctx context.Context, key string, n int, ttl time.Duration) (int, error) {
	v, err := lowerScript.Run(ctx, s.client, []string{LearnedKey(key)}, n, ttl.Milliseconds()).Int()
	if err != nil {
		return 0, fmt.Errorf("descope: store learned limit of %q: %w", key, err)
	}
	return v, nil
}

func (s redisLearnStore) used(ctx context.Context, key string, limit limiter.Limit) (int, error) {
	l, err := redislimiter.New(s.client, key, limit)
	if err != nil {
		return 0, err
	}
	st, err := l.Status(ctx)
	return st.Used, err
}

// localLearnStore keeps lowered limits in one process.
type localLearnStore struct {
	store *memory.Store

	mu      sync.Mutex
	learned map[string]localLearned
	refusal map[string]localLearned // n: 429s since expires-window
}

type localLearned struct {
	n       int
	expires time.Time
}

func (s *localLearnStore) load(_ context.Context, keys []string) ([]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int, len(keys))
	now := time.Now()
	for i, k := range keys {
		if l, ok := s.learned[k]; ok && now.Before(l.expires) {
			out[i] = l.n
		}
	}
	return out, nil
}

func (s *localLearnStore) lower(_ context.Context, key string, n int, ttl time.Duration) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.learned[key]; ok && time.Now().Before(l.expires) && l.n <= n {
		return l.n, nil
	}
	s.learned[key] = localLearned{n: n, expires: time.Now().Add(ttl)}
	return n, nil
}

func (s *localLearnStore) refused(_ context.Context, key string, window time.Duration) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, now := s.refusal[key], time.Now()
	if !now.Before(r.expires) {
		r = localLearned{expires: now.Add(window)}
	}
	r.n++
	s.refusal[key] = r
	return r.n, nil
}

func (s *localLearnStore) used(_ context.Context, key string, limit limiter.Limit) (int, error) {
	return s.store.Used(key, limit.Window), nil
}

// learnFrom429 lowers the limit of the fullest of the quotas a refused
// request counted against, if our own count says it was within the limit
// that request was granted under (enforced, one per route). It runs on a
// context of its own: a caller that gives up must not cost every replica
// the lesson.
func (t *Transport) learnFrom429(matched []Route, enforced []int) {
	if t.learnTTL == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.ioTimeout)
	defer cancel()
	fullest, fullestUsed, fullestFill := -1, 0, -1.0
	for i, r := range matched {
		used, err := t.learn.used(ctx, t.key(r.name()), r.Limit)
		if err != nil {
			t.observe(limiter.Event{Kind: limiter.EventError, Key: t.key(r.name()), Err: err})
			return
		}
		if fill := float64(used) / float64(enforced[i]); fill > fullestFill {
			fullest, fullestUsed, fullestFill = i, used, fill
		}
	}
	if fullest < 0 || fullestUsed > enforced[fullest] {
		return // our own count was over the limit: nothing to learn
	}
	r := matched[fullest]
	key := t.key(r.name())
	refused, err := t.learn.refused(ctx, key, r.Limit.Window)
	if err != nil {
		t.observe(limiter.Event{Kind: limiter.EventError, Key: key, Err: err})
		return
	}
	n := max(fullestUsed-refused, (enforced[fullest]+1)/2, 1)
	if n >= t.effective(r).Requests {
		return // nothing lower than what is in force
	}
	stored, err := t.learn.lower(ctx, key, n, t.learnTTL)
	if err != nil {
		t.observe(limiter.Event{Kind: limiter.EventError, Key: key, Err: err})
		return
	}
	t.adopt(map[string]int{r.name(): min(stored, r.Limit.Requests)})
}

// refreshLearned reads every quota's stored lowered limit and adopts what
// changed: lowered by another replica, or expired.
func (t *Transport) refreshLearned(ctx context.Context) error {
	names := t.quotaNames()
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = t.key(n)
	}
	vals, err := t.learn.load(ctx, keys)
	if err != nil {
		return err
	}
	got := make(map[string]int, len(names))
	for i, n := range names {
		got[n] = vals[i]
	}
	t.adopt(got)
	return nil
}

// adopt sets the lowered limits given (0: none) and, if any changed, makes
// new limiters for the requests that follow. A limiter already waiting
// keeps the reservation it has.
func (t *Transport) adopt(learned map[string]int) {
	var events []limiter.Event
	t.mu.Lock()
	for name, n := range learned {
		conf, ok := t.configured[name]
		if !ok {
			continue
		}
		if n <= 0 || n >= conf.Requests {
			n = 0 // none, or not below the configured limit: never raised above it
		}
		if t.learned[name] == n {
			continue
		}
		if n == 0 {
			delete(t.learned, name)
			events = append(events, limiter.Event{Kind: limiter.EventLimitRestored, Key: t.key(name), Limit: conf})
		} else {
			t.learned[name] = n
			events = append(events, limiter.Event{Kind: limiter.EventLimitLowered, Key: t.key(name), Limit: limiter.Limit{Requests: n, Window: conf.Window}})
		}
	}
	if len(events) > 0 {
		clear(t.limiters)
	}
	t.mu.Unlock()
	for _, e := range events {
		t.observe(e)
	}
}

// effective is r's limit with the lowered limit of its quota, if any.
func (t *Transport) effective(r Route) limiter.Limit {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.effectiveLocked(r)
}

func (t *Transport) effectiveLocked(r Route) limiter.Limit {
	lim := r.Limit
	if n := t.learned[r.name()]; n > 0 && n < lim.Requests {
		lim.Requests = n
	}
	return lim
}

// watchLearned refreshes the lowered limits every interval until stop is
// closed.
func (t *Transport) watchLearned(interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), t.ioTimeout)
			if err := t.refreshLearned(ctx); err != nil && !errors.Is(err, context.Canceled) {
				t.observe(limiter.Event{Kind: limiter.EventError, Err: err})
			}
			cancel()
		}
	}
}
