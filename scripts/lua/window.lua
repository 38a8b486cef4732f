-- window.lua: the sliding-window quota of package limiter, in one atomic step.
--
-- The rule (see limiter/doc.go): n units are granted at the earliest time at
-- that is not before now and not inside a pause, such that no window of
-- length W holds more than R units, and no request is delayed by a later
-- one. A request goes after the latest reservation, or takes a freed slot
-- (a reservation given back while later ones stay) at that slot's time.
--
-- Each quota key is a string of regions at fixed offsets, so a call reads
-- and writes only what it needs (GETRANGE, SETRANGE; SET PX when the key is
-- new or laid out anew, PEXPIRE when its expiry falls short): what a grant
-- costs the server does not grow with the key. Times are microseconds on
-- this server's clock (TIME). Numbers are big-endian unsigned.
--   header (128 bytes): magic "rlwin" 0 0 3 (format 3) | tick µs (4) |
--     reference tick (8) | cum before the first entry (4) | paused until
--     (8) | limits changed at (8) | limits stored (1) | freed slots (1) |
--     records (1) | next record slot (1) | call ids (1) | next call id
--     slot (1) | freed-slot capacity (1) | record capacity (1) | entry
--     capacity (4) | slot of the oldest entry (4) | entries (4) | expires
--     at µs (8) | oldest entry's tick (4) | newest entry's tick (4) and cum
--     (4) | 4 x (requests (4), window µs (8))
--   call ids (16 x 8): the first request id of each of the last 16 calls
--   freed slots (8 each, up to 32): tick (4) | units (4)
--   records (a ring of up to 64, 20 each): request id (8) | grant time µs
--     (8) | units (4)
--   entries (a ring, 8 each): tick (4) | cumulative units (4)
-- A call reads the header and call ids (256 bytes); entries are read 16 at
-- a time when a bisection needs them, records only for a retry or a
-- give-back. Rings grow (and the entries' ring shrinks) by laying the key
-- out anew, rarely: entries get an eighth more room, and the records' ring
-- grows only when it would overwrite a record younger than RETAIN.
-- An entry is every unit recorded at one tick: a grant at time t is recorded
-- at the tick ceil(t / tick), never earlier, so rounding can only delay
-- (a coarse tick costs at most one tick per window, never over-admits). The
-- tick is 1 µs unless a limit needs more than FINE entries per window or a
-- window spans more than SPAN ticks. Ticks and cumulative counts are kept
-- modulo 2^32: a tick is read as the one nearest the reference tick (the
-- tick of the last write), and only differences of counts are used. So a
-- key costs 8 bytes per entry, at most FINE+1 entries per window of its
-- widest limit, whatever the limit, and one grant reads O(log entries).
-- Whether n more units fit under "R per W" after the latest reservation is
-- one bisection: the (R-n+1)-th newest unit must be at least W older.
-- The quota describes itself: every writer stores its limits (the first
-- four); when it finds other limits stored it stores its own and the time,
-- and says so. Each caller enforces the limits it passes. A key that holds
-- anything else is never read as a quota nor overwritten: "not a quota".
--
-- KEYS: the quota keys (on a Redis Cluster they must share a hash tag).
-- argv[1] is the operation:
--
--   reserve seen k {id n max_wait want_remaining} x k {L R1 W1 ... RL WL P K} x keys
--     seen is the latest grant time (µs) the caller holds, 0 if none; K the
--     latest reservation the caller knows the key held (its last answer).
--     A key whose latest reservation is earlier than seen, or that is gone
--     while K is within a window, lost data (a restart, a failover to a
--     replica that missed writes): every limit is then filled at that time
--     (or now, if later), so nothing granted before is granted again on
--     top. P is the end (µs) of a pause the caller heard of (0: none), so a
--     pause outlives a lost key. id is 8 bytes naming the request ('-':
--     none): a request whose id the first key remembers was served by an
--     earlier run of this call (a client's retry), and gets that answer
--     again without recording anything. The first key remembers the first
--     request id of its last NCALL calls, and the ids of its last MAXREC
--     grants (and of each call's first request); it lives RETAIN past the
--     last it recorded. k requests are served in order, as
--     if each were its own call: granted n units at one time in every key
--     if the wait is at most max_wait µs (-1: any wait).
--     Returns the answers, {granted 1|0|-1, wait µs, at µs, remaining} per
--     request, run-length encoded: segments of {count, granted, wait, at,
--     remaining, step} whose counts add up to k, the j-th answer of a
--     segment (from 0) having remaining - j * step (a run of requests
--     granted at once costs one segment, not one answer each). Then 1 if a
--     key held other limits than the caller's, else 0, then each key's
--     latest reservation (µs, 0: none). remaining is what could be granted
--     now right after the request (0 unless want_remaining=1); granted -1
--     means refused: the queue is full (MAXENT entries, or HORIZON ticks
--     ahead).
--     Try it:  redis-cli --eval window.lua q , reserve 0 1 - 1 -1 1 1 5 1000000 0 0
--
--   cancel id n at
--     Gives back n units granted at at (µs) in every key. With an id, the
--     request of that id, once: the first key remembers it was given back,
--     so a cancel run twice gives back once (at -1: whenever it was
--     granted, if the key still remembers the id). A reservation
--     after which others are queued leaves a freed slot; the newest is
--     removed. Returns {units given back in the first key, its latest
--     reservation after (-1 when the key does not exist), now}.
--
--   pause d {L R1 W1 ... RL WL} x keys
--     Holds every grant on the keys until d µs from now (never shortening a
--     pause), and publishes "key now until" on the channel ratelimit:pause
--     for each key, so waiting callers can re-queue. Returns {now, until}.
--
--   status {L R1 W1 ... RL WL} x keys
--     Reads without writing; L=0 uses the limits stored in the key. Returns
--     {now µs, then per key: exists 0|1, limits changed at µs (0: never),
--     limits reported, then per limit: requests, window µs, units in the
--     window ending now, units reserved after now, µs until one more unit
--     could be granted}.

local HDR, NCALL, MAXVAC, MAXREC = 128, 16, 32, 64
local VSZ, RSZ, ESZ, CH = 8, 20, 8, 16
local VAC = HDR + NCALL * 8     -- byte offset (from 0) of the freed slots
local MAXENT = 8192
local FINE = 256             -- entries per window of a limit, at most
local SPAN = 536870912       -- 2^29: ticks per window of the widest limit, at most
local HORIZON = 1073741824   -- 2^30: ticks a grant may lie ahead of now, at most
local RETAIN = 20000000      -- µs a key lives, at least, after it records an id
local SLACK = 5000000        -- µs a key's expiry is set beyond what it needs
local MAGIC = 'rlwin\0\0\3'
local M32, H32 = 4294967296, 2147483648
local NOT_QUOTA = 'window.lua: not a quota: '
local NOLIMIT = { 0, 0 } -- a limit slot of the header that holds none

local keys, argv -- this call's KEYS and ARGV (see run)

-- The libraries, bound at the first call: code that FUNCTION LOAD runs
-- cannot reach them yet (see the end of this file).
local byte, char, sub, rep, floor, ceil, max, min
-- Big-endian unsigned numbers: struct (C) where Redis has it, plain Lua
-- where it does not (miniredis); the same bytes either way. The header's
-- fields are its format (c8: the magic); pair reads two 4-byte numbers (an
-- entry, a freed slot), grant a record's time and units; suffix makes a
-- record's bytes after its id.
local HFMT = '>c8I4I8I4I8I8BBBBBBBBI4I4I4I8I4I4I4I4I8I4I8I4I8I4I8'
local unpack_header, pack_header, pair, ppair, grant, suffix
local NOCALLS -- the call ids of a new key: NCALL x 8 zero bytes
local function bind()
  byte, char, sub, rep = string.byte, string.char, string.sub, string.rep
  floor, ceil, max, min = math.floor, math.ceil, math.max, math.min
  NOCALLS = rep('\0', NCALL * 8)
  local struct = rawget(_G, 'struct')
  if struct then
    local pk, up = struct.pack, struct.unpack
    unpack_header = function(s) return up(HFMT, s) end
    pack_header = function(...) return pk(HFMT, ...) end
    pair = function(s, i) return up('>I4I4', s, i) end
    ppair = function(a, b) return pk('>I4I4', a % M32, b % M32) end
    grant = function(s, i) return up('>I8I4', s, i) end
    suffix = function(at, n) return pk('>I8I4', at, n) end
  else
    local function u32(s, i)
      local a, b, c, d = byte(s, i, i + 3)
      return ((a * 256 + b) * 256 + c) * 256 + d
    end
    local function p32(v)
      v = v % M32
      local d = v % 256; v = (v - d) / 256
      local c = v % 256; v = (v - c) / 256
      local b = v % 256
      return char((v - b) / 256, b, c, d)
    end
    local widths = {}
    for w in string.gmatch(HFMT, '%a%d?') do widths[#widths + 1] = w == 'B' and 1 or tonumber(sub(w, 2)) end
    unpack_header = function(s)
      local h, o = { sub(s, 1, 8) }, 9
      for j = 2, #widths do
        local w = widths[j]
        if w == 1 then h[j] = byte(s, o)
        elseif w == 4 then h[j] = u32(s, o)
        else h[j] = u32(s, o) * M32 + u32(s, o + 4) end
        o = o + w
      end
      return unpack(h)
    end
    pack_header = function(...)
      local h = { ... }
      local parts = { h[1] }
      for j = 2, #widths do
        local w, v = widths[j], h[j]
        if w == 1 then parts[j] = char(v)
        elseif w == 4 then parts[j] = p32(v)
        else parts[j] = p32(floor(v / M32)) .. p32(v % M32) end
      end
      return table.concat(parts)
    end
    pair = function(s, i) return u32(s, i), u32(s, i + 4) end
    ppair = function(a, b) return p32(a) .. p32(b) end
    grant = function(s, i) return u32(s, i) * M32 + u32(s, i + 4), u32(s, i + 8) end
    suffix = function(at, n) return p32(floor(at / M32)) .. p32(at % M32) .. p32(n) end
  end
end

-- The tick a quota with these limits is kept at (see the header).
local function tick_for(limits)
  local widest, wide_r = 0, 0
  for _, l in ipairs(limits) do
    if l[2] > widest or (l[2] == widest and l[1] > wide_r) then widest, wide_r = l[2], l[1] end
  end
  local t = max(1, ceil(widest / SPAN))
  if wide_r > FINE then
    -- A tick that divides the window (FINE/2 to FINE ticks per window), so
    -- saturated grants, a window apart, stay on ticks and lose nothing.
    local fine = ceil(widest / FINE)
    for m = FINE, FINE / 2, -1 do
      if widest % m == 0 then fine = widest / m; break end
    end
    t = max(t, fine)
  end
  return t
end

-- A 4-byte tick read as the full tick nearest the reference.
local function full(q, t4)
  local d = (t4 - q.ref) % M32
  if d >= H32 then d = d - M32 end
  return q.ref + d
end

-- Reads a key's header and call ids (and freed slots, if any); entries
-- and records are read when needed.
local function load(key)
  local v = redis.pcall('GETRANGE', key, 0, VAC - 1)
  if type(v) == 'table' and v.err then
    if not string.find(v.err, 'WRONGTYPE', 1, true) then return nil, v.err end
    return nil, NOT_QUOTA .. 'key ' .. key .. ' holds a ' .. redis.call('TYPE', key).ok .. ', not a string'
  end
  if v == '' then
    return { key = key, exists = false, tick = 1, ref = 0, cum0 = 0, pause = 0, changed = 0,
      stored = {}, vac = {}, nvac = 0, calls = NOCALLS, ncall = 0, cnext = 0, nrec = 0, rnext = 0,
      vcap = 0, rcap = 0, cap = 0, head = 0, count = 0, expires = 0, first = 1, fixed = 0, tail = {}, chunks = {}, recw = {}, rnew = {}, rfrom = 0,
      limits = NOLIMIT, wide = 0, keep = 0, heard = 0, known = 0, dirty = false, differ = false, ring = false, relayout = false }
  end
  if #v < VAC or sub(v, 1, 8) ~= MAGIC then
    local what = #v < VAC and #v .. ' bytes' or 'a value'
    return nil, NOT_QUOTA .. 'key ' .. key .. ' holds ' .. what .. ' that this script did not write'
  end
  local _, tick, ref, cum0, pause, changed, nlim, nvac, nrec, rnext, ncall, cnext, vcap, rcap, cap, head, count,
    expires, ft, lt, lc, r1, w1, r2, w2, r3, w3, r4, w4 = unpack_header(v)
  local stored = {}
  if nlim > 0 then
    stored[1] = { r1, w1 }
    if nlim > 1 then stored[2] = { r2, w2 } end
    if nlim > 2 then stored[3] = { r3, w3 } end
    if nlim > 3 then stored[4] = { r4, w4 } end
  end
  local recs = VAC + vcap * VSZ
  -- One constructor, every field: a table that grows field by field costs
  -- more than all the rest of this function.
  local q = { key = key, exists = true, tick = tick, ref = ref, cum0 = cum0, pause = pause, changed = changed,
    stored = stored, vac = {}, nvac = nvac, calls = sub(v, HDR + 1, VAC), ncall = ncall, cnext = cnext,
    nrec = nrec, rnext = rnext, vcap = vcap, rcap = rcap, cap = cap, head = head, count = count,
    expires = expires, first = 1, fixed = count, tail = {}, chunks = {}, recw = {}, rnew = {}, rfrom = 0,
    recs = recs, ents = recs + rcap * RSZ, ftick = 0, ltick = 0, lcum = lc,
    limits = NOLIMIT, wide = 0, keep = 0, heard = 0, known = 0, dirty = false, differ = false, ring = false, relayout = false }
  q.ftick, q.ltick = full(q, ft), full(q, lt)
  if nvac > 0 then
    local s = redis.call('GETRANGE', key, VAC, VAC + nvac * VSZ - 1)
    for j = 1, nvac do
      local t, n = pair(s, (j - 1) * VSZ + 1)
      q.vac[j] = { full(q, t), n }
    end
  end
  return q
end

-- The stored entry i (1: the oldest stored), read CH entries at a time.
local function stored(q, i)
  local slot = (q.head + i - 1) % q.cap
  local c = floor(slot / CH)
  local s = q.chunks[c]
  if not s then
    s = redis.call('GETRANGE', q.key, q.ents + c * CH * ESZ, q.ents + (c + 1) * CH * ESZ - 1)
    q.chunks[c] = s
  end
  return pair(s, (slot - c * CH) * ESZ + 1)
end

-- Entries first..last: the first `fixed` are stored as they were (the
-- oldest and newest known from the header), the rest (appended or changed
-- in this call) are in q.tail as {tick, cum}.
local function last(q) return q.fixed + #q.tail end
local function tick_of(q, i)
  if i > q.fixed then return q.tail[i - q.fixed][1] end
  if i == q.count then return q.ltick end
  if i == 1 then return q.ftick end
  return full(q, (stored(q, i)))
end
-- (cum0 is the count before the first entry kept)
local function cum_of(q, i)
  if i < q.first then return q.cum0 end
  if i > q.fixed then return q.tail[i - q.fixed][2] end
  if i == q.count then return q.lcum end
  local _, c = stored(q, i)
  return c
end
local function held(q) return (cum_of(q, last(q)) - q.cum0) % M32 end
local function units_at(q, i) return (cum_of(q, i) - cum_of(q, i - 1)) % M32 end

-- The first entry whose tick is after t (last+1 if none).
local function after_tick(q, t)
  local lo, hi = q.first, last(q) + 1
  if lo < hi and tick_of(q, lo) > t then return lo end
  while lo < hi do
    local mid = floor((lo + hi) / 2)
    if tick_of(q, mid) > t then hi = mid else lo = mid + 1 end
  end
  return lo
end

-- The time of the k-th newest unit (k <= held).
local function newest(q, k)
  local want = held(q) - k + 1 -- its position from the first held unit
  local lo, hi = q.first, last(q)
  while lo < hi do
    local mid = floor((lo + hi) / 2)
    if (cum_of(q, mid) - q.cum0) % M32 >= want then hi = mid else lo = mid + 1 end
  end
  return tick_of(q, lo) * q.tick
end

-- The time the newest reservation is recorded at (0: none), and the
-- earliest time a grant recorded with it may have (its tick's start).
local function latest(q)
  if last(q) < q.first then return 0 end
  return tick_of(q, last(q)) * q.tick
end
local function latest_start(q)
  if last(q) < q.first then return 0 end
  return (tick_of(q, last(q)) - 1) * q.tick + 1
end

-- Units recorded after time t.
local function units_after(q, t)
  local i = after_tick(q, floor(t / q.tick))
  return (cum_of(q, last(q)) - cum_of(q, i - 1)) % M32
end

-- Appends n units at time at (not before the latest), merging with the
-- newest entry when they share its tick.
local function record(q, at, n)
  local t = ceil(at / q.tick)
  local l = last(q)
  if l >= q.first and tick_of(q, l) == t then
    local c = (cum_of(q, l) + n) % M32
    if l > q.fixed then q.tail[l - q.fixed][2] = c
    else q.fixed = q.fixed - 1; table.insert(q.tail, 1, { t, c }) end
  else
    q.tail[#q.tail + 1] = { t, (cum_of(q, l) + n) % M32 }
  end
end

local function widest(limits)
  local w = 0
  for _, l in ipairs(limits) do w = max(w, l[2]) end
  return w
end

-- Re-records every time at a coarser tick (a limit changed); rounding up.
local function retick(q, t)
  local old, ents = q.tick, {}
  for i = q.first, last(q) do ents[#ents + 1] = { ceil(tick_of(q, i) * old / t), cum_of(q, i) } end
  q.head = (q.head + q.first - 1) % max(q.cap, 1)
  q.fixed, q.first, q.tail, q.tick = 0, 1, {}, t
  for _, e in ipairs(ents) do
    local l = #q.tail
    if l > 0 and q.tail[l][1] == e[1] then q.tail[l][2] = e[2] else q.tail[l + 1] = e end
  end
  for _, v in ipairs(q.vac) do v[1] = ceil(v[1] * old / t) end
end

-- Stores the caller's limits if others are stored; true if they differed.
local function store_limits(q, now)
  local n = min(#q.limits, 4)
  local differ = #q.stored ~= n
  for j = 1, n do
    local s, l = q.stored[j], q.limits[j]
    if not s or s[1] ~= l[1] or s[2] ~= l[2] then differ = true end
  end
  if not differ then return false end
  local conflict = #q.stored > 0
  if conflict then q.changed = now end
  q.stored = {}
  for j = 1, n do q.stored[j] = q.limits[j] end
  q.dirty = true
  return conflict
end

-- Reads each key's limits (and, with pauses, the caller's known pause end)
-- from argv at a; returns the quotas.
local function load_all(a, min_requests, writable, pauses)
  local quotas = {}
  for i, key in ipairs(keys) do
    local count = tonumber(argv[a])
    if not count or (writable and count < 1) then
      return nil, 'window.lua: key ' .. key .. ' wants its limits, got ' .. tostring(argv[a])
    end
    local limits = {}
    for j = 1, count do
      local r, w = tonumber(argv[a + 2 * j - 1]), tonumber(argv[a + 2 * j])
      if not r or not w or r < 1 or w < 1 or r >= H32 or w >= 2 ^ 52 then
        return nil, 'window.lua: bad limit ' .. tostring(argv[a + 2 * j - 1]) .. '/' .. tostring(argv[a + 2 * j]) .. ' for key ' .. key .. ', want 1 <= requests < 2^31 and 1 <= window µs < 2^52'
      end
      if r < min_requests then
        return nil, 'window.lua: n=' .. min_requests .. ' exceeds limit ' .. r .. ' for key ' .. key
      end
      limits[j] = { r, w }
    end
    a = a + 1 + 2 * count
    local q, err = load(key)
    if not q then return nil, err end
    if pauses then
      q.heard, q.known = tonumber(argv[a]) or 0, tonumber(argv[a + 1]) or 0
      a = a + 2
    end
    if count == 0 and not writable then limits = q.stored end
    q.limits, q.wide = limits, widest(limits)
    quotas[i] = q
  end
  return quotas
end

-- Forgets freed slots whose time has passed: no request can take them.
local function drop_passed(q, now)
  if #q.vac == 0 then return end
  local vac = {}
  for _, v in ipairs(q.vac) do
    if v[1] * q.tick >= now then vac[#vac + 1] = v end
  end
  q.vac = vac
end

-- Drops what no window can need any more, and sets the tick: a quota that
-- holds nothing starts at its caller's tick; one whose widest window
-- outgrew its tick is re-ticked.
local function prepare(q, now)
  local keep = max(q.wide, widest(q.stored))
  local first = after_tick(q, floor((now - keep) / q.tick))
  q.cum0, q.first, q.keep = cum_of(q, first - 1), first, keep
  drop_passed(q, now)
  local want = tick_for(q.limits)
  if last(q) < q.first and #q.vac == 0 then
    q.cum0, q.tick = cum_of(q, last(q)), want
    q.head = (q.head + q.first - 1) % max(q.cap, 1)
    q.fixed, q.first, q.tail = 0, 1, {}
  elseif want > q.tick or ceil(keep / q.tick) > SPAN then
    retick(q, max(want, ceil(keep / SPAN)))
  end
end

-- The earliest time, from at on, at which n more units fit after the
-- latest reservation under every limit of q.
local function after_latest(q, at, n)
  at = max(at, q.pause, latest_start(q))
  local h = held(q)
  for _, lim in ipairs(q.limits) do
    local k = lim[1] - n + 1
    if h >= k then at = max(at, newest(q, k) + lim[2]) end
  end
  return at
end

-- The index of q's freed slot at tick t with at least n units, if any.
local function freed_at(q, t, n)
  for j, v in ipairs(q.vac) do
    if v[1] == t and v[2] >= n then return j end
  end
  return nil
end

-- A freed slot for n units at or after from (past every pause) in every
-- key, if the caller's limits are the ones the slot was counted under:
-- the earliest of the first key's that every other key has at that time.
-- Returns the time and the slot's index in each key.
local function freed_slot(quotas, from, n)
  local q1 = quotas[1]
  for _, q in ipairs(quotas) do
    if q.differ then return nil end
  end
  for i, v in ipairs(q1.vac) do
    local at = max(from, v[1] * q1.tick) -- the tick's end: never before the time given back
    if v[2] >= n and ceil(at / q1.tick) == v[1] then
      local pick = { i }
      for k = 2, #quotas do
        local j = freed_at(quotas[k], ceil(at / quotas[k].tick), n)
        if not j then break end
        pick[k] = j
      end
      if #pick == #quotas then return at, pick end
    end
  end
  return nil
end

-- Units that could be granted now under limit j of q.
-- Under the widest window prepare kept, that is every unit held: every
-- entry from q.first on lies after now - keep, on any tick (a re-tick only
-- rounds up), so no bisection is needed.
local function remaining(q, now, lim)
  if q.pause > now or latest_start(q) > now then return 0 end
  return max(0, lim[1] - (lim[2] == q.keep and held(q) or units_after(q, now - lim[2])))
end

-- Where id is found in s (a multiple of width bytes apart from its start),
-- if anywhere: its offset.
local function find_id(s, id, width)
  local from = 1
  while true do
    local i = string.find(s, id, from, true)
    if not i then return nil end
    if (i - 1) % width == 0 then return i end
    from = i + 1
  end
end

-- The records ring, read once (nrec records of RSZ bytes).
local function ring(q)
  if not q.ring then
    q.ring = q.nrec > 0 and redis.call('GETRANGE', q.key, q.recs, q.recs + q.nrec * RSZ - 1) or ''
  end
  return q.ring
end

-- Makes room for k more records: the ring grows (to MAXREC at most) when
-- it would overwrite a record younger than RETAIN, so a quiet key keeps a
-- small ring. A grown ring is laid out anew, oldest first, when written.
local function ring_room(q, k, now)
  if q.rcap >= MAXREC or q.nrec + k <= q.rcap then return end
  if q.nrec == q.rcap and q.nrec > 0 then
    local o = q.recs + q.rnext * RSZ + 8
    local at = grant(redis.call('GETRANGE', q.key, o, o + 11), 1)
    if at + RETAIN < now then return end
  end
  local r = ring(q)
  if q.nrec == q.rcap then r = sub(r, q.rnext * RSZ + 1) .. sub(r, 1, q.rnext * RSZ) end
  local cap = 4
  while cap < min(q.nrec + k, MAXREC) do cap = cap * 2 end
  q.ring, q.rnext, q.rcap, q.relayout = r, q.nrec % cap, cap, true
end

-- Remembers a request: rec is its id and suffix(at, n), granted n units at
-- at (n 0: refused or given back). New records go to q.rnew, in ring order
-- from slot q.rfrom, and are written last, as one or two runs.
-- Counts the records q.rnew[c0 + 1 .. c], just appended, into the ring.
local function appended(q, c0, c)
  if c == c0 then return end
  if c0 == 0 then q.rfrom = q.rnext end
  q.rnext, q.nrec, q.dirty = (q.rnext + c - c0) % q.rcap, min(q.nrec + c - c0, q.rcap), true
end

local function remember(q, rec)
  local new = q.rnew
  local c0 = #new
  new[c0 + 1] = rec
  appended(q, c0, c0 + 1)
end

-- Remembers the call's requests i..j that have ids, all granted alike:
-- each record is the id and tail, suffix(at, n).
local function remember_run(q, i, j, tail)
  local new = q.rnew
  local c0 = #new
  local c = c0
  for r = i, j do
    local id = argv[4 * r]
    if id ~= '-' then c = c + 1; new[c] = id .. tail end
  end
  appended(q, c0, c)
end

-- Writes what changed: the header (and call ids), freed slots, new
-- records, and the entries from the first changed one; or the whole key
-- when it is new or its entries outgrow their ring. The key expires a
-- window after its latest reservation (RETAIN after now if it remembers
-- ids), give or take SLACK: the expiry is moved only when it falls short.
local function write(q, now)
  local kept = max(0, q.fixed - q.first + 1)
  local t0 = max(1, q.first - q.fixed)
  local count = kept + #q.tail - t0 + 1
  local head = q.cap > 0 and (q.head + q.first - 1) % q.cap or 0
  local lt, lc, ft = 0, q.cum0, 0
  if count > 0 then lt, lc, ft = tick_of(q, last(q)), cum_of(q, last(q)), tick_of(q, q.first) end
  local need = max(latest(q), q.pause) + max(q.wide, widest(q.stored))
  if q.nrec > 0 then need = max(need, max(now, latest(q)) + RETAIN) end
  local px
  if not q.exists or need > q.expires then
    px = max(1, ceil((need + SLACK - now) / 1000))
    q.expires = now + px * 1000
  end
  q.ref = floor(now / q.tick)
  local cap, vcap = q.cap, q.vcap
  if #q.vac > vcap then vcap = min(MAXVAC, 2 * #q.vac) end
  local grow = not q.exists or q.relayout or vcap > q.vcap or count > cap or (cap > 4 * CH and count < cap / 4)
  local ents = {}
  if grow then
    -- A new ring of entries: the kept stored ones (from head, wrapping
    -- once), then the tail; an eighth more room (at least 4 slots), in
    -- whole chunks.
    local run = min(kept, q.cap - head)
    if run > 0 then ents[1] = redis.call('GETRANGE', q.key, q.ents + head * ESZ, q.ents + (head + run) * ESZ - 1) end
    if kept > run then ents[#ents + 1] = redis.call('GETRANGE', q.key, q.ents, q.ents + (kept - run) * ESZ - 1) end
    cap, head = CH * ceil((count + max(4, floor(count / 8))) / CH), 0
  end
  for i = t0, #q.tail do
    local e = q.tail[i]
    ents[#ents + 1] = ppair(e[1], e[2])
  end
  local vac = {}
  for j, v in ipairs(q.vac) do vac[j] = ppair(v[1], v[2]) end
  local st = q.stored
  local s1, s2, s3, s4 = st[1] or NOLIMIT, st[2] or NOLIMIT, st[3] or NOLIMIT, st[4] or NOLIMIT
  local hdr = pack_header(MAGIC, q.tick, q.ref, q.cum0 % M32, q.pause, q.changed, #st, #q.vac, q.nrec,
    q.rnext, q.ncall, q.cnext, vcap, q.rcap, cap, head, count, q.expires, ft % M32, lt % M32, lc % M32,
    s1[1], s1[2], s2[1], s2[2], s3[1], s3[2], s4[1], s4[2]) .. q.calls
  if grow then
    px = px or max(1, ceil((q.expires - now) / 1000))
    local r = q.relayout and q.ring or q.rcap > 0 and redis.call('GETRANGE', q.key, q.recs, q.ents - 1) or ''
    local e = table.concat(ents)
    redis.call('SET', q.key, table.concat({ hdr, table.concat(vac), rep('\0', (vcap - #q.vac) * VSZ),
      r, rep('\0', q.rcap * RSZ - #r), e, rep('\0', cap * ESZ - #e) }), 'PX', px)
    q.recs = VAC + vcap * VSZ
  else
    redis.call('SETRANGE', q.key, 0, hdr)
    if #q.vac > 0 then redis.call('SETRANGE', q.key, VAC, table.concat(vac)) end
    if #ents > 0 then
      -- The tail, from the slot after the kept entries, wrapping once.
      local s = (head + kept) % cap
      local run = min(#ents, cap - s)
      redis.call('SETRANGE', q.key, q.ents + s * ESZ, table.concat(ents, '', 1, run))
      if #ents > run then redis.call('SETRANGE', q.key, q.ents, table.concat(ents, '', run + 1)) end
    end
    if px then redis.call('PEXPIRE', q.key, px) end
  end
  -- Records: those rewritten in place, then the new ones (the last rcap
  -- of them, should they go round the ring), from q.rfrom, wrapping once.
  for _, w in ipairs(q.recw) do redis.call('SETRANGE', q.key, q.recs + w[1] * RSZ, w[2]) end
  local new = q.rnew
  local c = #new
  if c == 0 then return end
  local from, skip = q.rfrom, max(0, c - q.rcap)
  from = (from + skip) % q.rcap
  local run = min(c - skip, q.rcap - from)
  redis.call('SETRANGE', q.key, q.recs + from * RSZ, table.concat(new, '', skip + 1, skip + run))
  if skip + run < c then redis.call('SETRANGE', q.key, q.recs, table.concat(new, '', skip + run + 1, c)) end
end

-- What could be granted now, under every limit of every key.
local function remaining_now(quotas, now)
  local left
  for _, q in ipairs(quotas) do
    for _, lim in ipairs(q.limits) do
      local r = remaining(q, now, lim)
      if not left or r < left then left = r end
    end
  end
  return left
end

-- How many requests from i (of k) on ask for the same n and all fit at
-- from, with no freed slot to take (0: none). Served one at a time, each
-- would be granted at from (or refused by its own max_wait), so the run is
-- served at once and recorded as one entry: a coalesced batch costs one
-- bisection, not one per request (and a lone request that fits is a run
-- of one, the cheapest way through). unfit is the least n the call found
-- not to fit at from: as units are only added, no run of it or more can
-- fit any more, and a queueing batch is not searched again.
local function run_at(quotas, i, k, from, now, unfit)
  if tonumber(argv[4 * i + 1]) >= unfit then return 0 end
  local m, n = 1, argv[4 * i + 1]
  while i + m <= k and argv[4 * (i + m) + 1] == n do m = m + 1 end
  n = tonumber(n)
  for _, q in ipairs(quotas) do
    for _, lim in ipairs(q.limits) do m = min(m, floor(lim[1] / n)) end
  end
  if m < 1 then return 0 end
  for _, q in ipairs(quotas) do
    if #q.vac > 0 or last(q) - q.first + 2 > MAXENT or held(q) + m * n >= H32
      or ceil(from / q.tick) - floor(now / q.tick) > HORIZON or after_latest(q, from, m * n) ~= from then
      return 0
    end
  end
  return m
end

-- A reserve's answers, run-length encoded: segments of {count, granted,
-- wait µs, at µs, remaining, step}, the j-th answer of a segment (from 0)
-- having remaining - j * step. A run granted at once is one segment. out
-- is the reply being built, o where its open segment starts, out_now the
-- call's time (reserve sets them).
local out, o, out_now
local function segment(count, granted, at, left, step)
  o = #out + 1
  out[o], out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5] = count, granted, at - out_now, at, left, step
end
local function answer(granted, at, left)
  if o > 0 and out[o + 1] == granted and out[o + 3] == at then
    local c = out[o]
    if c == 1 then
      out[o], out[o + 5] = 2, out[o + 4] - left
      return
    elseif out[o + 4] - c * out[o + 5] == left then
      out[o] = c + 1
      return
    end
  end
  segment(1, granted, at, left, 0)
end

local function reserve(now)
  local seen, k = tonumber(argv[2]), tonumber(argv[3])
  if not seen or not k or k < 1 then
    return redis.error_reply('window.lua: reserve wants seen and a count of requests >= 1, got ' .. tostring(argv[2]) .. ' ' .. tostring(argv[3]))
  end
  local most, ids = 0, false
  for i = 1, k do
    -- (a coalesced call's requests mostly ask for 1 unit, and wait any
    -- time or none: those strings need no parsing)
    local id, n, w = argv[4 * i], argv[4 * i + 1], argv[4 * i + 2]
    n = n == '1' and 1 or tonumber(n)
    local max_wait = w == '-1' or w == '0' or tonumber(w)
    if not n or n < 1 or n >= H32 or not max_wait or (id ~= '-' and #id ~= 8) then
      return redis.error_reply('window.lua: reserve wants an 8-byte id or -, n >= 1 and max_wait, got ' .. tostring(argv[4 * i + 1]) .. ' ' .. tostring(argv[4 * i + 2]))
    end
    most, ids = max(most, n), ids or id ~= '-'
  end
  local quotas, err = load_all(4 + 4 * k, most, true, true)
  if not quotas then return redis.error_reply(err) end
  local conflict = 0
  for _, q in ipairs(quotas) do
    prepare(q, now) -- before the caller's limits replace the stored ones
    if store_limits(q, now) then conflict, q.differ = 1, true end
    if q.heard > q.pause then q.pause, q.dirty = q.heard, true end
    -- The caller holds a grant the key does not know of, or the key is
    -- gone while the caller knew of a reservation in it: the key lost
    -- data. Fill every limit at that time (or now, if later), so nothing
    -- granted before is granted again on top.
    local lost = q.exists and seen or max(seen, q.known)
    if lost > now - q.wide and lost > latest(q) then
      local r = 0
      for _, lim in ipairs(q.limits) do r = max(r, lim[1]) end
      record(q, max(lost, now), r)
      q.dirty = true
    end
  end
  -- A call is a retry if the first key remembers its first request's id
  -- among its last NCALL calls: its requests are then looked up among the
  -- records (the first is always recorded, n 0 when refused; the others
  -- when granted).
  local q1 = quotas[1]
  local id1 = argv[4] ~= '-' and argv[4] or nil
  local retry = id1 and find_id(sub(q1.calls, 1, q1.ncall * 8), id1, 8)
  if ids and not retry then ring_room(q1, k, now) end
  if id1 and not retry then
    q1.calls = sub(q1.calls, 1, q1.cnext * 8) .. id1 .. sub(q1.calls, q1.cnext * 8 + 9)
    q1.cnext, q1.ncall, q1.dirty = (q1.cnext + 1) % NCALL, min(q1.ncall + 1, NCALL), true
  end
  local from = now
  for _, q in ipairs(quotas) do from = max(from, q.pause) end
  local unfit = H32 -- see run_at
  out, o, out_now = {}, 0, now
  local i = 1
  while i <= k do
    local m = not retry and run_at(quotas, i, k, from, now, unfit) or 0
    local n, want = tonumber(argv[4 * i + 1]), argv[4 * i + 3]
    local now_all = m > 0 and from == now -- no wait: each is granted
    for j = i + 1, now_all and i + m - 1 or 0 do
      if argv[4 * j + 3] ~= want then now_all = false; break end
    end
    if now_all then
      -- The whole run granted now, asking the same of remaining: its
      -- records are appended in one loop, its answers are one segment.
      remember_run(q1, i, i + m - 1, suffix(from, n))
      if want == '1' then
        -- What could be granted before the run: at least m * n, since the
        -- run fits now under every limit; the j-th leaves j * n less.
        local base = remaining_now(quotas, now)
        segment(m, 1, from, base - n, n)
      else
        segment(m, 1, from, 0, 0)
      end
      for _, q in ipairs(quotas) do
        record(q, from, m * n)
        q.dirty = true
      end
      i = i + m
    elseif m > 0 then
      local got, base, tail = 0, nil, nil
      for j = i, i + m - 1 do
        local id, max_wait = argv[4 * j], tonumber(argv[4 * j + 2])
        local granted = (max_wait < 0 or from - now <= max_wait) and 1 or 0
        if granted == 1 then
          got = got + 1
          if id ~= '-' then
            tail = tail or suffix(from, n)
            remember(q1, id .. tail)
          end
        elseif j == 1 and id ~= '-' then
          remember(q1, id .. suffix(now, 0))
        end
        local left = 0
        if argv[4 * j + 3] == '1' then
          base = base or remaining_now(quotas, now) -- before the run: its units are recorded below
          left = max(0, base - got * n)
        end
        answer(granted, from, left)
      end
      if got > 0 then
        for _, q in ipairs(quotas) do
          record(q, from, got * n)
          q.dirty = true
        end
      end
      i = i + m
    else
      local id, n, max_wait = argv[4 * i], tonumber(argv[4 * i + 1]), tonumber(argv[4 * i + 2])
      if id == '-' then id = nil end
      local granted, at, left = 0, now, 0
      local rec = retry and id and find_id(ring(q1), id, RSZ)
      local rat, rn
      if rec then rat, rn = grant(q1.ring, rec + 8) end
      if rn == n then
        granted, at = 1, rat
      else
        local slot
        at, slot = freed_slot(quotas, from, n)
        if not at then
          at = now
          for _, q in ipairs(quotas) do at = after_latest(q, at, n) end
          if at > from then unfit = min(unfit, n) end
        end
        if max_wait < 0 or at - now <= max_wait then
          granted = 1
          for _, q in ipairs(quotas) do
            if not slot and (last(q) - q.first + 2 > MAXENT or held(q) + n >= H32 or ceil(at / q.tick) - floor(now / q.tick) > HORIZON) then
              granted = -1
            end
          end
        end
        if granted == 1 then
          for j, q in ipairs(quotas) do
            if slot then
              local v = q.vac[slot[j]]
              v[2] = v[2] - n
              if v[2] == 0 then table.remove(q.vac, slot[j]) end
            else
              record(q, at, n)
            end
            q.dirty = true
          end
          if rec then -- refused before, granted now: the same record says so
            q1.recw[#q1.recw + 1] = { (rec - 1) / RSZ, id .. suffix(at, n) }
          elseif id then
            remember(q1, id .. suffix(at, n))
          end
        elseif i == 1 and id and not rec then
          remember(q1, id .. suffix(now, 0))
        end
      end
      if argv[4 * i + 3] == '1' then left = remaining_now(quotas, now) end
      answer(granted, at, left)
      i = i + 1
    end
  end
  out[#out + 1] = conflict
  for _, q in ipairs(quotas) do
    if q.dirty then write(q, now) end
    out[#out + 1] = latest(q)
  end
  return out
end

local function cancel(now)
  local id, n, at = argv[2], tonumber(argv[3]), tonumber(argv[4])
  if not n or n < 1 or not at or (id ~= '-' and #id ~= 8) then
    return redis.error_reply('window.lua: cancel wants an 8-byte id or -, n >= 1 and at, got ' .. tostring(argv[3]) .. ' ' .. tostring(argv[4]))
  end
  -- Removes up to n units from the newest entry; returns how many.
  local function drop_newest(q, n)
    local l = last(q)
    local u = units_at(q, l)
    local c = min(n, u)
    if l <= q.fixed then
      local e = { tick_of(q, l), cum_of(q, l) }
      q.fixed = q.fixed - 1
      table.insert(q.tail, 1, e)
    end
    local e = q.tail[l - q.fixed]
    if c == u then table.remove(q.tail, l - q.fixed) else e[2] = (e[2] - c) % M32 end
    return c
  end
  local quotas = {}
  for i, key in ipairs(keys) do
    local q, err = load(key)
    if not q then return redis.error_reply(err) end
    q.limits, q.wide = q.stored, widest(q.stored)
    local nvac = #q.vac
    drop_passed(q, now)
    q.dirty = #q.vac ~= nvac
    quotas[i] = q
  end
  local q1 = quotas[1]
  if id ~= '-' then
    -- Only once per id: a record given back (or refused) holds n 0. A
    -- request whose record was dropped is given back by n and at, and
    -- leaves such a record, so running this twice still gives back once.
    local r = ring(q1)
    local rec = find_id(r, id, RSZ)
    if rec then
      local rat, rn = grant(r, rec + 8)
      if rn == 0 then return { 0, q1.exists and latest(q1) or -1, now } end
      n, at = rn, rat
      q1.recw[#q1.recw + 1] = { (rec - 1) / RSZ, id .. suffix(at, 0) }
    elseif at < 0 then
      return { 0, q1.exists and latest(q1) or -1, now }
    elseif q1.exists then
      ring_room(q1, 1, now)
      remember(q1, id .. suffix(at, 0))
    end
    q1.dirty = q1.exists
  end
  local first
  for _, q in ipairs(quotas) do
    local removed = 0
    if q.exists then
      local tk = ceil(at / q.tick)
      local i = after_tick(q, tk) - 1
      if i >= q.first and tick_of(q, i) == tk then
        local free, fi = units_at(q, i), freed_at(q, tk, 1)
        if fi then free = free - q.vac[fi][2] end
        removed = min(n, free)
        if removed > 0 and i == last(q) then
          drop_newest(q, removed)
          -- A freed slot that is now the newest is no slot: drop it too.
          while last(q) >= q.first do
            local vi = freed_at(q, tick_of(q, last(q)), units_at(q, last(q)))
            if not vi then break end
            drop_newest(q, q.vac[vi][2])
            table.remove(q.vac, vi)
          end
        elseif removed > 0 and tk * q.tick >= now and (fi or #q.vac < MAXVAC) then
          -- Later reservations stay: the units become a freed slot that
          -- the next request that fits takes, at this time.
          if fi then
            q.vac[fi][2] = q.vac[fi][2] + removed
          else
            q.vac[#q.vac + 1] = { tk, removed }
            table.sort(q.vac, function(a, b) return a[1] < b[1] end)
          end
        else
          -- Its time has passed (or no slot is left): the units just stop
          -- counting. Every later count drops by them.
          if i <= q.fixed then
            local moved = {}
            for k = i, q.fixed do moved[#moved + 1] = { tick_of(q, k), cum_of(q, k) } end
            for _, e in ipairs(q.tail) do moved[#moved + 1] = e end
            q.tail, q.fixed = moved, i - 1
          end
          for k = i - q.fixed, #q.tail do q.tail[k][2] = (q.tail[k][2] - removed) % M32 end
          if units_at(q, i) == 0 then table.remove(q.tail, i - q.fixed) end
        end
        if removed > 0 then q.dirty = true end
      end
    end
    if q.dirty then write(q, now) end
    if not first then first = { removed, not q.exists and -1 or latest(q), now } end
  end
  return first
end

local function pause(now)
  local d = tonumber(argv[2])
  if not d or d < 1 then
    return redis.error_reply('window.lua: pause wants a duration >= 1 µs, got ' .. tostring(argv[2]))
  end
  local quotas, err = load_all(3, 1, true, false)
  if not quotas then return redis.error_reply(err) end
  local pause_end = now + d
  for _, q in ipairs(quotas) do
    prepare(q, now)
    store_limits(q, now)
    q.pause = max(q.pause, pause_end)
    write(q, now)
    redis.call('PUBLISH', 'ratelimit:pause', q.key .. ' ' .. string.format('%d %d', now, q.pause))
  end
  return { now, pause_end }
end

local function status(now)
  local quotas, err = load_all(2, 1, false, false)
  if not quotas then return redis.error_reply(err) end
  local out = { now }
  for _, q in ipairs(quotas) do
    local future = units_after(q, ceil(now / q.tick) * q.tick) -- a grant made now is recorded in now's tick
    out[#out + 1] = q.exists and 1 or 0
    out[#out + 1] = q.changed
    out[#out + 1] = #q.limits
    for _, lim in ipairs(q.limits) do
      local saved = q.limits
      q.limits = { lim }
      local at = freed_slot({ q }, max(now, q.pause), 1) or after_latest(q, now, 1)
      q.limits = saved
      out[#out + 1] = lim[1]
      out[#out + 1] = lim[2]
      out[#out + 1] = units_after(q, now - lim[2]) - future
      out[#out + 1] = future
      out[#out + 1] = at - now
    end
  end
  return out
end

local ops = { reserve = reserve, cancel = cancel, pause = pause, status = status }

-- One call, on its keys and arguments (a script's KEYS and ARGV).
local function run(k, a)
  keys, argv = k, a
  if not byte then bind() end
  local op = ops[argv[1]]
  if not op then
    return redis.error_reply('window.lua: unknown operation ' .. tostring(argv[1]) .. ', want reserve, cancel, pause or status')
  end
  local t = redis.call('TIME')
  return op(tonumber(t[1]) * 1000000 + tonumber(t[2]))
end

-- Run as a script (EVAL), this file serves one call. Loaded as a function
-- library (FUNCTION LOAD), it binds nothing and calls nothing: it hands run
-- to the lines package limiter/redis wraps it in, which register it, so
-- each call runs only run and what it calls.
if redis.register_function then return run end
return run(KEYS, ARGV)
