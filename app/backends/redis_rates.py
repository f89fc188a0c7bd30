"""Rate limits in the Redis backend (see app/flow.py for what they mean), as Lua functions
shared by the scripts of redis_lua.py.

Keys under the app's prefix P, for a step with a `rate_limit`:

    P:rl:<step>, P:rln:<step>     the window's claims, one member per claim call
                                  "<seq>:<attempt>*<count>", and how many they took
    P:rk:<len>:<step>:<key>       per-key rate limit: one key's claim times (sorted set)
    P:rki:<step>                  per-key rate limit: each key's latest claim within the
                                  window (sorted set, member the key), so a claim finds the
                                  keys with nothing in the window with one command for all
    P:rkv                         when claims were first counted with P:rki (0: always)

A step whose rate limit has a key stamps each delivery's payload with its rate key, first
('{"rk":"<key>",...'), where a claim reads it without decoding the payload. A claimed
delivery whose key has spent its window goes back to the retry set, its attempt not counted,
due when a slot of its key frees (the j-th such one of a key in a claim, the j-th slot), and
the claim reads on for other keys.

A key's one claim in the window is in P:rki alone; its set is made at its second claim (and
expires a window after its last), so a key that never binds costs no key of its own.
Earlier versions stamped the rate key last (such payloads are decoded) and kept every claim
in the key's set: a key missing from P:rki is asked for its set's count until a window has
passed since P:rkv, after which no set of theirs holds a claim in the window.
"""

from __future__ import annotations

__all__ = ["RATES"]

RATES = r"""
-- The payload stamped with its rate key, for a step whose rate limit has one. A key without
-- quotes, backslashes or control characters is its JSON string as it is.
local function rate_keyed(payload, rk)
  if rk == '' then return payload end
  local text
  if string.find(rk, '[%c"\\]') then text = cjson.encode(rk) else text = '"' .. rk .. '"' end
  return '{"rk":' .. text .. ',' .. string.sub(payload, 2)
end

-- The rate key of a payload: read where it leads, else (an escaped key, an earlier
-- version's payload) decoded.
local function rate_key_of(payload)
  if string.sub(payload, 1, 7) == '{"rk":"' then
    local stop = string.find(payload, '"', 8, true)
    local rk = string.sub(payload, 8, stop - 1)
    if not string.find(rk, '\\', 1, true) then return rk end
  end
  return cjson.decode(payload).rk or ''
end

local function rate_set(step, rk)
  return P .. ':rk:' .. #step .. ':' .. step .. ':' .. rk
end

-- True once a window has passed since claims were first counted with P:rki under this
-- prefix (P:rkv; 0 for a prefix that began with this layout): then a key missing from P:rki
-- has no claim in the window.
local rkv = nil
local function rate_index_settled(now, window)
  if rkv == nil then
    rkv = redis.call('GET', P .. ':rkv')
    if not rkv then
      rkv = now
      redis.call('SET', P .. ':rkv', now)
    end
  end
  return tonumber(now) - tonumber(rkv) > window + 1
end

-- Per-key rate limit of claimed `entries` of a step: per entry false when its key has room
-- (its claim is counted), else the time it may go. A key with one claim in the window has
-- it in P:rki only; its set is made at its second, so a key that never binds costs no set.
-- `st` lives through one claim of the step, per key: counts (claims in the window, where
-- known), last (its latest claim, from P:rki or this claim), inset (its set holds its
-- window's claims), waiting (entries of this claim held so far), trimmed; and taken (keys
-- claimed).
local function rate_keys_check(step, entries, rate_n, window, now, st)
  local cut = tonumber(now) - window
  local keys, ask, asked = {}, {}, {}
  for k, e in ipairs(entries) do
    local rk = rate_key_of(e[2][2])
    keys[k] = rk
    if st.counts[rk] == nil and not asked[rk] then
      asked[rk] = true
      ask[#ask + 1] = rk
    end
  end
  if #ask > 0 then
    local settled = rate_index_settled(now, window)
    for c = 1, #ask, 4000 do
      local last = redis.call('ZMSCORE', P .. ':rki:' .. step,
        unpack(ask, c, math.min(c + 3999, #ask)))
      for k = 1, #last do
        local rk, t = ask[c + k - 1], tonumber(last[k])
        if t ~= nil and t > cut then
          st.last[rk] = t  -- one claim in the window at least: its set says if more
        elseif t ~= nil or settled then
          st.counts[rk] = 0
        end  -- else an earlier version's set may hold claims: asked below
      end
    end
  end
  local out = {}
  for k, e in ipairs(entries) do
    local rk = keys[k]
    local z = rate_set(step, rk)
    local count = st.counts[rk]
    if count == nil then
      local c = redis.call('ZCOUNT', z, '(' .. cut, '+inf')
      st.inset[rk] = c > 0
      count = st.last[rk] and math.max(c, 1) or c
    end
    if count < rate_n then
      if count > 0 then
        if st.inset[rk] then
          redis.call('ZADD', z, now, e[1])
        else  -- its second claim: the first joins the set
          local first = string.format('%.17g', st.last[rk])
          redis.call('ZADD', z, first, '~' .. first, now, e[1])
          st.inset[rk] = true
        end
        redis.call('PEXPIRE', z, math.ceil(window * 1000) + 1000)
      end
      st.counts[rk] = count + 1
      st.last[rk] = tonumber(now)
      if not st.taken[rk] then
        st.taken[rk] = true
        st.taken[#st.taken + 1] = rk
      end
      out[k] = false
    else
      st.counts[rk] = count
      local j = (st.waiting[rk] or -1) + 1
      st.waiting[rk] = j
      if not st.inset[rk] then  -- a limit of 1, its one claim in P:rki
        out[k] = st.last[rk] + window * (1 + j)
      else
        -- Its set then holds only the window's claims, so the j-th slot is the j-th member.
        if not st.trimmed[rk] then
          st.trimmed[rk] = true
          redis.call('ZREMRANGEBYSCORE', z, '-inf', cut)
        end
        local slot = redis.call('ZRANGE', z, j % rate_n, j % rate_n, 'WITHSCORES')
        out[k] = tonumber(slot[2]) + window * (1 + math.floor(j / rate_n))
      end
    end
  end
  return out
end

-- After a claim: the keys it counted get their latest claim in P:rki, and keys quiet for a
-- window leave it (their sets, if any, expire a window after their last claim).
local function rate_keys_done(step, window, now, st)
  local idx = P .. ':rki:' .. step
  local taken = st.taken
  if #taken > 0 then
    local args = {}
    for _, rk in ipairs(taken) do
      args[#args + 1] = now
      args[#args + 1] = rk
    end
    for c = 1, #args, 4000 do
      redis.call('ZADD', idx, unpack(args, c, math.min(c + 3999, #args)))
    end
  end
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', tonumber(now) - window)
end

-- Rate limits without a key: P:rl:<step> holds the claims of the window (sliding), one
-- member per claim call, "<seq>:<attempt>*<count>" (an older version's "<seq>:<attempt>"
-- counts one), scored by its time, and P:rln:<step> their total, so every process sees the
-- others' claims and a claim costs a few commands however many it takes; a claim takes no
-- more than what the window has left.
local function rate_count(member)
  return tonumber(string.match(member, '%*(%d+)$') or '1')
end

local function rate_allowance(step, n, rate_n, window, now)
  local rl, total_key = P .. ':rl:' .. step, P .. ':rln:' .. step
  local cut = tonumber(now) - window
  local total = redis.call('GET', total_key)
  if not total then  -- none yet, or written by a version that kept no total
    total = 0
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', rl, '(' .. cut, '+inf')) do
      total = total + rate_count(m)
    end
    redis.call('ZREMRANGEBYSCORE', rl, '-inf', cut)
  else
    total = tonumber(total)
    local old = redis.call('ZRANGEBYSCORE', rl, '-inf', cut)
    if #old > 0 then
      for _, m in ipairs(old) do total = total - rate_count(m) end
      redis.call('ZREMRANGEBYSCORE', rl, '-inf', cut)
    end
  end
  redis.call('SET', total_key, math.max(total, 0), 'EX', 3600)
  return math.max(0, math.min(n, rate_n - total))
end

local function rate_spent(step, out, before, now)
  local count = (#out - before) / 4
  if count <= 0 then return end
  local rl = P .. ':rl:' .. step
  redis.call('ZADD', rl, now, out[before + 2] .. ':' .. out[before + 4] .. '*' .. count)
  redis.call('INCRBY', P .. ':rln:' .. step, count)
  redis.call('EXPIRE', rl, 3600)
end
"""
