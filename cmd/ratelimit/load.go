package main

import (
	"context"
	"fmt"
	"io"

	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/scripts/lua"
)

// runLoad loads window.lua into a server for limiters whose ACL may call
// functions (FCALL) but not load them: an operator runs it once per
// release, with a user that may.
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("load", "Loads window.lua into Redis as a function library (Redis 7 and later; every\nmaster of a cluster is reached through the one given), so that limiters\nwhose ACL allows FCALL but not FUNCTION LOAD run it as a function. Run it\nonce per release, with a user that may run FUNCTION LOAD. Where the server\nhas no functions, it loads the script.", stdout)
	redisArg := redisFlag(fs, "Redis URL")
	if err := parse(fs, args); err != nil {
		return err
	}
	client, err := connect(ctx, redisURL(*redisArg))
	if err != nil {
		return err
	}
	defer client.Close()
	// The key is never read or written: Load only loads the code.
	l, err := newLimiter(client, "ratelimit:{load}", limiter.PerSecond(1))
	if err != nil {
		return err
	}
	if err := l.Load(ctx); err != nil {
		return failedf("%v", err)
	}
	libs, err := client.FunctionList(ctx, goredis.FunctionListQuery{LibraryNamePattern: lua.Function}).Result()
	if err == nil && len(libs) == 1 {
		fmt.Fprintf(stdout, "loaded: function library %s (FCALL %s)\n", lua.Function, lua.Function)
		return nil
	}
	fmt.Fprintln(stdout, "loaded: window.lua as a script (this server or user has no functions; limiters run it with EVALSHA)")
	return nil
}
