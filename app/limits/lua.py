"""The Lua scripts behind :class:`guardserve.app.limits.redis.RedisLimiter`: one atomic script per admission.

Algorithm: a **sliding-window log**, not GCRA. GCRA (a token bucket) is O(1) and exact for *its* definition,
but with a burst of N and a refill of N per minute it admits up to 2N requests in some 60-second windows (a full
bucket spent at once, then a minute of refill), and a "100 requests per minute" that lets 199 through in a minute
is what operators call over-admission. A sliding-window log counts what was admitted in the last 60 s exactly:
no 60-second window ever holds more than the limit, across any number of replicas, because the check and the
reservation run in one script under Redis' single-threaded execution. Cost: a sorted-set entry per admitted
request for one minute (the member is ``lease:tokens``, the score its admission time), O(log n) per operation,
and expired entries are removed by the next admission (amortised O(1)). The token total is kept in a counter next
to the set, so checking tokens/min never scans the window. Requests/min and tokens/min share the window;
concurrency slots are a second sorted set scored by lease expiry (a crashed gateway's slots expire on their own);
the daily quota is a counter per UTC day.

Time comes from Redis (``TIME``), so replicas with skewed clocks agree. Every key of one admission carries the
tenant as ``{hash tag}``: one Cluster slot.

Keys, per scope (the key's, then its tenant's): window zset, window token counter, concurrency zset, day counter.
"""

from __future__ import annotations

KEYS_PER_SCOPE = 4

ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease, cost = ARGV[1], tonumber(ARGV[2])
local window, lease_ms = tonumber(ARGV[3]), tonumber(ARGV[4])
local day_ttl, day_reset_ms = tonumber(ARGV[5]), tonumber(ARGV[6])
local n = #KEYS / 4
local allowed, refused_scope, refused_kind, retry_ms, too_large = 1, 0, 0, 0, 0
local counts, used = {}, {}

local function tokens_of(member)
  return tonumber(string.match(member, ':(%d+)$')) or 0
end

local function refuse(s, kind, retry, large)
  allowed, refused_scope, refused_kind, retry_ms, too_large = 0, s, kind, retry, large
end

for s = 1, n do
  local k, a = (s - 1) * 4, 6 + (s - 1) * 4
  local win, sum, conc, day = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
  local rpm, tpm = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local climit, dlimit = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local count, tokens = 0, 0
  if rpm > 0 or tpm > 0 then
    local cutoff = now - window
    local old = redis.call('ZRANGEBYSCORE', win, '-inf', cutoff)
    if #old > 0 then
      local freed = 0
      for _, m in ipairs(old) do freed = freed + tokens_of(m) end
      redis.call('ZREMRANGEBYSCORE', win, '-inf', cutoff)
      redis.call('DECRBY', sum, freed)
      redis.call('PEXPIRE', sum, window + 1000)
    end
    count = redis.call('ZCARD', win)
    tokens = tonumber(redis.call('GET', sum) or '0')
    if (count == 0 and tokens ~= 0) or tokens < 0 then
      tokens = 0
      redis.call('SET', sum, 0, 'KEEPTTL')
    end
  end
  counts[s], used[s] = count, tokens
  if allowed == 1 then
    if rpm > 0 and count + 1 > rpm then
      local oldest = redis.call('ZRANGE', win, 0, 0, 'WITHSCORES')
      refuse(s, 1, tonumber(oldest[2]) + window - now, 0)
    elseif tpm > 0 and cost > tpm then
      refuse(s, 2, 0, 1)
    elseif tpm > 0 and tokens + cost > tpm then
      local need, freed = tokens + cost - tpm, 0
      local entries = redis.call('ZRANGE', win, 0, -1, 'WITHSCORES')
      local retry = window
      for i = 1, #entries, 2 do
        freed = freed + tokens_of(entries[i])
        if freed >= need then
          retry = tonumber(entries[i + 1]) + window - now
          break
        end
      end
      refuse(s, 2, retry, 0)
    end
    if allowed == 1 and climit > 0 then
      redis.call('ZREMRANGEBYSCORE', conc, '-inf', now)
      if redis.call('ZCARD', conc) >= climit then refuse(s, 3, 1000, 0) end
    end
    if allowed == 1 and dlimit > 0 then
      if cost > dlimit then
        refuse(s, 4, 0, 1)
      elseif tonumber(redis.call('GET', day) or '0') + cost > dlimit then
        refuse(s, 4, day_reset_ms, 0)
      end
    end
  end
end

if allowed == 1 then
  local member = lease .. ':' .. cost
  for s = 1, n do
    local k, a = (s - 1) * 4, 6 + (s - 1) * 4
    local win, sum, conc, day = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
    if tonumber(ARGV[a + 1]) > 0 or tonumber(ARGV[a + 2]) > 0 then
      redis.call('ZADD', win, now, member)
      redis.call('INCRBY', sum, cost)
      redis.call('PEXPIRE', win, window + 1000)
      redis.call('PEXPIRE', sum, window + 1000)
      counts[s], used[s] = counts[s] + 1, used[s] + cost
    end
    if tonumber(ARGV[a + 3]) > 0 then
      redis.call('ZADD', conc, now + lease_ms, lease)
      redis.call('PEXPIRE', conc, lease_ms + 1000)
    end
    if tonumber(ARGV[a + 4]) > 0 then
      redis.call('INCRBY', day, cost)
      redis.call('EXPIRE', day, day_ttl)
    end
  end
end

local out = {allowed, refused_scope, refused_kind, math.max(0, retry_ms), too_large}
for s = 1, n do
  local reset = 0
  if counts[s] > 0 then
    local oldest = redis.call('ZRANGE', KEYS[(s - 1) * 4 + 1], 0, 0, 'WITHSCORES')
    if oldest[2] then reset = math.max(0, tonumber(oldest[2]) + window - now) end
  end
  table.insert(out, counts[s])
  table.insert(out, used[s])
  table.insert(out, reset)
end
return out
"""

# Settle an admitted request: ARGV lease, reserved, used, window ms, then per scope three flags (window entry,
# concurrency slot, day counter) saying what the admission recorded. The window entry keeps its admission time
# and now carries the tokens used; if it already left the window, those tokens no longer count anyway.
SETTLE = """
local lease, reserved, used = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local delta = used - reserved
for s = 1, #KEYS / 4 do
  local k, a = (s - 1) * 4, 4 + (s - 1) * 3
  local win, sum, conc, day = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
  if ARGV[a + 1] == '1' and delta ~= 0 then
    local old = lease .. ':' .. reserved
    local score = redis.call('ZSCORE', win, old)
    if score then
      redis.call('ZREM', win, old)
      redis.call('ZADD', win, score, lease .. ':' .. used)
      if redis.call('INCRBY', sum, delta) < 0 then redis.call('SET', sum, 0, 'KEEPTTL') end
    end
  end
  if ARGV[a + 2] == '1' then redis.call('ZREM', conc, lease) end
  if ARGV[a + 3] == '1' and delta ~= 0 and redis.call('EXISTS', day) == 1 then
    if redis.call('INCRBY', day, delta) < 0 then redis.call('SET', day, 0, 'KEEPTTL') end
  end
end
return 1
"""

# Extend a running request's concurrency slots: KEYS the concurrency sets, ARGV lease, lease ms.
RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
  if redis.call('ZADD', key, 'XX', 'CH', now + ms, ARGV[1]) == 1 then redis.call('PEXPIRE', key, ms + 1000) end
end
return 1
"""

# Read-only: per scope (the same four keys as ADMIT), what the last minute, the live leases and the day hold.
# ARGV: window ms. Returns requests, tokens, concurrent, tokens_today per scope.
USAGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cutoff = now - tonumber(ARGV[1])
local out = {}
for s = 1, #KEYS / 4 do
  local k = (s - 1) * 4
  local members = redis.call('ZRANGEBYSCORE', KEYS[k + 1], '(' .. cutoff, '+inf')
  local tokens = 0
  for _, m in ipairs(members) do tokens = tokens + (tonumber(string.match(m, ':(%d+)$')) or 0) end
  out[#out + 1] = #members
  out[#out + 1] = tokens
  out[#out + 1] = redis.call('ZCOUNT', KEYS[k + 3], '(' .. now, '+inf')
  out[#out + 1] = tonumber(redis.call('GET', KEYS[k + 4]) or '0')
end
return out
"""
