"""Ordering keys in the Redis backend (see app/flow.py for what they mean), as Lua functions
shared by the scripts of redis_lua.py.

Keys under the app's prefix P, for a step that declares `concurrency_per_key`:

    P:kn:<step>                   hash key -> its deliveries let go plus those waiting
    P:kw:<len>:<step>:<key>       list, in emit order, of deliveries of the key waiting for a
                                  turn: "<due>|<retry-set member>"
    P:ka:<step>                   what an older version kept instead of P:kn: deliveries let go
                                  only (at most the limit), so its settlements popped the list
    P:db:<step>, P:dm:<step>      debounce: key -> "<first emit>|<member>", member -> keys
                                  (P:dm also names the key of a retry that released it)

A keyed delivery carries its key in its payload ("k", and its limit as "kl"). One that may go
is placed like any other (the stream, or the retry set when delayed); one that may not waits in
the retry set under a score no clock reaches (so it is counted and shown as unsettled) and in
its key's list. Each acknowledgement or dead letter of a keyed delivery lets the next one of
its key go; a retry, a lease takeover or a release keeps its turn, except the retry of a step
with `key_on_failure: "release"`: it lets the next go as well and, once due, takes a turn
behind its key's queue like a new delivery, its attempts kept. The scripts run atomically,
so the order holds across every process sharing the Redis. As P:kn counts the waiting ones
too, a settlement that leaves it at zero knows no list to pop: one HINCRBY and one HDEL
rather than an LPOP as well. A step whose P:ka still exists (deliveries placed
by the older version, in flight during an upgrade) goes on with P:ka until it has drained:
P:kn is only written while P:ka is absent, and a drained hash is gone, so a key is never
counted in both. A commit's keyed deliveries of a step are placed, and its keyed
acknowledgements settled, a step at a time: one HMGET and one HSET (HDEL) for all their keys,
as a command costs a script more than the rest of a delivery's work. P:kn holds a field ''
(no key is empty) with a value longer than hash-max-listpack-value, which keeps it a hash
table: a small hash is a list that each command walks.

A dead letter keeps its keys: its replay waits for its ordering key's turn like a new
delivery. Rate limits are in redis_rates.py.
"""

from __future__ import annotations

__all__ = ["KEYED", "WAITING"]

WAITING = 1e18
"""Retry-set score of a delivery waiting for its key: later than any due time."""

KEYED = """
local WAITING = '1e18'
local LONG = string.rep('-', 100)

local function key_list(step, pk)
  return P .. ':kw:' .. #step .. ':' .. step .. ':' .. pk
end

-- `attempt`: runs it has had (0 when not given: a new delivery).
local function place(step, payload, due, attempt)
  attempt = attempt or 0
  if due == '' then
    enqueue(step, payload, attempt)
  else
    local seq = redis.call('INCR', P .. ':seq')
    redis.call('ZADD', P .. ':dl:' .. step, due, seq .. '|' .. attempt .. '|' .. payload)
    redis.call('SADD', P .. ':steps', step)
  end
end

local function key_tail(pk, pl)
  return ',"k":' .. cjson.encode(pk) .. ',"kl":' .. pl .. '}'
end

-- The payload without its key (a replayed dead letter gets it back through place_keyed).
local function unkey(payload, pk, pl)
  local tail = key_tail(pk, pl)
  if string.sub(payload, -#tail) == tail then
    return string.sub(payload, 1, -#tail - 1) .. '}'
  end
  return payload
end

-- Steps whose ordering keys are still counted the older way (P:ka exists), asked once a script.
local legacy_keys = {}
local function legacy(step)
  local v = legacy_keys[step]
  if v == nil then
    v = redis.call('EXISTS', P .. ':ka:' .. step) == 1
    legacy_keys[step] = v
  end
  return v
end

local function wait_turn(step, body, due, pk, attempt)
  local member = redis.call('INCR', P .. ':seq') .. '|' .. (attempt or 0) .. '|' .. body
  redis.call('ZADD', P .. ':dl:' .. step, WAITING, member)
  redis.call('SADD', P .. ':steps', step)
  redis.call('RPUSH', key_list(step, pk), due .. '|' .. member)
end

local function place_keyed(step, payload, due, pk, pl, attempt)
  local body = string.sub(payload, 1, -2) .. key_tail(pk, pl)
  if legacy(step) then
    local active = P .. ':ka:' .. step
    if redis.call('HINCRBY', active, pk, 1) <= tonumber(pl) then
      place(step, body, due, attempt)
    else
      redis.call('HINCRBY', active, pk, -1)
      wait_turn(step, body, due, pk, attempt)
    end
  -- Counted in with those waiting: the count tells a settlement whether any wait.
  elseif redis.call('HINCRBY', P .. ':kn:' .. step, pk, 1) <= tonumber(pl) then
    place(step, body, due, attempt)
  else
    wait_turn(step, body, due, pk, attempt)
  end
end

-- The keyed deliveries of one step in a commit, `list` holding key, limit, payload of each in
-- emit order: as place_keyed one after another, with one HMGET and one HSET for all of them
-- (a command costs a Lua script more than the rest of a delivery's placing).
local function place_keyed_many(step, list)
  if legacy(step) then
    for j = 1, #list, 3 do place_keyed(step, list[j + 2], '', list[j], list[j + 1]) end
    return
  end
  local kn, fields, counts = P .. ':kn:' .. step, {}, {}
  for j = 1, #list, 3 do
    local pk = list[j]
    if not counts[pk] then
      counts[pk] = 0
      fields[#fields + 1] = pk
    end
  end
  for c = 1, #fields, 4000 do
    local got = redis.call('HMGET', kn, unpack(fields, c, math.min(c + 3999, #fields)))
    for k = 1, #got do counts[fields[c + k - 1]] = tonumber(got[k]) or 0 end
  end
  for j = 1, #list, 3 do
    local pk, pl = list[j], list[j + 1]
    local body = string.sub(list[j + 2], 1, -2) .. key_tail(pk, pl)
    local n = counts[pk] + 1
    counts[pk] = n
    if n <= tonumber(pl) then place(step, body, '') else wait_turn(step, body, '', pk) end
  end
  -- A value longer than hash-max-listpack-value (64 by default) under the field '' (no key is
  -- '') keeps the hash a hash table, where a field is found at once: a small hash is a list
  -- that each command walks, which costs more than the rest of placing a delivery.
  local counted = {'', LONG}
  for _, pk in ipairs(fields) do
    counted[#counted + 1] = pk
    counted[#counted + 1] = counts[pk]
  end
  for c = 1, #counted, 4000 do
    redis.call('HSET', kn, unpack(counted, c, math.min(c + 3999, #counted)))
  end
end

-- The next waiting delivery of a key takes its turn; false when none waits.
local function next_turn(step, pk, now)
  local nxt = redis.call('LPOP', key_list(step, pk))
  if not nxt then return false end
  local cut = string.find(nxt, '|', 1, true)
  local due, member = string.sub(nxt, 1, cut - 1), string.sub(nxt, cut + 1)
  local dl = P .. ':dl:' .. step
  redis.call('ZREM', dl, member)
  if due ~= '' and tonumber(due) > tonumber(now) then
    redis.call('ZADD', dl, due, member)
  else
    local a = string.find(member, '|', 1, true)
    local b = string.find(member, '|', a + 1, true)
    enqueue(step, string.sub(member, b + 1), string.sub(member, a + 1, b - 1))
  end
  return true
end

-- A keyed delivery settled: the next waiting one of its key takes its turn. A count left at
-- zero means none waits, whatever limit each was placed under; above it one may (always, for
-- a limit of 1), so the list is asked.
local function free_key(step, pk, now)
  if legacy(step) then
    if next_turn(step, pk, now) then return end
    if redis.call('HINCRBY', P .. ':ka:' .. step, pk, -1) <= 0 then
      redis.call('HDEL', P .. ':ka:' .. step, pk)
    end
    return
  end
  local kn = P .. ':kn:' .. step
  if redis.call('HINCRBY', kn, pk, -1) <= 0 then
    redis.call('HDEL', kn, pk)
  else
    next_turn(step, pk, now)
  end
end

-- Keyed deliveries of one step settled together: as free_key for each, with one HMGET, and
-- one HDEL for the keys left at zero (one HSET for the rest), whatever their number.
local function free_keys(step, keys, now)
  if legacy(step) then
    for _, pk in ipairs(keys) do free_key(step, pk, now) end
    return
  end
  local kn, fields, freed = P .. ':kn:' .. step, {}, {}
  for _, pk in ipairs(keys) do
    if freed[pk] then
      freed[pk] = freed[pk] + 1
    else
      freed[pk] = 1
      fields[#fields + 1] = pk
    end
  end
  local gone, kept = {}, {}
  for c = 1, #fields, 4000 do
    local got = redis.call('HMGET', kn, unpack(fields, c, math.min(c + 3999, #fields)))
    for k = 1, #got do
      local pk = fields[c + k - 1]
      local count, n = tonumber(got[k]) or 0, freed[pk]
      if count - n <= 0 then
        gone[#gone + 1] = pk
      else
        kept[#kept + 1] = pk
        kept[#kept + 1] = count - n
      end
      -- One after another, each settlement that left the count above zero let one go.
      for _ = 1, math.min(n, count - 1) do next_turn(step, pk, now) end
    end
  end
  for c = 1, #gone, 4000 do
    redis.call('HDEL', kn, unpack(gone, c, math.min(c + 3999, #gone)))
  end
  for c = 1, #kept, 4000 do
    redis.call('HSET', kn, unpack(kept, c, math.min(c + 3999, #kept)))
  end
end

-- A debounced delivery: the newest of its key's burst waits in the retry set until its key
-- has been quiet (P:db:<step> key -> "<first emit>|<member>", P:dm:<step> member -> keys).
local function place_debounced(step, payload, pk, pl, dk, quiet, max_wait, now)
  local db, dl, dm = P .. ':db:' .. step, P .. ':dl:' .. step, P .. ':dm:' .. step
  local first = tonumber(now)
  local prev = redis.call('HGET', db, dk)
  if prev then
    local cut = string.find(prev, '|', 1, true)
    local member = string.sub(prev, cut + 1)
    if redis.call('ZSCORE', dl, member) then
      first = tonumber(string.sub(prev, 1, cut - 1))
      redis.call('ZREM', dl, member)
      redis.call('HDEL', dm, member)
    end
  end
  local due = tonumber(now) + tonumber(quiet)
  if tonumber(max_wait) > 0 then due = math.min(due, first + tonumber(max_wait)) end
  local member = redis.call('INCR', P .. ':seq') .. '|0|' .. payload
  redis.call('ZADD', dl, string.format('%.17g', due), member)
  redis.call('SADD', P .. ':steps', step)
  redis.call('HSET', db, dk, string.format('%.17g', first) .. '|' .. member)
  redis.call('HSET', dm, member, cjson.encode({pk, pl}))
end

-- A retry-set entry whose time came goes to the stream; a debounced one, or a retry that
-- released its key (key_on_failure), takes a turn of its key (P:dm names it).
local function due_entry(step, m)
  local a = string.find(m, '|', 1, true)
  local b = string.find(m, '|', a + 1, true)
  local payload, attempt = string.sub(m, b + 1), string.sub(m, a + 1, b - 1)
  local dm = P .. ':dm:' .. step
  local meta = redis.call('HGET', dm, m)
  if not meta then
    enqueue(step, payload, attempt)
    return
  end
  redis.call('HDEL', dm, m)
  local keys = cjson.decode(meta)
  if keys[1] == '' then
    enqueue(step, payload, attempt)
  else
    place_keyed(step, unkey(payload, keys[1], keys[2]), '', keys[1], keys[2], attempt)
  end
end
"""
