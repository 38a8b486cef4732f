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

// layoutFloor makes the Redis calls and the header codec that one grant of
// window.lua makes on a key it merges into (TIME, GETRANGE of the 256-byte
// head, unpack and pack of the header, SETRANGE of the head, of an entry
// and of a record), with none of its logic, and takes the arguments of a
// one-request reserve: what that key layout costs a grant before any rule
// is applied.
var layoutFloor = goredis.NewScript(`
local HFMT = '>c8I4I8I4I8I8BBBBBBBBI4I4I4I8I4I4I4I4I8I4I8I4I8I4I8'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local seen, k, n, max_wait = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5]), tonumber(ARGV[6])
local count, r, w, p, known = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local v = redis.call('GETRANGE', KEYS[1], 0, 255)
if #v < 256 then v = 'rlwin\0\0\3' .. string.rep('\0', 248) end
local h = { struct.unpack(HFMT, v) }
redis.call('SETRANGE', KEYS[1], 0, struct.pack(HFMT, unpack(h, 1, 29)) .. string.sub(v, 129, 256))
redis.call('SETRANGE', KEYS[1], 1000, struct.pack('>I4I4', now % 4294967296, n))
redis.call('SETRANGE', KEYS[1], 600, ARGV[4] .. struct.pack('>I8I4', now, n))
return {1, 1, 0, now, 0, 0, 0, now}
`)
