-- Read-only: what a key and its ancestors have used of each limit now (GetKeyUsage).
-- Writes nothing: old rate entries and rolling buckets are skipped, not trimmed, so reading
-- usage never changes what the next decision sees. Every key named here carries the tenant's
-- hash tag.
--
-- KEYS[1]            tenant hash ("loaded" once rebuilt from Postgres)
-- KEYS[2 .. 1+n]     key hashes of the chain, the key first, then its ancestors
-- KEYS[2+n .. 1+2n]  rate sorted sets of the same chain
-- KEYS[2+2n ..]      spend counters, as indexed by plan.spends[i].k, and their approval grants
--                    (plan.spends[i].g)
-- ARGV[1]            now, ms since the epoch
-- ARGV[2]            the plan (JSON), built by the vault (domain/usage.py)
--
-- Returns JSON: {r = "OK", quotas = [[link index, subject, quota, unit, limit, used, remaining,
-- reset], ...]} or {r = "M", idx} when the tenant (idx 0) or chain[idx] is not loaded.

local now = tonumber(ARGV[1])
local plan = cjson.decode(ARGV[2])
local n = #plan.chain

local function n2s(x) return string.format('%d', x) end

if not redis.call('HGET', KEYS[1], 'loaded') then return cjson.encode({r = 'M', idx = '0'}) end
for i = 1, n do
  if not redis.call('HGET', KEYS[1 + i], 'loaded') then
    return cjson.encode({r = 'M', idx = n2s(i)})
  end
end

local quotas = {}
local function quota(link, subject, name, unit, limit, used, reset)
  local remaining = limit - used
  if remaining < 0 then remaining = 0 end
  quotas[#quotas + 1] = {n2s(link), subject, name, unit, n2s(limit), n2s(used), n2s(remaining),
                         n2s(reset)}
end

for i = 1, n do
  local link = plan.chain[i]
  for _, rate in ipairs(link.rates) do
    local limit, window = rate[1], rate[2]
    local since = '(' .. n2s(now - window)
    local zset = KEYS[1 + n + i]
    local count = redis.call('ZCOUNT', zset, since, '+inf')
    local reset = 0
    if count > 0 then  -- the oldest call in the window frees the next slot
      local oldest = redis.call('ZRANGEBYSCORE', zset, since, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
      reset = tonumber(oldest[2]) + window
    end
    quota(i, link.name, rate[3], 'requests', limit, count, reset)
  end
  if link.calls > 0 then
    local made = tonumber(redis.call('HGET', KEYS[1 + i], 'calls') or '0')
    quota(i, link.name, 'calls', 'requests', link.calls, made, 0)
  end
end

for _, s in ipairs(plan.spends) do
  local used = 0
  if s.kind == 'rolling' then
    local buckets = redis.call('ZRANGEBYSCORE', KEYS[s.k[2]], n2s(s.fb), '+inf')
    if #buckets > 0 then
      for _, v in ipairs(redis.call('HMGET', KEYS[s.k[1]], unpack(buckets))) do
        if v then used = used + tonumber(v) end
      end
    end
  else
    used = tonumber(redis.call('GET', KEYS[s.k[1]]) or '0')
  end
  -- The cap as the decision sees it: raised by this window's approval grants.
  local limit = s.lim + tonumber(redis.call('HGET', KEYS[s.g], 'total') or '0')
  quota(s.link, s.subj, s.q, s.cur, limit, used, s.reset)
end

return cjson.encode({r = 'OK', quotas = quotas})
