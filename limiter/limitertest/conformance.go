package limitertest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/limiter"
)

// Backend tells the conformance suite how to make limiters.
type Backend struct {
	// NewQuota creates a fresh quota under limit and returns a function that
	// opens a handle on it. Each handle stands for one replica (with its own
	// client, say); every handle shares the one quota.
	NewQuota func(t *testing.T, limit limiter.Limit) func() limiter.Limiter

	// Open, when set, enables the tests of composite limiters and pauses.
	// It creates a fresh namespace of quotas and returns a function that
	// opens a limiter over some of them: each call stands for one replica.
	// The limiters it returns must implement limiter.Pauser, and waiters
	// must re-queue when another replica pauses (for Redis: a Watcher).
	Open func(t *testing.T) func(quotas ...limiter.Quota) limiter.Limiter

	// Bubble runs every test inside a testing/synctest bubble. Set it for
	// backends on the time package's clock: waits take no real time and the
	// timing checks are exact. Without it the suite runs on the real clock,
	// with short windows and bounds derived from the time that passed.
	Bubble bool
}

// Run runs the conformance suite against b.
func Run(t *testing.T, b Backend) {
	for _, tc := range conformanceTests {
		t.Run(tc.name, func(t *testing.T) {
			if b.Bubble {
				synctest.Test(t, func(t *testing.T) { tc.run(newCase(t, b)) })
				return
			}
			t.Parallel()
			tc.run(newCase(t, b))
		})
	}
}

// testCase is one conformance test in progress.
type testCase struct {
	T       *testing.T
	Backend Backend
	// start is when the test's first grant was asked for: the waits the
	// test checks are counted from it. Tests set it with markFirstGrant.
	start time.Time
}

func newCase(t *testing.T, b Backend) *testCase {
	return &testCase{T: t, Backend: b}
}

// Quota opens a fresh quota, returning a handle factory.
func (c *testCase) Quota(limit limiter.Limit) func() limiter.Limiter {
	return c.Backend.NewQuota(c.T, limit)
}

// markFirstGrant records that the test is about to ask for its first grant:
// the waits it checks count from here.
func (c *testCase) markFirstGrant() { c.start = time.Now() }

// since is the time passed since the first grant; the test fails if it
// never marked one.
func (c *testCase) since() time.Duration {
	c.T.Helper()
	if c.start.IsZero() {
		c.T.Fatal("conformance test checks a wait without markFirstGrant before its first grant")
	}
	return time.Since(c.start)
}

// short is a window that passes quickly on the backend's clock.
func (c *testCase) short() time.Duration {
	if c.Backend.Bubble {
		return time.Minute // fake time: any length is free
	}
	return 250 * time.Millisecond
}

// assertWait checks a RetryAfter against want, a wait counted from the first
// grant on a quota: it can have shrunk by the time that has passed since
// then, never grown. In a bubble no time passes, so the check is exact.
func (c *testCase) assertWait(got, want time.Duration, msg string) {
	c.T.Helper()
	passed := c.since()
	assert.LessOrEqual(c.T, got, want, msg)
	assert.GreaterOrEqual(c.T, got, want-passed-time.Microsecond, msg) // µs: Redis's resolution
}

var conformanceTests = []struct {
	name string
	run  func(c *testCase)
}{
	{"TryAcquireGrantsUpToLimit", testTryAcquireGrantsUpToLimit},
	{"TryAcquireManyUnits", testTryAcquireManyUnits},
	{"DenialRecordsNothing", testDenialRecordsNothing},
	{"BadNFailsAndConsumesNothing", testBadN},
	{"DoneContextConsumesNothing", testDoneContext},
	{"WindowSlides", testWindowSlides},
	{"AcquireWaitsForTheWindow", testAcquireWaits},
	{"FirstComeFirstServedAcrossReplicas", testFIFO},
	{"DeadlineTooSoonFailsAtOnce", testDeadlineTooSoon},
	{"CancelGivesBackOnlyItsOwnReservation", testCancelWhileWaiting},
	{"CancelAfterALongQueueDoesNotOverAdmit", testCancelAfterLongQueue},
	{"ConcurrentTryAcquireIsExact", testConcurrentTryAcquire},
	{"SharedAcrossReplicas", testSharedAcrossReplicas},
	{"AcquireUnderContentionStaysWithinLimit", testAcquireContention},
	{"CompositeGrantsOnlyWhenEveryQuotaAllows", testComposite},
	{"SeveralLimitsOnOneQuota", testSeveralLimits},
	{"PauseHoldsNewGrants", testPauseHoldsGrants},
	{"PauseRequeuesWaiters", testPauseRequeuesWaiters},
}

// open skips the test if the backend has no Open.
func (c *testCase) open() func(quotas ...limiter.Quota) limiter.Limiter {
	if c.Backend.Open == nil {
		c.T.Skip("backend has no composite limiters")
	}
	return c.Backend.Open(c.T)
}

func quota(key string, limits ...limiter.Limit) limiter.Quota {
	return limiter.Quota{Key: key, Limits: limits}
}

func testTryAcquireGrantsUpToLimit(c *testCase) {
	l := c.Quota(limiter.PerHour(5))()
	c.markFirstGrant()
	ctx := c.T.Context()
	for i := range 5 {
		d, err := l.TryAcquire(ctx, 1)
		require.NoError(c.T, err)
		assert.True(c.T, d.Allowed, "grant %d", i+1)
		assert.Equal(c.T, 4-i, d.Remaining, "remaining after grant %d", i+1)
		assert.Zero(c.T, d.RetryAfter)
	}
	d, err := l.TryAcquire(ctx, 1)
	require.NoError(c.T, err)
	assert.False(c.T, d.Allowed, "sixth unit in one window")
	assert.Zero(c.T, d.Remaining)
	c.assertWait(d.RetryAfter, time.Hour, "the first unit leaves the window an hour after it was granted")
}

func testTryAcquireManyUnits(c *testCase) {
	l := c.Quota(limiter.PerHour(10))()
	c.markFirstGrant()
	ctx := c.T.Context()
	d, err := l.TryAcquire(ctx, 4)
	require.NoError(c.T, err)
	assert.Equal(c.T, limiter.Decision{Allowed: true, Remaining: 6}, d)

	d, err = l.TryAcquire(ctx, 7)
	require.NoError(c.T, err)
	assert.False(c.T, d.Allowed, "7 more do not fit beside 4 in 10")
	assert.Equal(c.T, 6, d.Remaining, "a denial still reports what could be granted now")
	c.assertWait(d.RetryAfter, time.Hour, "7 fit once the first 4 leave")

	d, err = l.TryAcquire(ctx, 6)
	require.NoError(c.T, err)
	assert.Equal(c.T, limiter.Decision{Allowed: true, Remaining: 0}, d)
}

func testDenialRecordsNothing(c *testCase) {
	l := c.Quota(limiter.PerHour(3))()
	ctx := c.T.Context()
	d, err := l.TryAcquire(ctx, 2)
	require.NoError(c.T, err)
	require.True(c.T, d.Allowed)
	for range 3 {
		d, err = l.TryAcquire(ctx, 2)
		require.NoError(c.T, err)
		require.False(c.T, d.Allowed)
	}
	d, err = l.TryAcquire(ctx, 1)
	require.NoError(c.T, err)
	assert.True(c.T, d.Allowed, "denied requests must not have taken the last unit")
}

func testBadN(c *testCase) {
	l := c.Quota(limiter.PerHour(5))()
	ctx := c.T.Context()
	for _, tc := range []struct {
		n    int
		want error
		text string
	}{
		{0, limiter.ErrInvalidN, "n=0"},
		{-3, limiter.ErrInvalidN, "n=-3"},
		{6, limiter.ErrExceedsLimit, "n=6 exceeds limit 5/1h"},
	} {
		err := l.Acquire(ctx, tc.n)
		assert.ErrorIs(c.T, err, tc.want, "Acquire(%d)", tc.n)
		assert.ErrorContains(c.T, err, tc.text)
		_, err = l.TryAcquire(ctx, tc.n)
		assert.ErrorIs(c.T, err, tc.want, "TryAcquire(%d)", tc.n)
		assert.ErrorContains(c.T, err, tc.text)
	}
	d, err := l.TryAcquire(ctx, 5)
	require.NoError(c.T, err)
	assert.True(c.T, d.Allowed, "bad requests must consume nothing")
}

func testDoneContext(c *testCase) {
	l := c.Quota(limiter.PerHour(1))()
	ctx, cancel := context.WithCancel(c.T.Context())
	cancel()
	assert.ErrorIs(c.T, l.Acquire(ctx, 1), context.Canceled)
	_, err := l.TryAcquire(ctx, 1)
	assert.ErrorIs(c.T, err, context.Canceled)
	d, err := l.TryAcquire(c.T.Context(), 1)
	require.NoError(c.T, err)
	assert.True(c.T, d.Allowed, "a call with a done context must consume nothing")
}

func testWindowSlides(c *testCase) {
	w := c.short()
	l := c.Quota(limiter.Limit{Requests: 3, Window: w})()
	c.markFirstGrant()
	ctx := c.T.Context()
	d, err := l.TryAcquire(ctx, 3)
	require.NoError(c.T, err)
	require.True(c.T, d.Allowed)
	d, err = l.TryAcquire(ctx, 1)
	require.NoError(c.T, err)
	require.False(c.T, d.Allowed)
	c.assertWait(d.RetryAfter, w, "a full window")
	if c.Backend.Bubble {
		time.Sleep(w - time.Nanosecond)
		d, err = l.TryAcquire(ctx, 1)
		require.NoError(c.T, err)
		assert.Equal(c.T, limiter.Decision{RetryAfter: time.Nanosecond}, d, "one tick before the window ends")
	}
	time.Sleep(d.RetryAfter)
	d, err = l.TryAcquire(ctx, 3)
	require.NoError(c.T, err)
	assert.Equal(c.T, limiter.Decision{Allowed: true, Remaining: 0}, d, "a whole new window once the old units leave")
}

func testAcquireWaits(c *testCase) {
	w := c.short()
	l := c.Quota(limiter.Limit{Requests: 2, Window: w})()
	ctx := c.T.Context()
	start := time.Now()
	require.NoError(c.T, l.Acquire(ctx, 1))
	require.NoError(c.T, l.Acquire(ctx, 1))
	assert.Less(c.T, time.Since(start), w, "the first two fit in one window")
	require.NoError(c.T, l.Acquire(ctx, 1))
	waited := time.Since(start)
	assert.GreaterOrEqual(c.T, waited, w, "the third waits until the first leaves the window")
	if c.Backend.Bubble {
		assert.Equal(c.T, w, waited)
	}
}

func testFIFO(c *testCase) {
	w := c.short()
	open := c.Quota(limiter.Limit{Requests: 1, Window: w})
	c.markFirstGrant()
	probe := open()
	ctx := c.T.Context()
	require.NoError(c.T, open().Acquire(ctx, 1))
	start := c.start // set by markFirstGrant above
	// Replicas queue one after the other; each must wake in the order it
	// asked, its unit a window after the one before.
	const replicas = 3
	var (
		mu    sync.Mutex
		order []int
		woke  = make([]time.Duration, replicas)
		wg    sync.WaitGroup
	)
	for i := range replicas {
		l := open()
		wg.Go(func() {
			assert.NoError(c.T, l.Acquire(ctx, 1))
			mu.Lock()
			order = append(order, i)
			woke[i] = time.Since(start)
			mu.Unlock()
		})
		// Replica i holds the unit at (i+1) windows: the next free one is at i+2.
		c.waitForWait(probe, 1, time.Duration(i)*w+w+w/2)
	}
	wg.Wait()
	assert.Equal(c.T, []int{0, 1, 2}, order)
	for i := range replicas {
		assert.GreaterOrEqual(c.T, woke[i], time.Duration(i+1)*w, "replica %d's unit is %d windows after the first", i, i+1)
	}
}

func testDeadlineTooSoon(c *testCase) {
	l := c.Quota(limiter.PerHour(1))()
	c.markFirstGrant()
	require.NoError(c.T, l.Acquire(c.T.Context(), 1))
	ctx, cancel := context.WithTimeout(c.T.Context(), 10*time.Minute)
	defer cancel()
	err := l.Acquire(ctx, 1)
	assert.ErrorIs(c.T, err, context.DeadlineExceeded)
	assert.NoError(c.T, ctx.Err(), "Acquire must fail at once, not wait for the deadline")
	d, err := l.TryAcquire(c.T.Context(), 1)
	require.NoError(c.T, err)
	c.assertWait(d.RetryAfter, time.Hour, "the refused Acquire must have reserved nothing")
}

func testCancelWhileWaiting(c *testCase) {
	open := c.Quota(limiter.PerHour(2))
	c.markFirstGrant()
	ctx := c.T.Context()
	first, probe := open(), open()
	require.NoError(c.T, first.Acquire(ctx, 2))

	// Two replicas queue behind the full window: the first to ask is
	// cancelled, the second must keep its place.
	cctx, cancel := context.WithCancel(ctx)
	cancelled := make(chan error, 1)
	go func() { cancelled <- open().Acquire(cctx, 1) }()
	// One unit queued at +1h: two units now wait for it to leave, at +2h.
	c.waitForWait(probe, 2, 90*time.Minute)
	kept := make(chan error, 1)
	kctx, stopKept := context.WithCancel(ctx)
	defer stopKept()
	go func() { kept <- open().Acquire(kctx, 1) }()
	// Two units queued at +1h: one unit now waits for the first to leave.
	c.waitForWait(probe, 1, 90*time.Minute)

	cancel()
	err := <-cancelled
	assert.ErrorIs(c.T, err, context.Canceled)

	d, err := probe.TryAcquire(ctx, 1)
	require.NoError(c.T, err)
	c.assertWait(d.RetryAfter, time.Hour, "with the cancelled unit gone, one more fits beside the kept one")
	d, err = probe.TryAcquire(ctx, 2)
	require.NoError(c.T, err)
	c.assertWait(d.RetryAfter, 2*time.Hour, "the kept reservation must still be there")

	stopKept()
	assert.ErrorIs(c.T, <-kept, context.Canceled)
}

// Waiters may queue more units than a window holds. When they give them
// back, the units granted before them must still count.
func testCancelAfterLongQueue(c *testCase) {
	open := c.Quota(limiter.PerHour(2))
	c.markFirstGrant()
	ctx := c.T.Context()
	probe := open()
	require.NoError(c.T, open().Acquire(ctx, 2))
	wctx, cancel := context.WithCancel(ctx)
	errs := make(chan error, 2)
	go func() { errs <- open().Acquire(wctx, 2) }() // queued at +1h
	c.waitForWait(probe, 1, 90*time.Minute)
	go func() { errs <- open().Acquire(wctx, 2) }() // queued at +2h
	c.waitForWait(probe, 1, 150*time.Minute)
	cancel()
	for range 2 {
		assert.ErrorIs(c.T, <-errs, context.Canceled)
	}
	d, err := probe.TryAcquire(ctx, 1)
	require.NoError(c.T, err)
	assert.False(c.T, d.Allowed, "the two units granted first are still in the window")
	c.assertWait(d.RetryAfter, time.Hour, "they leave an hour after the first grant")
}

// waitForWait polls until n units would have to wait more than over,
// counted from the first grant, which shows that another goroutine's
// reservation is in place.
func (c *testCase) waitForWait(l limiter.Limiter, n int, over time.Duration) {
	c.T.Helper()
	for range 2000 {
		if c.Backend.Bubble {
			synctest.Wait()
		}
		d, err := l.TryAcquire(c.T.Context(), n)
		require.NoError(c.T, err)
		if d.RetryAfter+c.since() > over {
			return
		}
		if !c.Backend.Bubble {
			time.Sleep(2 * time.Millisecond)
		}
	}
	c.T.Fatalf("no reservation appeared: %d units never had to wait past %v", n, over)
}

func testConcurrentTryAcquire(c *testCase) {
	open := c.Quota(limiter.PerHour(10))
	ctx := c.T.Context()
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range 5 {
		l := open()
		for range 10 {
			wg.Go(func() {
				d, err := l.TryAcquire(ctx, 1)
				assert.NoError(c.T, err)
				if d.Allowed {
					granted.Add(1)
				}
			})
		}
	}
	wg.Wait()
	assert.EqualValues(c.T, 10, granted.Load(), "50 callers on 5 replicas, 10 units")
}

func testSharedAcrossReplicas(c *testCase) {
	open := c.Quota(limiter.PerHour(4))
	a, b := open(), open()
	ctx := c.T.Context()
	for _, l := range []limiter.Limiter{a, b, a, b} {
		d, err := l.TryAcquire(ctx, 1)
		require.NoError(c.T, err)
		require.True(c.T, d.Allowed)
	}
	for _, l := range []limiter.Limiter{a, b} {
		d, err := l.TryAcquire(ctx, 1)
		require.NoError(c.T, err)
		assert.False(c.T, d.Allowed, "the replicas share one quota of 4")
	}
}

func testAcquireContention(c *testCase) {
	w := c.short()
	limit := limiter.Limit{Requests: 5, Window: w}
	open := c.Quota(limit)
	ctx, cancel := context.WithTimeout(c.T.Context(), 3*w+w/2)
	defer cancel()
	start := time.Now()
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range 3 {
		l := open()
		for range 4 {
			wg.Go(func() {
				// Bounded, so a limiter that never waits fails the test instead
				// of spinning forever on a clock that does not move.
				for range 100 * limit.Requests {
					err := l.Acquire(ctx, 1)
					if err != nil {
						assert.True(c.T, errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled), "unexpected error: %v", err)
						return
					}
					granted.Add(1)
				}
			})
		}
	}
	wg.Wait()
	span := time.Since(start)
	// Every grant lies in [start, start+span]: at most 5 per window there.
	most := int64(limit.Requests) * (int64(span/w) + 1)
	assert.LessOrEqual(c.T, granted.Load(), most, "grants in %v", span)
	// Demand exceeds supply for 3.5 windows: grants at 0, 1, 2 and 3
	// windows fit before the deadline, the next would not.
	assert.GreaterOrEqual(c.T, granted.Load(), int64(4*limit.Requests), "utilisation under contention")
}

func testComposite(c *testCase) {
	open := c.open()
	ctx := c.T.Context()
	// A request to "create" counts against create and against mgmt.
	create := open(quota("create", limiter.PerHour(2)), quota("mgmt", limiter.PerHour(3)))
	mgmt := open(quota("mgmt", limiter.PerHour(3)))

	d, err := create.TryAcquire(ctx, 1)
	require.NoError(c.T, err)
	assert.Equal(c.T, limiter.Decision{Allowed: true, Remaining: 1}, d, "create has 1 left, mgmt 2: the smaller")
	d, err = mgmt.TryAcquire(ctx, 1)
	require.NoError(c.T, err)
	assert.Equal(c.T, limiter.Decision{Allowed: true, Remaining: 1}, d, "mgmt counts the create too")
	d, err = create.TryAcquire(ctx, 1)
	require.NoError(c.T, err)
	assert.Equal(c.T, limiter.Decision{Allowed: true, Remaining: 0}, d)
	for _, l := range []limiter.Limiter{create, mgmt} {
		d, err = l.TryAcquire(ctx, 1)
		require.NoError(c.T, err)
		assert.False(c.T, d.Allowed, "mgmt is full: 2 creates and 1 other")
	}
	err = create.Acquire(ctx, 3)
	assert.ErrorIs(c.T, err, limiter.ErrExceedsLimit, "3 units never fit create's 2")
}

func testSeveralLimits(c *testCase) {
	open := c.open()
	c.markFirstGrant()
	w := c.short()
	l := open(quota("q", limiter.Limit{Requests: 3, Window: w}, limiter.PerHour(5)))
	ctx := c.T.Context()
	d, err := l.TryAcquire(ctx, 3)
	require.NoError(c.T, err)
	assert.Equal(c.T, limiter.Decision{Allowed: true, Remaining: 0}, d)
	d, err = l.TryAcquire(ctx, 1)
	require.NoError(c.T, err)
	require.False(c.T, d.Allowed)
	c.assertWait(d.RetryAfter, w, "the short window decides first")
	time.Sleep(d.RetryAfter)
	d, err = l.TryAcquire(ctx, 2)
	require.NoError(c.T, err)
	assert.Equal(c.T, limiter.Decision{Allowed: true, Remaining: 0}, d, "2 more fit the short window, the hour is now full")
	time.Sleep(w)
	d, err = l.TryAcquire(ctx, 1)
	require.NoError(c.T, err)
	assert.False(c.T, d.Allowed, "5 in the hour")
	c.assertWait(d.RetryAfter, time.Hour, "the hourly limit decides now")
}

func testPauseHoldsGrants(c *testCase) {
	open := c.open()
	c.markFirstGrant()
	w := c.short()
	l := open(quota("q", limiter.PerHour(10)))
	ctx := c.T.Context()
	require.NoError(c.T, l.(limiter.Pauser).Pause(ctx, w))
	other := open(quota("q", limiter.PerHour(10))) // another replica
	d, err := other.TryAcquire(ctx, 1)
	require.NoError(c.T, err)
	assert.False(c.T, d.Allowed, "paused for every replica")
	c.assertWait(d.RetryAfter, w, "until the pause ends")
	assert.Zero(c.T, d.Remaining)
	time.Sleep(d.RetryAfter)
	d, err = other.TryAcquire(ctx, 1)
	require.NoError(c.T, err)
	assert.True(c.T, d.Allowed, "after the pause")
}

func testPauseRequeuesWaiters(c *testCase) {
	open := c.open()
	c.markFirstGrant()
	w := c.short()
	limit := limiter.Limit{Requests: 1, Window: w}
	first, waiter, pauser := open(quota("q", limit)), open(quota("q", limit)), open(quota("q", limit))
	ctx := c.T.Context()
	require.NoError(c.T, first.Acquire(ctx, 1))
	start := c.start // set by markFirstGrant above
	woke := make(chan time.Duration, 1)
	go func() {
		assert.NoError(c.T, waiter.Acquire(ctx, 1)) // reserved a window from now
		woke <- time.Since(start)
	}()
	c.waitForWait(pauser, 1, w+w/2)
	// Another replica is told to back off for three windows.
	require.NoError(c.T, pauser.(limiter.Pauser).Pause(ctx, 3*w))
	got := <-woke
	assert.GreaterOrEqual(c.T, got, 3*w, "the waiter's unit fell inside the pause: it re-queued after it")
	if c.Backend.Bubble {
		assert.Equal(c.T, 3*w, got, "and was first after the pause")
	}
}
