"""Lua of the Redis backend's hot path: a writer commit (WRITE), a claim (CLAIM), and both in
one call (WRITE_CLAIM) for a commit that also claims the work it fed.

The arguments are encoded by app/backends/redis_batch.py, whose docstring gives the format.
Plain acknowledgements are applied with one XACK and one XDEL per step, and a commit's spans
and logs are one record each, so a commit costs one command per delivery: the XADD of each
emit.
"""

from __future__ import annotations

from app.backends.redis_lua import PRELUDE

__all__ = ["CLAIM", "WRITE", "WRITE_CLAIM"]

_BODY = r"""
-- Commands with many arguments, in chunks that stay within Lua's stack for unpack.
local function bulk(call, cmd, key, extra, list)
  for s = 1, #list, 4000 do
    local args = {cmd, key}
    if extra then args[3] = extra end
    for k = s, math.min(s + 3999, #list) do args[#args + 1] = list[k] end
    call(unpack(args))
  end
end

-- The spans or logs of a commit (kind 'sc' or 'lc') as one record: `rows` (JSON, one a
-- line) under a commit number, and in the index (score the number) the member
-- "<number>\n<count>\n" then "<step>\t<trace>\n" per row, which readers scan and filter. The
-- oldest commits go while the rest still hold `keep` rows.
local function records(kind, rows, entries, keep)
  if rows == '' then return end
  local h, z, total_key = P .. ':' .. kind, P .. ':' .. kind .. 'z', P .. ':' .. kind .. 'n'
  local seq = redis.call('INCR', P .. ':' .. kind .. 'seq')
  redis.call('HSET', h, seq, rows)
  redis.call('ZADD', z, seq, seq .. '\n' .. entries)
  local total = redis.call('INCRBY', total_key, tonumber(string.match(entries, '^%d+')))
  while total > keep do
    local oldest = redis.call('ZRANGE', z, 0, 0)[1]
    if not oldest then break end
    local old_seq, count = string.match(oldest, '^(%d+)\n(%d+)')
    if total - tonumber(count) < keep then break end
    redis.call('ZREMRANGEBYRANK', z, 0, 0)
    redis.call('HDEL', h, old_seq)
    total = redis.call('DECRBY', total_key, tonumber(count))
  end
end

-- One outcome given as separate arguments from ARGV[i]: step, id, status, retry_at,
-- attempt to store, meta, ordering key or '', its limit, its first run ('' unknown), the
-- attempt it was claimed with. True when it added a dead letter.
local function settle(i, now)
  local step, id, status = ARGV[i], '0-' .. ARGV[i + 1], ARGV[i + 2]
  local q = qkey(step)
  -- Only the run holding the delivery settles it, once: a stale run's outcome (its delivery
  -- taken over since) and a second settlement are ignored.
  if stale(step, id, ARGV[i + 9]) or ack(q, id) ~= 1 then return false end
  local payload = nil
  local pk = ARGV[i + 6]
  if status ~= 'ok' then payload = payload_of(q, id) end
  redis.call('XDEL', q, id)
  if pk ~= '' and status ~= 'retry' then free_key(step, pk, now) end
  if payload and (status == 'retry' or status == 'release') then
    -- A retry keeps its first run (where a Retry's window starts) in front of its payload.
    local first = ARGV[i + 8]
    if first ~= '' and string.sub(payload, 1, 5) ~= '{"f":' then
      payload = '{"f":' .. first .. ',' .. string.sub(payload, 2)
    end
    local member = ARGV[i + 1] .. '|' .. ARGV[i + 4] .. '|' .. payload
    redis.call('ZADD', P .. ':dl:' .. step, ARGV[i + 3], member)
    -- Released: its key went on without it; once due it takes a turn behind it (due_entry).
    if status == 'release' then
      redis.call('HSET', P .. ':dm:' .. step, member, cjson.encode({pk, ARGV[i + 7]}))
    end
  elseif payload and status == 'dead' then
    local did = redis.call('INCR', P .. ':deadseq')
    redis.call('HSET', P .. ':dead', did, step .. '\n' .. payload)
    redis.call('HSET', P .. ':deadm', did, ARGV[i + 5])
    redis.call('ZADD', P .. ':deadz', did, did)
    redis.call('HINCRBY', P .. ':deadn', step, 1)
    return true
  end
  return false
end

local function trim_dead(keep)
  local over = redis.call('ZCARD', P .. ':deadz') - keep
  if over <= 0 then return end
  for _, did in ipairs(redis.call('ZRANGE', P .. ':deadz', 0, over - 1)) do
    local v = redis.call('HGET', P .. ':dead', did)
    local step = string.sub(v, 1, string.find(v, '\n', 1, true) - 1)
    redis.call('HINCRBY', P .. ':deadn', step, -1)
    redis.call('HDEL', P .. ':dead', did)
    redis.call('HDEL', P .. ':deadm', did)
  end
  redis.call('ZREMRANGEBYRANK', P .. ':deadz', 0, over - 1)
end

-- The write section from ARGV[i] (see write_args); returns the index after it.
local function write_batch(i)
  local now, ttl = ARGV[i], ARGV[i + 1]
  local dead_keep, span_keep = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local log_keep = tonumber(ARGV[i + 4])
  local S = {[0] = ''}
  local nsteps = tonumber(ARGV[i + 5])
  for k = 1, nsteps do S[k] = ARGV[i + 5 + k] end
  i = i + 6 + nsteps
  local R = {}
  for r = 1, tonumber(ARGV[i]) do
    local n, route = tonumber(ARGV[i + 1]), {}
    for k = 1, n do route[k] = S[tonumber(ARGV[i + 1 + k])] end
    R[r] = route
    i = i + 1 + n
  end
  reserve_seqs(tonumber(ARGV[i + 1]))
  local lines = ARGV[i + 2]
  i = i + 3
  local route = {}
  -- Keyed deliveries wait here to be placed a step at a time (place_keyed_many), before
  -- anything else that could place one of their keys: a message given as separate arguments
  -- or the acknowledgements.
  local keyed, keyed_steps = {}, {}
  local function defer(step, payload, pk, pl)
    local list = keyed[step]
    if not list then
      list = {}
      keyed[step] = list
      keyed_steps[#keyed_steps + 1] = step
    end
    list[#list + 1] = pk
    list[#list + 1] = pl
    list[#list + 1] = payload
  end
  local function place_deferred()
    for _, step in ipairs(keyed_steps) do place_keyed_many(step, keyed[step]) end
    keyed, keyed_steps = {}, {}
  end
  -- A '&' or '%' line: its route's steps, then n tab-ended fields per step, then the payload.
  local function route_fields(line, n)
    local at = string.find(line, '\t', 2, true)
    local steps, f = R[tonumber(string.sub(line, 2, at - 1))], {}
    at = at + 1
    for k = 1, n * #steps do
      local tab = string.find(line, '\t', at, true)
      f[k] = string.sub(line, at, tab - 1)
      at = tab + 1
    end
    return steps, f, string.sub(line, at)
  end
  for line in string.gmatch(lines, '[^\n]+') do
    local first = string.byte(line, 1)
    if first == 123 then  -- '{': a payload, for the steps of the route named last
      for _, step in ipairs(route) do enqueue(step, line, 0) end
    elseif first == 38 then  -- '&<route>\t', key and limit per step ('' none), payload
      local steps, f, payload = route_fields(line, 2)
      for s, step in ipairs(steps) do
        if f[2 * s - 1] == '' then
          enqueue(step, payload, 0)
        else
          defer(step, payload, f[2 * s - 1], f[2 * s])
        end
      end
    elseif first == 61 then  -- '=': a message given as separate arguments
      place_deferred()
      i = messages(i, 1, ttl, now)
    elseif first == 37 then  -- '%<route>\t' then 6 plan fields per step, then the payload
      local steps, f, payload = route_fields(line, 6)
      for s, step in ipairs(steps) do
        local j = 6 * (s - 1)
        if f[j + 1] ~= '' and f[j + 4] == '' then  -- keyed, not debounced
          defer(step, rate_keyed(payload, f[j + 6]), f[j + 1], f[j + 2])
        else
          place_planned(step, payload, '', f[j + 1], f[j + 2], f[j + 3], f[j + 4], f[j + 5],
            f[j + 6], now)
        end
      end
    else  -- '#<route>'
      route = R[tonumber(string.sub(line, 2))]
    end
  end
  place_deferred()

  local dead_added = false
  lines = ARGV[i]
  i = i + 1
  for line in string.gmatch(lines, '[^\n]+') do
    if line == '=' then
      if settle(i, now) then dead_added = true end
      i = i + 10
    elseif string.byte(line, 1) == 37 then
      -- '%<step>\t<seq>\t<key>...': keyed acknowledgements; each one settled first here
      -- lets the next delivery of its key go.
      local at = string.find(line, '\t', 2, true)
      local step = S[tonumber(string.sub(line, 2, at - 1))]
      local q, ids, keys = qkey(step), {}, {}
      at = at + 1
      while at <= #line do
        local tab = string.find(line, '\t', at, true)
        local stop = string.find(line, '\t', tab + 1, true) or #line + 1
        ids[#ids + 1] = '0-' .. string.sub(line, at, tab - 1)
        keys[#keys + 1] = string.sub(line, tab + 1, stop - 1)
        at = stop + 1
      end
      local kept, some = first_claims(step, ids)
      if some and #kept < #ids then  -- stale runs' acks: their deliveries' keys stay held
        local ids2, keys2 = {}, {}
        for k, j in ipairs(kept) do
          ids2[k] = ids[j]
          keys2[k] = keys[j]
        end
        ids, keys = ids2, keys2
      end
      local acked = 0
      for c = 1, #ids, 4000 do
        local n = redis.pcall('XACK', q, G, unpack(ids, c, math.min(c + 3999, #ids)))
        if type(n) == 'number' then acked = acked + n end
      end
      if acked == #ids then  -- all settled first here: one XACK and one XDEL for the line
        free_keys(step, keys, now)
        bulk(redis.call, 'XDEL', q, nil, ids)
      else
        -- Some were settled before (a late outcome after a reclaim), and their settlement
        -- deleted them: the ones still in the stream are those settled first here.
        for k = 1, #ids do
          if redis.call('XDEL', q, ids[k]) == 1 then free_key(step, keys[k], now) end
        end
      end
    else  -- '<step> <id> <id> ...': plain acknowledgements, one XACK and one XDEL for all
      local ids, q, step = {}, nil, nil
      for word in string.gmatch(line, '%S+') do
        if q then
          ids[#ids + 1] = word
        else
          step = S[tonumber(word)]
          q = qkey(step)
        end
      end
      local kept, some = first_claims(step, ids)
      if some and #kept < #ids then  -- stale runs' acks: their deliveries run on elsewhere
        local ids2 = {}
        for k, j in ipairs(kept) do ids2[k] = ids[j] end
        ids = ids2
      end
      -- A stream or group that vanished (a flush) must not abort the script half way.
      bulk(redis.pcall, 'XACK', q, G, ids)
      bulk(redis.call, 'XDEL', q, nil, ids)
    end
  end
  if dead_added then trim_dead(dead_keep) end

  records('sc', ARGV[i], ARGV[i + 1], span_keep)
  records('lc', ARGV[i + 2], ARGV[i + 3], log_keep)
  return i + 4
end

-- The claim section from ARGV[i]: consumer, now, nsteps, then per step: step, n, lease_ms,
-- reclaim, rate limit (0: none), its window in seconds and whether it holds per rate key
-- ('1'). Returns per step with deliveries: step, "<seq> <attempt> ...", and a JSON array of
-- their payloads.
local function claim_steps(i)
  local consumer, now, nsteps = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  local out = {}
  for _ = 1, nsteps do
    local step, n, lease_ms = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
    local q, dl = qkey(step), P .. ':dl:' .. step
    local rate_n, window = tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5])
    local per_key = rate_n > 0 and ARGV[i + 6] == '1'
    local st = per_key and {counts = {}, last = {}, inset = {}, waiting = {}, taken = {},
      trimmed = {}}
    local nums, pays, flat = {}, {}, {}
    if rate_n > 0 and not per_key then n = rate_allowance(step, n, rate_n, window, now) end
    -- Taken, or (`due`: its rate key spent) back to the retry set with its attempt not
    -- counted.
    local function take(entry, attempt, due)
      if due then
        ack(q, entry[1])
        redis.call('XDEL', q, entry[1])
        local member = string.sub(entry[1], 3) .. '|' .. (attempt - 1) .. '|' .. entry[2][2]
        redis.call('ZADD', dl, string.format('%.17g', due), member)
        return 0
      end
      local seq = string.sub(entry[1], 3)
      nums[#nums + 1] = seq
      nums[#nums + 1] = attempt
      pays[#pays + 1] = entry[2][2]
      if rate_n > 0 then
        -- rate_spent (redis_rates.py) reads the step, seq, payload, attempt layout
        flat[#flat + 1] = step
        flat[#flat + 1] = seq
        flat[#flat + 1] = entry[2][2]
        flat[#flat + 1] = attempt
      end
      return 1
    end
    local function dues(entries)
      if per_key then return rate_keys_check(step, entries, rate_n, window, now, st) end
      return {}
    end
    -- Retries whose time has come go back to the stream first, keeping their attempt count.
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', dl, '-inf', now, 'LIMIT', 0, 1000)) do
      due_entry(step, m)
      redis.call('ZREM', dl, m)
    end
    local got = 0
    local expired = {}
    if ARGV[i + 3] == '1' and n > 0 then
      expired = redis.pcall('XPENDING', q, G, 'IDLE', lease_ms, '-', '+', n)
      if expired.err then expired = {} end
    end
    -- Deliveries whose lease ran out (their consumer died or hung) are taken over first.
    -- Its attempt is noted (P:rc), so that the outcome of the run it is taken from, should
    -- that run end after all, is told from this one's (stale, in settle).
    for _, p in ipairs(expired) do
      local c = redis.call('XCLAIM', q, G, consumer, lease_ms, p[1])
      if c[1] then
        local attempt, due = tonumber(c[1][2][4]) + p[4] + 1, dues(c)[1]
        got = got + take(c[1], attempt, due)
        if due then
          redis.call('HDEL', P .. ':rc:' .. step, c[1][1])
        else
          redis.call('HSET', P .. ':rc:' .. step, c[1][1], attempt)
        end
      end
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
      local entries = r[1][2]
      local due = dues(entries)
      for k, e in ipairs(entries) do got = got + take(e, tonumber(e[2][4]) + 1, due[k]) end
    end
    if per_key then rate_keys_done(step, window, now, st) end
    if rate_n > 0 and not per_key then rate_spent(step, flat, 0, now) end
    if #pays > 0 then
      out[#out + 1] = step
      out[#out + 1] = table.concat(nums, ' ')
      out[#out + 1] = '[' .. table.concat(pays, ',') .. ']'
    end
    i = i + 7
  end
  return out
end
"""

WRITE = PRELUDE + _BODY + "\nwrite_batch(2)\nreturn 1\n"
CLAIM = PRELUDE + _BODY + "\nreturn claim_steps(2)\n"
# The write has committed once its section ran (Redis keeps a script's writes made before an
# error), so a failing claim must not fail the call, or the writer would commit it again:
# its error comes back as the answer {'', reason} and what it leased returns with the lease.
WRITE_CLAIM = (
    PRELUDE
    + _BODY
    + r"""
local i = write_batch(2)
local ok, out = pcall(claim_steps, i)
if ok then return out end
if type(out) == 'table' and out.err then out = out.err end
return {'', tostring(out)}
"""
)
