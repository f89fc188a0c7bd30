"""Lua scripts of the Redis backend: each one is a single atomic step on the server.

Key layout under the app's prefix P (one Redis can host many apps):

    P:seq              delivery sequence; a delivery lives in its step's stream as entry 0-<seq>
    P:q:<step>         stream of unsettled deliveries of one step (consumer group "stepline")
    P:dl:<step>        sorted set of retries and delayed emits waiting for their time:
                       "<id>|<attempt>|<payload>"
    P:steps            set of steps that ever got a delivery
    P:rc:<step>        hash "0-<seq>" -> attempt of a delivery taken over after its lease ran
                       out (XCLAIM keeps its id): only an outcome of that attempt settles it
    P:ka:<step>, P:kw:...   ordering keys of steps with concurrency_per_key (redis_keys.py)
    P:rl:<step>, P:rk:...   rate limits (redis_rates.py)
    P:dd:<n>:<topic>:<key>   idempotency key of an emit, expires after the dedup window
    P:dead, P:deadm    hashes id -> "<step>\\n<payload>" and id -> JSON of the failure
    P:deadz, P:deadn   sorted set of dead ids (oldest first), hash step -> count
    P:cron:<step>      last fired tick
    P:sc / P:lc        spans / log entries a commit at a time: hash commit number -> their
                       JSON rows, one a line; indexed by P:scz / P:lcz (score the number,
                       member "<number>\\n<count>\\n" + "<step>\\t<trace>\\n" per row), which
                       readers scan and filter; P:scn / P:lcn count the rows kept
    P:probe            time of /readyz's last write probe (made only after a failed write;
                       expires after a day)

Settled deliveries are deleted from their stream (XACK + XDEL), so XLEN counts what is unsettled
and nothing grows without bound. Entry ids come from one global counter so that a delivery id is
unique across steps, as the SQLite backend's row ids are.
"""

from __future__ import annotations

from app.backends.redis_keys import KEYED
from app.backends.redis_rates import RATES

__all__ = ["CLEAR", "FIRE", "INCREMENT", "PRELUDE", "PRUNE", "RELEASE", "REPLAY"]

PRELUDE = (
    """
local P = ARGV[1]
local G = 'stepline'

-- Sequence numbers of this script's enqueues: a block taken at once (INCRBY) for the ones
-- counted in advance, then one INCR each. Taken in order either way, so a stream's entry ids
-- keep increasing even when other INCRs of the counter come in between.
local seq_next, seq_last = 1, 0
local function reserve_seqs(n)
  if n > 0 then
    seq_last = redis.call('INCRBY', P .. ':seq', n)
    seq_next = seq_last - n + 1
  end
end

local qkeys, listed = {}, {}
local function qkey(step)
  local q = qkeys[step]
  if not q then
    q = P .. ':q:' .. step
    qkeys[step] = q
  end
  return q
end

local function enqueue(step, payload, attempt)
  local seq
  if seq_next <= seq_last then
    seq = seq_next
    seq_next = seq + 1
  else
    seq = redis.call('INCR', P .. ':seq')
  end
  redis.call('XADD', qkey(step), '0-' .. seq, 'p', payload, 'a', attempt)
  if not listed[step] then
    redis.call('SADD', P .. ':steps', step)
    listed[step] = true
  end
end
"""
    + KEYED
    + RATES
    + """
-- One delivery of a message to a step, by its plan: ordering key ('' for none) and its
-- limit, debounce key, quiet seconds ('' for no debounce), max wait, rate key ('' for none).
local function place_planned(step, payload, due, pk, pl, dk, quiet, max_wait, rk, now)
  local body = rate_keyed(payload, rk)
  if quiet ~= '' then
    place_debounced(step, body, pk, pl, dk, quiet, max_wait, now)
  elseif pk == '' then
    place(step, body, due)
  else
    place_keyed(step, body, due, pk, pl)
  end
end

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
        place_planned(ARGV[j], payload, due, ARGV[j + 1], ARGV[j + 2], ARGV[j + 3],
          ARGV[j + 4], ARGV[j + 5], ARGV[j + 6], now)
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

-- True when the outcome of a run of delivery `id` ('0-<seq>') at `attempt` is stale: the
-- delivery was taken over since (its lease ran out), and another run holds it now.
local function stale(step, id, attempt)
  local rc = P .. ':rc:' .. step
  local held = redis.call('HGET', rc, id)
  if not held then return false end
  if tonumber(held) ~= tonumber(attempt) then return true end
  redis.call('HDEL', rc, id)
  return false
end

-- The indexes of `ids` (all of first runs, attempt 1) not taken over since: one EXISTS while
-- no delivery of the step is.
local function first_claims(step, ids)
  local rc, kept = P .. ':rc:' .. step, {}
  if redis.call('EXISTS', rc) == 0 then
    for k = 1, #ids do kept[k] = k end
    return kept, false
  end
  for s = 1, #ids, 4000 do
    local held = redis.call('HMGET', rc, unpack(ids, s, math.min(s + 3999, #ids)))
    for k = 1, #held do
      if not held[k] then kept[#kept + 1] = s + k - 1 end
    end
  end
  return kept, true
end

local function payload_of(q, id)
  local e = redis.call('XRANGE', q, id, id)
  if e[1] then return e[1][2][2] end
  return nil
end
"""
)

# ARGV: prefix, count, then step, seq, attempt per delivery. Due at once, attempt not counted.
RELEASE = (
    PRELUDE
    + """
local i = 3
for _ = 1, tonumber(ARGV[2]) do
  local step, id = ARGV[i], '0-' .. ARGV[i + 1]
  local q = P .. ':q:' .. step
  if not stale(step, id, ARGV[i + 2]) and ack(q, id) == 1 then
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
    PRELUDE
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
    -- A replay starts afresh: its Retry window from its next first run, as a new delivery's.
    payload = string.gsub(payload, '^{"f":[^,]*,', '{', 1)
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
    PRELUDE
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
    PRELUDE
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
    PRELUDE
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
    PRELUDE
    + """
for _, g in ipairs(redis.call('SMEMBERS', P .. ':sgroups')) do
  local idx = P .. ':sk:' .. #g .. ':' .. g
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', ARGV[2])
  if redis.call('ZCARD', idx) == 0 then redis.call('SREM', P .. ':sgroups', g) end
end
return 1
"""
)
