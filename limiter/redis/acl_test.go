package redis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/internal/redistest"
	"github.com/descope-mgmt/ratelimit/limiter"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

// aclRule is the README's least-privilege user: the limiter's keys, its
// pause channel, and exactly the commands its script and client use.
const aclRule = "on >s3cret ~ratelimit:* &ratelimit:pause -@all +evalsha +eval +script|load +time +getrange +setrange +set +pexpire +publish +subscribe +ping +hello +type"

// aclFunctions is what the README adds to it to let the limiter run
// window.lua as a function: FCALL, and FUNCTION LOAD unless an operator
// loads the library (see the README).
const aclFunctions = " +fcall +function|load"

func TestLeastPrivilegeACLSufficesAndConfines(t *testing.T) {
	for _, tc := range []struct {
		name, rule string
		functions  bool
	}{
		{"scripts", aclRule, false},
		{"functions", aclRule + aclFunctions, true},
	} {
		t.Run(tc.name, func(t *testing.T) { leastPrivilege(t, tc.rule, tc.functions) })
	}
}

func leastPrivilege(t *testing.T, rule string, functions bool) {
	srv := redistest.Start(t)
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer admin.Close()
	ctx := t.Context()
	args := []any{"ACL", "SETUSER", "limiter"}
	for _, word := range strings.Fields(rule) {
		args = append(args, word)
	}
	require.NoError(t, admin.Do(ctx, args...).Err())
	require.NoError(t, admin.Set(ctx, "other:secret", "x", 0).Err())

	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr, Username: "limiter", Password: "s3cret"})
	defer c.Close()
	w, err := redislimiter.NewWatcher(ctx, c)
	require.NoError(t, err, "subscribing to pauses")
	defer w.Close()
	l, err := redislimiter.NewComposite(c, []limiter.Quota{
		{Key: "ratelimit:{p1}:a", Limits: []limiter.Limit{limiter.PerSecond(2)}},
		{Key: "ratelimit:{p1}:b", Limits: []limiter.Limit{limiter.PerMinute(100)}},
	}, redislimiter.WithWatcher(w))
	require.NoError(t, err)
	require.NoError(t, l.Load(ctx))
	require.NoError(t, l.Acquire(ctx, 2))
	d, err := l.TryAcquire(ctx, 1)
	require.NoError(t, err)
	assert.False(t, d.Allowed)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	require.NoError(t, l.Acquire(wctx, 1), "waiting works")
	_, err = l.Status(ctx)
	require.NoError(t, err)
	require.NoError(t, l.Pause(ctx, time.Millisecond))
	cctx, stop := context.WithCancel(ctx)
	go func() { time.Sleep(50 * time.Millisecond); stop() }()
	assert.ErrorIs(t, l.Acquire(cctx, 2), context.Canceled, "giving back works")

	fcalls, evals := commandCalls(t, admin, "fcall"), commandCalls(t, admin, "evalsha")
	t.Logf("figures: %d FCALL and %d EVALSHA calls", fcalls, evals)
	assert.Equal(t, functions, fcalls > 0, "run as a function")
	assert.Equal(t, functions, evals == 0, "run as a script")

	// And nothing else.
	for _, err := range []error{
		c.Get(ctx, "other:secret").Err(),
		c.Set(ctx, "other:x", "1", 0).Err(),
		c.Del(ctx, "ratelimit:{p1}:a").Err(),
		c.FlushAll(ctx).Err(),
		c.Eval(ctx, "return redis.call('GET', KEYS[1])", []string{"other:secret"}).Err(),
		c.Eval(ctx, "return redis.call('DEL', KEYS[1])", []string{"ratelimit:{p1}:a"}).Err(),
	} {
		assertDenied(t, err)
	}
	foreign, err := redislimiter.New(c, "other:quota", limiter.PerSecond(1))
	require.NoError(t, err)
	assertDenied(t, foreign.Acquire(ctx, 1))

	// A key of its pattern that holds other data: refused as not a quota
	// (TYPE names what it holds), not as a permission error.
	require.NoError(t, admin.HSet(ctx, "ratelimit:{p1}:hash", "f", "v").Err())
	hash, err := redislimiter.New(c, "ratelimit:{p1}:hash", limiter.PerSecond(1))
	require.NoError(t, err)
	_, err = hash.TryAcquire(ctx, 1)
	assert.ErrorIs(t, err, redislimiter.ErrNotAQuota)
	assert.ErrorContains(t, err, "holds a hash")
}

// assertDenied checks for Redis's permission errors: NOPERM for a command,
// and its wording inside a script.
func assertDenied(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	t.Logf("refused: %v", err)
	msg := err.Error()
	assert.True(t, strings.Contains(msg, "NOPERM") || strings.Contains(msg, "user executing the script can't"), "not a permission error: %v", err)
}
