"""Lua scripts of the Redis backend: each one is a single atomic step on the server.

Key layout under the app's prefix P (one Redis can host many apps):

    P:seq              delivery sequence; a delivery lives in its step's stream as entry 0-<seq>
    P:q:<step>         stream of unsettled deliveries of one step (consumer group "stepline")
    P:dl:<step>        sorted set of retries and delayed emits waiting for their time:
                       "<id>|<attempt>|<payload>"
    P:steps            set of steps that ever got a delivery
    P:ka:<step>, P:kw:...   ordering keys of steps with concurrency_per_key (redis_keys.py)
    P:dd:<n>:<topic>:<key>   idempotency key of an emit, expires after the dedup window
    P:dead, P:deadm    hashes id -> "<step>\\n<payload>" and id -> JSON of the failure
    P:deadz, P:deadn   sorted set of dead ids (oldest first), hash step -> count
    P:cron:<step>      last fired tick
    P:sp / P:lg        hashes seq -> JSON span / log entry, indexed by P:spz (all, member
                       "<seq>\\n<trace>\\n<step>"), P:spt:<trace> and P:sps:<step>; same for lg

Settled deliveries are deleted from their stream (XACK + XDEL), so XLEN counts what is unsettled
and nothing grows without bound. Entry ids come from one global counter so that a delivery id is
unique across steps, as the SQLite backend's row ids are.
"""

from __future__ import annotations

from app.backends.redis_keys import KEYED

__all__ = ["CLAIM", "CLEAR", "FIRE", "INCREMENT", "PRUNE", "RELEASE", "REPLAY", "WRITE"]

_PRELUDE = (
    """
local P = ARGV[1]
local G = 'stepline'

local function enqueue(step, payload, attempt)
  local seq = redis.call('INCR', P .. ':seq')
  redis.call('XADD', P .. ':q:' .. step, '0-' .. seq, 'p', payload, 'a', attempt)
  redis.call('SADD', P .. ':steps', step)
end
"""
    + KEYED
    + """
-- Reads messages from ARGV starting at i: topic, key, payload, due, nsteps, then per step:
-- step, ordering key ('' for none), its limit, debounce key, quiet seconds ('' for no
-- debounce), max wait (0 for none), rate key ('' for none). A message with a due time waits
-- in each step's retry set, as a retry does, until then; keyed ones also wait for their
-- key's turn.
local function messages(i, count, ttl_ms, now)
  for _ = 1, count do
    local topic, key, payload, due = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local n = tonumber(ARGV[i + 4])
    local fresh = true
    if key ~= '' then
      local k = P .. ':dd:' .. #topic .. ':' .. topic .. ':' .. key
      fresh = redis.call('SET', k, '1', 'NX', 'PX', ttl_ms)
    end
    if fresh then
      for s = 1, n do
        local j = i - 2 + 7 * s
        local step, pk, pl = ARGV[j], ARGV[j + 1], ARGV[j + 2]
        local body = rate_keyed(payload, ARGV[j + 6])
        if ARGV[j + 4] ~= '' then
          place_debounced(step, body, pk, pl, ARGV[j + 3], ARGV[j + 4], ARGV[j + 5], now)
        elseif pk == '' then
          place(step, body, due)
        else
          place_keyed(step, body, due, pk, pl)
        end
      end
    end
    i = i + 5 + 7 * n
  end
  return i
end

local function split3(s)
  local a = string.find(s, '\\n', 1, true)
  local b = string.find(s, '\\n', a + 1, true)
  return string.sub(s, 1, a - 1), string.sub(s, a + 1, b - 1), string.sub(s, b + 1)
end

-- A stream or group that vanished (a flush, a restart without persistence) must not abort a
-- script half way, since Redis keeps the writes made before an error.
local function ack(q, id)
  local n = redis.pcall('XACK', q, G, id)
  return type(n) == 'number' and n or 0
end

local function payload_of(q, id)
  local e = redis.call('XRANGE', q, id, id)
  if e[1] then return e[1][2][2] end
  return nil
end
"""
)

# ARGV: prefix, now, dedup_ms, dead_keep, span_keep, log_keep, nmsg, nout, nspan, nlog, then
# messages (see `messages`), outcomes (step, id, status, retry_at, attempt, meta, ordering
# key or '', its limit),
# spans and logs (trace, step, json).
WRITE = (
    _PRELUDE
    + """
local now, ttl = ARGV[2], ARGV[3]
local dead_keep, span_keep, log_keep = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local nmsg, nout, nspan, nlog = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]),
  tonumber(ARGV[10])
local i = messages(11, nmsg, ttl, now)

local dead_added = false
for _ = 1, nout do
  local step, id, status = ARGV[i], '0-' .. ARGV[i + 1], ARGV[i + 2]
  local q = P .. ':q:' .. step
  -- Only the first settlement of a delivery counts: a late one after a reclaim is ignored.
  if ack(q, id) == 1 then
    local payload = nil
    local pk, pl = ARGV[i + 6], ARGV[i + 7]
    if status ~= 'ok' then payload = payload_of(q, id) end
    redis.call('XDEL', q, id)
    if pk ~= '' and status ~= 'retry' then free_key(step, pk, now) end
    if payload and status == 'retry' then
      redis.call('ZADD', P .. ':dl:' .. step, ARGV[i + 3],
        ARGV[i + 1] .. '|' .. ARGV[i + 4] .. '|' .. payload)
    elseif payload and status == 'dead' then
      local did = redis.call('INCR', P .. ':deadseq')
      redis.call('HSET', P .. ':dead', did, step .. '\\n' .. payload)
      redis.call('HSET', P .. ':deadm', did, ARGV[i + 5])
      redis.call('ZADD', P .. ':deadz', did, did)
      redis.call('HINCRBY', P .. ':deadn', step, 1)
      dead_added = true
    end
  end
  i = i + 8
end

if dead_added then
  local over = redis.call('ZCARD', P .. ':deadz') - dead_keep
  if over > 0 then
    for _, did in ipairs(redis.call('ZRANGE', P .. ':deadz', 0, over - 1)) do
      local v = redis.call('HGET', P .. ':dead', did)
      local step = string.sub(v, 1, string.find(v, '\\n', 1, true) - 1)
      redis.call('HINCRBY', P .. ':deadn', step, -1)
      redis.call('HDEL', P .. ':dead', did)
      redis.call('HDEL', P .. ':deadm', did)
    end
    redis.call('ZREMRANGEBYRANK', P .. ':deadz', 0, over - 1)
  end
end

local function records(kind, count, keep)
  if count == 0 then return end
  local h, z = P .. ':' .. kind, P .. ':' .. kind .. 'z'
  for _ = 1, count do
    local trace, step, json = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    local seq = redis.call('INCR', P .. ':' .. kind .. 'seq')
    redis.call('HSET', h, seq, json)
    redis.call('ZADD', z, seq, seq .. '\\n' .. trace .. '\\n' .. step)
    if trace ~= '' then redis.call('ZADD', h .. 't:' .. trace, seq, seq) end
    if step ~= '' then redis.call('ZADD', h .. 's:' .. step, seq, seq) end
    i = i + 3
  end
  local over = redis.call('ZCARD', z) - keep
  if over > 0 then
    for _, m in ipairs(redis.call('ZRANGE', z, 0, over - 1)) do
      local seq, trace, step = split3(m)
      redis.call('HDEL', h, seq)
      if trace ~= '' then redis.call('ZREM', h .. 't:' .. trace, seq) end
      if step ~= '' then redis.call('ZREM', h .. 's:' .. step, seq) end
    end
    redis.call('ZREMRANGEBYRANK', z, 0, over - 1)
  end
end
records('sp', nspan, span_keep)
records('lg', nlog, log_keep)
return 1
"""
)

# ARGV: prefix, consumer, now, nsteps, then per step: step, n, lease_ms, reclaim, rate limit
# (0: none), its window in seconds and whether it holds per rate key ('1').
# Returns a flat list: step, seq, payload, attempt for each claimed delivery.
CLAIM = (
    _PRELUDE
    + """
local consumer, now, nsteps = ARGV[2], ARGV[3], tonumber(ARGV[4])
local out = {}
local function add(step, entry, attempt)
  out[#out + 1] = step
  out[#out + 1] = string.sub(entry[1], 3)
  out[#out + 1] = entry[2][2]
  out[#out + 1] = attempt
end
local i = 5
for _ = 1, nsteps do
  local step, n, lease_ms = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local q, dl = P .. ':q:' .. step, P .. ':dl:' .. step
  local before, rate_n, window = #out, tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5])
  local per_key, waiting = rate_n > 0 and ARGV[i + 6] == '1', {}
  if rate_n > 0 and not per_key then n = rate_allowance(step, n, rate_n, window, now) end
  -- Taken, or (its rate key spent) back to the retry set with its attempt not counted.
  local function take(entry, attempt)
    local due = per_key and rate_key_wait(step, entry, rate_n, window, now, waiting)
    if not due then
      add(step, entry, attempt)
      return 1
    end
    ack(q, entry[1])
    redis.call('XDEL', q, entry[1])
    local member = string.sub(entry[1], 3) .. '|' .. (attempt - 1) .. '|' .. entry[2][2]
    redis.call('ZADD', dl, string.format('%.17g', due), member)
    return 0
  end
  -- Retries whose time has come go back to the stream first, keeping their attempt count.
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', dl, '-inf', now, 'LIMIT', 0, 1000)) do
    due_entry(step, m)
    redis.call('ZREM', dl, m)
  end
  local got = 0
  local stale = {}
  if ARGV[i + 3] == '1' and n > 0 then
    stale = redis.pcall('XPENDING', q, G, 'IDLE', lease_ms, '-', '+', n)
    if stale.err then stale = {} end
  end
  -- Deliveries whose lease ran out (their consumer died or hung) are taken over first.
  for _, p in ipairs(stale) do
    local c = redis.call('XCLAIM', q, G, consumer, lease_ms, p[1])
    if c[1] then got = got + take(c[1], tonumber(c[1][2][4]) + p[4] + 1) end
  end
  -- With a per-key rate limit, entries of spent keys step aside: read on, a few times.
  for _ = 1, per_key and 4 or 1 do
    if got >= n then break end
    local args = {'XREADGROUP', 'GROUP', G, consumer, 'COUNT', n - got, 'STREAMS', q, '>'}
    local r = redis.pcall(unpack(args))
    if type(r) == 'table' and r.err then
      -- The first claim of a step creates its group, from the start of its stream.
      redis.call('XGROUP', 'CREATE', q, G, '0', 'MKSTREAM')
      r = redis.call(unpack(args))
    end
    if not r then break end
    for _, e in ipairs(r[1][2]) do got = got + take(e, tonumber(e[2][4]) + 1) end
  end
  if rate_n > 0 and not per_key then rate_spent(step, out, before, now) end
  i = i + 7
end
return out
"""
)

# ARGV: prefix, count, then step, seq, attempt per delivery. Due at once, attempt not counted.
RELEASE = (
    _PRELUDE
    + """
local i = 3
for _ = 1, tonumber(ARGV[2]) do
  local step, id = ARGV[i], '0-' .. ARGV[i + 1]
  local q = P .. ':q:' .. step
  if ack(q, id) == 1 then
    local payload = payload_of(q, id)
    redis.call('XDEL', q, id)
    if payload then enqueue(step, payload, math.max(tonumber(ARGV[i + 2]) - 1, 0)) end
  end
  i = i + 3
end
return 1
"""
)

# ARGV: prefix, all ('1' or '0'), ids... Returns how many dead letters went back to the queue.
REPLAY = (
    _PRELUDE
    + """
local ids = {}
if ARGV[2] == '1' then
  ids = redis.call('ZRANGE', P .. ':deadz', 0, -1)
else
  for j = 3, #ARGV do ids[#ids + 1] = ARGV[j] end
end
local count = 0
for _, did in ipairs(ids) do
  local v = redis.call('HGET', P .. ':dead', did)
  if v then
    local cut = string.find(v, '\\n', 1, true)
    local step, payload = string.sub(v, 1, cut - 1), string.sub(v, cut + 1)
    local d = cjson.decode(payload)
    if d.k then  -- it keeps its ordering key: it waits for the key's turn
      place_keyed(step, unkey(payload, d.k, d.kl), '', d.k, d.kl)
    else
      enqueue(step, payload, 0)
    end
    redis.call('HDEL', P .. ':dead', did)
    redis.call('HDEL', P .. ':deadm', did)
    redis.call('ZREM', P .. ':deadz', did)
    redis.call('HINCRBY', P .. ':deadn', step, -1)
    count = count + 1
  end
end
return count
"""
)

# ARGV: prefix, step, tick, dedup_ms, then one message. 1 when this call fired the tick.
FIRE = (
    _PRELUDE
    + """
local k = P .. ':cron:' .. ARGV[2]
local last = redis.call('GET', k)
if last and tonumber(last) >= tonumber(ARGV[3]) then return 0 end
redis.call('SET', k, ARGV[3])
messages(5, 1, ARGV[4])
return 1
"""
)

# ARGV: prefix, state key, group index, group, field, by, by_is_float. Returns the new JSON.
INCREMENT = (
    _PRELUDE
    + """
local k, by = ARGV[2], tonumber(ARGV[6])
local v = redis.call('GET', k)
local old, float = 0, ARGV[7] == '1'
if v and v ~= 'null' then
  old = tonumber(v)
  if old == nil then return redis.error_reply('STEPLINE_NAN the value is not a number') end
  if string.find(v, '[%.eE]') then float = true end
end
local new = old + by
local text
if not float and math.abs(new) < 2 ^ 53 then
  text = string.format('%d', new)
else
  text = string.format('%.17g', new)
  if not string.find(text, '[%.eEn]') then text = text .. '.0' end
end
if v then
  redis.call('SET', k, text, 'KEEPTTL')
else
  redis.call('SET', k, text)
  redis.call('ZADD', ARGV[3], 'inf', ARGV[5])
  redis.call('SADD', P .. ':sgroups', ARGV[4])
end
return text
"""
)

# ARGV: prefix, group index, group, key prefix. Deletes every key of a group; returns how many
# were still alive.
CLEAR = (
    _PRELUDE
    + """
local idx = ARGV[2]
local live = 0
local keys = redis.call('ZRANGE', idx, 0, -1)
for _, f in ipairs(keys) do live = live + redis.call('DEL', ARGV[4] .. f) end
redis.call('DEL', idx)
redis.call('SREM', P .. ':sgroups', ARGV[3])
return live
"""
)

# ARGV: prefix, now_ms. Drops expired keys from the state indexes, and groups left empty.
PRUNE = (
    _PRELUDE
    + """
for _, g in ipairs(redis.call('SMEMBERS', P .. ':sgroups')) do
  local idx = P .. ':sk:' .. #g .. ':' .. g
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', ARGV[2])
  if redis.call('ZCARD', idx) == 0 then redis.call('SREM', P .. ':sgroups', g) end
end
return 1
"""
)
