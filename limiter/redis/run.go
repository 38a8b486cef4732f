package redis

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/scripts/lua"
)

// script runs with EVALSHA and falls back to EVAL on NOSCRIPT, so a
// SCRIPT FLUSH or a restarted server costs one extra round trip, not an error.
var script = goredis.NewScript(lua.Window)

// runner runs window.lua on a client: as a Redis function (FCALL) where the
// server has them (Redis 7 and later) and the client may use them, else as
// a script (EVALSHA). A script defines its 40-odd helpers again on every
// call, which costs the server about as much as a call of redis_rate's
// whole GCRA; a function library defines them once, when it loads.
//
// A function that is not there (a new or restarted server, FUNCTION FLUSH)
// is loaded, and the call made again: one more round trip, as NOSCRIPT
// costs a script. A server without functions (Redis 6, miniredis), or an
// ACL that forbids FCALL or FUNCTION LOAD, makes the runner use the script
// from then on.
type runner struct {
	client      goredis.Scripter
	scriptsOnly atomic.Bool
}

// functionCaller is a client that can send FCALL: every go-redis client.
type functionCaller interface {
	FCall(ctx context.Context, function string, keys []string, args ...any) *goredis.Cmd
}

func newRunner(client goredis.Scripter) *runner {
	r := &runner{client: client}
	if _, ok := client.(functionCaller); !ok {
		r.scriptsOnly.Store(true)
	}
	return r
}

// run runs one operation of window.lua on keys.
func (r *runner) run(ctx context.Context, keys []string, args ...any) *goredis.Cmd {
	if !r.scriptsOnly.Load() {
		fc := r.client.(functionCaller)
		cmd := fc.FCall(ctx, lua.Function, keys, args...)
		err := cmd.Err()
		switch {
		case err == nil || !isReply(err):
			return cmd // answered, or not at all (a timeout, a broken connection)
		case strings.HasPrefix(err.Error(), "ERR Function not found"):
			if err := r.load(ctx); err == nil && !r.scriptsOnly.Load() {
				return fc.FCall(ctx, lua.Function, keys, args...)
			}
		case noFunctions(err):
			r.scriptsOnly.Store(true)
		default:
			return cmd // window.lua's own error reply
		}
	}
	return script.Run(ctx, r.client, keys, args...)
}

// load loads window.lua as a function library on every server that may
// hold the keys (every master of a cluster, every shard of a ring); where
// functions are not to be had, it loads the script, and the runner uses the
// script from then on. A transient refusal (see transient) is returned,
// and functions are tried again at the next call that finds none.
func (r *runner) load(ctx context.Context) error {
	if r.scriptsOnly.Load() {
		return script.Load(ctx, r.client).Err()
	}
	load := func(ctx context.Context, c *goredis.Client) error {
		return c.FunctionLoadReplace(ctx, lua.Library).Err()
	}
	var err error
	switch c := r.client.(type) {
	case *goredis.ClusterClient:
		err = c.ForEachMaster(ctx, load)
	case *goredis.Ring:
		err = c.ForEachShard(ctx, load)
	case interface {
		FunctionLoadReplace(ctx context.Context, code string) *goredis.StringCmd
	}:
		err = c.FunctionLoadReplace(ctx, lua.Library).Err()
	default:
		r.scriptsOnly.Store(true)
		return script.Load(ctx, r.client).Err()
	}
	if err != nil && isReply(err) && !transient(err) {
		// Refused for good: an old server, an ACL, another library
		// holding the name.
		r.scriptsOnly.Store(true)
		return script.Load(ctx, r.client).Err()
	}
	return err
}

// isReply reports whether err is an error reply from Redis.
func isReply(err error) bool {
	var reply goredis.Error
	return errors.As(err, &reply)
}

// transient reports whether err is a state a server passes through (a
// replica before a failover completes, a server loading its data, a
// cluster resharding).
func transient(err error) bool {
	for _, prefix := range []string{"READONLY", "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "BUSY"} {
		if strings.HasPrefix(err.Error(), prefix) {
			return true
		}
	}
	return false
}

// noFunctions reports whether err says functions cannot be used here: the
// server does not know the command (Redis 6, miniredis), or the user may
// not run it.
func noFunctions(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "ERR unknown command") || strings.HasPrefix(msg, "NOPERM")
}
