-- window.lua: the sliding-window quota of package limiter, in one atomic step.
--
-- The rule (see limiter/doc.go): n units are granted at the earliest time at
-- that is not before now, not before the latest grant (first come, first
-- served), not inside a pause, and such that no window of length W ending at
-- at holds more than R units.
--
-- Each quota key is a string: a 136-byte header, then a ring of grant times.
-- Every number is an unsigned 8-byte big-endian integer; times are
-- microseconds on this server's clock (TIME), so clients with skewed clocks
-- agree.
--   header: magic "rlwin" 0 0 1 (format 1) | capacity | paused until |
--           expiry set (ms) | head (next slot to write) | count (valid
--           slots) | latest grant | limits stored (0..4) |
--           4 x (requests, window µs) | limits changed at
--   (a grant changes only head, count and latest: it rewrites 24 bytes)
--   ring:   slot (head-k) mod capacity holds the k-th newest unit's grant time.
-- The quota describes itself: every writer stores its limits in the header
-- (the first four), and when it finds other limits stored (replicas that
-- disagree, as in a rolling deploy) it stores its own and the time, and
-- says so. Each caller enforces the limits it passes; status uses the
-- stored ones when it is given none. A key that holds anything else (no
-- magic, another type) is never read as a quota nor overwritten: every
-- operation fails with "not a quota".
-- The capacity starts at the largest limit, and the ring never drops a unit
-- that may still count: when waiters queue more units than it holds, it
-- doubles. So giving a reservation back is exact.
-- Grants never go back in time, so the ring stays sorted, and whether n more
-- units fit under "R per W" is one lookup: the (R-n+1)-th newest unit must be
-- at least W old at the grant time. 8 bytes per unit of the limit; nothing to
-- trim; the key expires one to one and a half windows after its newest grant
-- (extended with slack, so most grants need no PEXPIRE). A grant costs TIME,
-- two GETRANGEs (header, the deciding unit) and two SETRANGEs.
--
-- KEYS: the quota keys (on a Redis Cluster they must share a hash tag).
-- ARGV[1] is the operation:
--
--   reserve seen k {n max_wait want_remaining} for each request {L R1 W1 ... RL WL} for each key
--     seen is the latest grant time (µs) the caller holds, 0 if none. A key
--     whose latest grant is earlier lost data (a restart, a failover to a
--     replica that missed writes): while seen is still inside the window,
--     the window ending at seen is filled before anything is granted, so
--     the grants the key forgot are never granted again on top.
--     Serves k requests in order, as if each were its own call: a request
--     is granted n units at one time in every key if its wait is at most
--     max_wait microseconds (-1: any wait). Each key carries L limits.
--     Returns {granted 0|1, wait µs, at µs, remaining} for each request:
--     remaining is the units that could be granted now right after it (0
--     unless want_remaining=1).
--     Try it:  redis-cli --eval window.lua q , reserve 0 1 1 -1 1 1 5 1000000
--
--   cancel n at
--     Gives back n units granted at exactly at (µs) in every key.
--     Returns {units removed from the first key, its latest grant after;
--     -1 when the key does not exist (it expired, or lost its data)}.
--
--   pause d {L R1 W1 ... RL WL} for each key
--     Holds every grant on the keys until d µs from now (never shortening a
--     pause already set), and publishes "key now until" on the channel
--     ratelimit:pause for each key, so waiting callers can re-queue.
--     Returns {now µs, until µs}.
--
--   status {L R1 W1 ... RL WL} for each key
--     Reads without writing. L=0 reads with the limits stored in the key.
--     Returns {now µs, then for each key: exists 0|1, limits changed at µs
--     (0: never), the number of limits reported, then for each: requests,
--     window µs, units in the window ending now, units reserved after now,
--     µs until one more unit could be granted}.
--
-- Every operation that writes stores the caller's limits. reserve returns,
-- after its answers, one more value: 1 if a key held other limits than the
-- caller's (another replica disagrees), else 0.

local SLOT, HEADER, MAXLIM = 8, 136, 4
local MAGIC = 'rlwin\0\0\1'
local NOT_QUOTA = 'window.lua: not a quota: '

local function decode(s, i)
  local a, b, c, d, e, f, g, h = string.byte(s, i, i + 7)
  return ((((((a * 256 + b) * 256 + c) * 256 + d) * 256 + e) * 256 + f) * 256 + g) * 256 + h
end

local function encode(v)
  local h = v % 256; v = (v - h) / 256
  local g = v % 256; v = (v - g) / 256
  local f = v % 256; v = (v - f) / 256
  local e = v % 256; v = (v - e) / 256
  local d = v % 256; v = (v - d) / 256
  local c = v % 256; v = (v - c) / 256
  local b = v % 256; v = (v - b) / 256
  return string.char(v % 256, b, c, d, e, f, g, h)
end

-- Reads a key's header. A missing key is an empty quota; a key holding
-- anything that is not a quota is an error, and is never written.
local function load(key)
  local h = redis.pcall('GETRANGE', key, 0, HEADER - 1)
  if type(h) == 'table' then
    return nil, NOT_QUOTA .. 'key ' .. key .. ' holds a ' .. redis.call('TYPE', key).ok .. ', not a string'
  end
  local q = { key = key, cap = 0, head = 0, count = 0, pause = 0, latest = 0, expires = 0, stored = {}, changed = 0, exists = #h > 0 }
  if #h == 0 then return q end
  if #h ~= HEADER or string.sub(h, 1, 8) ~= MAGIC then
    return nil, NOT_QUOTA .. 'key ' .. key .. ' holds ' .. #h .. '+ bytes that this script did not write'
  end
  q.cap, q.pause, q.expires = decode(h, 9), decode(h, 17), decode(h, 25)
  q.head, q.count, q.latest = decode(h, 33), decode(h, 41), decode(h, 49)
  for j = 1, math.min(decode(h, 57), MAXLIM) do
    q.stored[j] = { decode(h, 49 + 16 * j), decode(h, 57 + 16 * j) }
  end
  q.changed = decode(h, 129)
  return q
end

local function header(q)
  local lim = ''
  for j = 1, MAXLIM do
    local l = q.stored[j] or { 0, 0 }
    lim = lim .. encode(l[1]) .. encode(l[2])
  end
  return MAGIC .. encode(q.cap) .. encode(q.pause) .. encode(q.expires) .. encode(q.head) .. encode(q.count) .. encode(q.latest)
    .. encode(#q.stored) .. lim .. encode(q.changed)
end

-- the part of the header a grant changes: head, count, latest
local function position(q)
  return encode(q.head) .. encode(q.count) .. encode(q.latest)
end

-- the k-th newest grant time, 1 <= k <= count
local function newest(q, k)
  local off = HEADER + ((q.head - k) % q.cap) * SLOT
  return decode(redis.call('GETRANGE', q.key, off, off + SLOT - 1), 1)
end

-- how many held units were granted after t (the ring is sorted: bisect)
local function newer(q, t)
  local lo, hi = 0, q.count
  while lo < hi do
    local mid = math.ceil((lo + hi) / 2)
    if newest(q, mid) > t then lo = mid else hi = mid - 1 end
  end
  return lo
end

-- len slots from ring index first, as bytes, wrapping at the end
local function read_run(q, first, len)
  if len == 0 then return '' end
  local till = math.min(len, q.cap - first)
  local s = redis.call('GETRANGE', q.key, HEADER + first * SLOT, HEADER + (first + till) * SLOT - 1)
  if till < len then
    s = s .. redis.call('GETRANGE', q.key, HEADER, HEADER + (len - till) * SLOT - 1)
  end
  return s
end

local function write_run(q, first, s)
  local len = #s / SLOT
  if len == 0 then return end
  local till = math.min(len, q.cap - first)
  redis.call('SETRANGE', q.key, HEADER + first * SLOT, string.sub(s, 1, till * SLOT))
  if till < len then
    redis.call('SETRANGE', q.key, HEADER, string.sub(s, till * SLOT + 1))
  end
end

-- Rewrites the ring, oldest first, at a larger capacity. The string is set
-- at its full size: one grown by SETRANGE would be over-allocated.
local function grow(q, cap)
  local s = q.count > 0 and read_run(q, (q.head - q.count) % q.cap, q.count) or ''
  q.cap, q.head = cap, q.count % cap
  redis.call('SET', q.key, header(q) .. s .. string.rep('\0', (cap - q.count) * SLOT), 'KEEPTTL')
end

-- Stores the caller's limits in q (the first MAXLIM) if they are not the
-- ones stored: marks q's header dirty, and, if other limits were stored,
-- when they changed. Returns true when other limits were stored.
local function store_limits(q, now)
  local differ = #q.stored ~= math.min(#q.limits, MAXLIM)
  for j = 1, math.min(#q.limits, MAXLIM) do
    local s, l = q.stored[j], q.limits[j]
    if not s or s[1] ~= l[1] or s[2] ~= l[2] then differ = true end
  end
  if not differ then return false end
  local conflict = #q.stored > 0
  if conflict then q.changed = now end
  q.stored = {}
  for j = 1, math.min(#q.limits, MAXLIM) do q.stored[j] = q.limits[j] end
  q.dirty = true
  return conflict
end

-- Reads the limits of each key from ARGV starting at a; returns the quotas,
-- grown to hold their largest limit when writable is true (a new key, or a
-- raised limit; a key keeps its history when its limit changes). A key
-- given no limits (L=0, read-only calls only) uses the limits stored in it.
local function load_all(a, min_requests, writable)
  local quotas = {}
  for i, key in ipairs(KEYS) do
    local count = tonumber(ARGV[a])
    if not count or (writable and count < 1) then
      return nil, 'window.lua: key ' .. key .. ' wants its limits, got ' .. tostring(ARGV[a])
    end
    local limits, cap = {}, 0
    for j = 1, count do
      local r, w = tonumber(ARGV[a + 2 * j - 1]), tonumber(ARGV[a + 2 * j])
      if not r or not w or r < 1 or w < 1 then
        return nil, 'window.lua: bad limit ' .. tostring(ARGV[a + 2 * j - 1]) .. '/' .. tostring(ARGV[a + 2 * j]) .. ' for key ' .. key .. ', want requests >= 1 and window >= 1 µs'
      end
      if r < min_requests then
        return nil, 'window.lua: n=' .. min_requests .. ' exceeds limit ' .. r .. ' for key ' .. key
      end
      limits[j] = { r, w }
      cap = math.max(cap, r)
    end
    a = a + 1 + 2 * count
    local q, err = load(key)
    if not q then return nil, err end
    if count == 0 and not writable then limits = q.stored end
    q.limits = limits
    if writable and q.cap < cap then grow(q, cap) end
    quotas[i] = q
  end
  return quotas
end

-- Units that could be granted now under limit j of q. The count of units
-- in the window is found once per call (every request in a call shares
-- now) and kept up to date as grants are added (see reserve).
local function remaining(q, now, j)
  if q.pause > now or (q.count > 0 and q.latest > now) then return 0 end
  local lim = q.limits[j]
  q.inwin = q.inwin or {}
  if not q.inwin[j] then q.inwin[j] = newer(q, now - lim[2]) end
  return math.max(0, lim[1] - q.inwin[j])
end

local function earliest(q, now, n, limits)
  local at = math.max(now, q.pause)
  if q.count > 0 then at = math.max(at, q.latest) end
  for _, lim in ipairs(limits) do
    local k = lim[1] - n + 1
    if q.count >= k then at = math.max(at, newest(q, k) + lim[2]) end
  end
  return at
end

local function longest(q)
  local w = 0
  for _, lim in ipairs(q.limits) do w = math.max(w, lim[2]) end
  return w
end

-- Appends n units granted at at (not earlier than the newest), growing the
-- ring rather than dropping a unit that may still count.
local function append(q, at, n, now)
  local drop = q.count + n - q.cap
  if drop > 0 and newest(q, q.count - drop + 1) > now - longest(q) then
    grow(q, math.max(2 * q.cap, q.count + n))
  end
  write_run(q, q.head, string.rep(encode(at), n))
  q.head = (q.head + n) % q.cap
  q.count = math.min(q.count + n, q.cap)
  q.latest = at
end

-- Keeps the key until a window after its newest grant or pause; returns
-- true when the header changed. PEXPIREAT sets half a window of slack, so
-- most grants find the expiry far enough already.
local function expire(q)
  local w = longest(q)
  local needed = math.ceil((math.max(q.pause, q.latest) + w) / 1000) + 1
  if needed <= q.expires then return false end
  q.expires = needed + math.ceil(w / 2000)
  redis.call('PEXPIREAT', q.key, q.expires)
  return true
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local op = ARGV[1]

if op == 'reserve' then
  local seen, k = tonumber(ARGV[2]), tonumber(ARGV[3])
  if not seen or not k or k < 1 then
    return redis.error_reply('window.lua: reserve wants seen and a count of requests >= 1, got ' .. tostring(ARGV[2]) .. ' ' .. tostring(ARGV[3]))
  end
  local requests, most = {}, 0
  for i = 1, k do
    local n, max_wait = tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
    if not n or n < 1 or not max_wait then
      return redis.error_reply('window.lua: reserve wants n >= 1 and max_wait, got ' .. tostring(ARGV[3 * i + 1]) .. ' ' .. tostring(ARGV[3 * i + 2]))
    end
    requests[i] = { n, max_wait, ARGV[3 * i + 3] == '1' }
    most = math.max(most, n)
  end
  local quotas, err = load_all(4 + 3 * k, most, true)
  if not quotas then return redis.error_reply(err) end
  local wrote, conflict = false, 0
  for _, q in ipairs(quotas) do
    if store_limits(q, now) then conflict = 1 end
  end
  for _, q in ipairs(quotas) do
    if seen > now - longest(q) and seen > (q.count > 0 and q.latest or 0) then
      -- The caller holds a grant the key does not know of: the key lost
      -- data. Fill the window ending at seen, so nothing is granted again
      -- on top of what was granted before.
      local most_limit = 0
      for _, lim in ipairs(q.limits) do most_limit = math.max(most_limit, lim[1]) end
      append(q, seen, most_limit, now)
      wrote = true
    end
  end
  -- The requests are served in order, as if each were its own call.
  local out = {}
  for _, req in ipairs(requests) do
    local n, max_wait = req[1], req[2]
    local at = now
    for _, q in ipairs(quotas) do at = math.max(at, earliest(q, now, n, q.limits)) end
    local wait = at - now
    local granted = max_wait < 0 or wait <= max_wait
    if granted then
      for _, q in ipairs(quotas) do
        append(q, at, n, now)
        -- The new units are at or after now: inside every window ending now.
        for j, c in pairs(q.inwin or {}) do q.inwin[j] = c + n end
      end
      wrote = true
    end
    local left = 0
    if req[3] then
      left = nil
      for _, q in ipairs(quotas) do
        for j in ipairs(q.limits) do
          local r = remaining(q, now, j)
          if not left or r < left then left = r end
        end
      end
    end
    out[#out + 1] = granted and 1 or 0
    out[#out + 1] = wait
    out[#out + 1] = at
    out[#out + 1] = left
  end
  for _, q in ipairs(quotas) do
    if wrote and expire(q) or q.dirty then
      redis.call('SETRANGE', q.key, 0, header(q))
    elseif wrote then
      redis.call('SETRANGE', q.key, 32, position(q))
    end
  end
  out[#out + 1] = conflict
  return out
end

if op == 'cancel' then
  local n, at = tonumber(ARGV[2]), tonumber(ARGV[3])
  if not n or n < 1 or not at then
    return redis.error_reply('window.lua: cancel wants n >= 1 and at, got ' .. tostring(ARGV[2]) .. ' ' .. tostring(ARGV[3]))
  end
  local first
  for _, key in ipairs(KEYS) do
    local q, err = load(key)
    if not q then return redis.error_reply(err) end
    local removed = 0
    if q.cap > 0 then
      -- Units with one grant time are interchangeable: removing any n of
      -- them leaves the state the reservation's owner would have left.
      local after = newer(q, at)
      removed = math.min(n, newer(q, at - 1) - after)
      if removed > 0 then
        local moved = read_run(q, (q.head - after) % q.cap, after)
        local dst = (q.head - after - removed) % q.cap
        write_run(q, dst, moved)
        q.head = (dst + after) % q.cap
        q.count = q.count - removed
        if after == 0 then q.latest = q.count > 0 and newest(q, 1) or 0 end
        redis.call('SETRANGE', q.key, 0, header(q))
      end
    end
    -- The latest grant after, or -1 when the key is gone (lost with its
    -- data): then the caller must not take 0 for the latest grant.
    if not first then first = { removed, not q.exists and -1 or q.count > 0 and q.latest or 0 } end
  end
  return first or { 0, -1 }
end

if op == 'pause' then
  local d = tonumber(ARGV[2])
  if not d or d < 1 then
    return redis.error_reply('window.lua: pause wants a duration >= 1 µs, got ' .. tostring(ARGV[2]))
  end
  local quotas, err = load_all(3, 1, true)
  if not quotas then return redis.error_reply(err) end
  local pause_end = now + d
  for _, q in ipairs(quotas) do
    store_limits(q, now)
    q.pause = math.max(q.pause, pause_end)
    expire(q)
    redis.call('SETRANGE', q.key, 0, header(q))
    redis.call('PUBLISH', 'ratelimit:pause', q.key .. ' ' .. string.format('%d %d', now, q.pause))
  end
  return { now, pause_end }
end

if op == 'status' then
  -- Not resized: a ring of another capacity still answers correctly, and
  -- status must never write.
  local quotas, err = load_all(2, 1, false)
  if not quotas then return redis.error_reply(err) end
  local out = { now }
  for _, q in ipairs(quotas) do
    local future = newer(q, now)
    out[#out + 1] = q.exists and 1 or 0
    out[#out + 1] = q.changed
    out[#out + 1] = #q.limits
    for _, lim in ipairs(q.limits) do
      local in_window = newer(q, now - lim[2]) - future
      local at = earliest(q, now, 1, { lim })
      out[#out + 1] = lim[1]
      out[#out + 1] = lim[2]
      out[#out + 1] = in_window
      out[#out + 1] = future
      out[#out + 1] = at - now
    end
  end
  return out
end

return redis.error_reply('window.lua: unknown operation ' .. tostring(op) .. ', want reserve, cancel, pause or status')
