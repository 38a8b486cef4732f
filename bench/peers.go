package main

import (
	"context"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// zsetLog is the plain sorted-set sliding log most hand-written Redis
// limiters use: trim, count, add. It answers {allowed, retry-after ms}.
var zsetLog = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, math.ceil((tonumber(oldest[2]) + window - now) / 1000)}
`)

type zsetLimiter struct {
	c      *goredis.Client
	key    string
	limit  int
	window time.Duration
	seq    func() int64
}

func (z zsetLimiter) allow(ctx context.Context) (bool, time.Duration, error) {
	r, err := zsetLog.Run(ctx, z.c, []string{z.key}, z.window.Microseconds(), z.limit, strconv.FormatInt(z.seq(), 10)).Int64Slice()
	if err != nil {
		return false, 0, err
	}
	return r[0] == 1, time.Duration(r[1]) * time.Millisecond, nil
}

var noop = goredis.NewScript(`return 1`)
