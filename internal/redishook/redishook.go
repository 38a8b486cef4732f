// Package redishook counts the commands a go-redis client sends, for the
// figures the demo, the tests and the benchmarks report.
package redishook

import (
	"context"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
)

// Counter is a go-redis hook that counts the commands Match accepts (every
// command when Match is nil). Add it with client.AddHook.
type Counter struct {
	Match func(name string) bool
	n     atomic.Int64
}

// Scripts returns a Counter of script and function calls: EVAL, EVALSHA
// and FCALL.
func Scripts() *Counter {
	return &Counter{Match: func(name string) bool { return name == "evalsha" || name == "eval" || name == "fcall" }}
}

// Load returns how many commands were counted.
func (c *Counter) Load() int64 { return c.n.Load() }

// DialHook passes dials through.
func (c *Counter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

// ProcessHook counts each matching command.
func (c *Counter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if c.Match == nil || c.Match(cmd.Name()) {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook passes pipelines through uncounted.
func (c *Counter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}
