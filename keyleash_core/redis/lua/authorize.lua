-- One atomic Authorize decision: check everything, and on ALLOW consume everything.
-- A denied call consumes nothing. Every key named here carries the tenant's hash tag.
--
-- KEYS[1]            tenant hash (throttle flag; "loaded" once rebuilt from Postgres)
-- KEYS[2]            memo of this request_id's first decision
-- KEYS[3]            reservation hash for the hold placed on ALLOW
-- KEYS[4]            the tenant's audit stream (every decision is appended, atomically with it)
-- KEYS[5 .. 4+n]     key hashes of the chain ("loaded" once rebuilt from Postgres), the calling
--                    key first, then its ancestors
-- KEYS[5+n .. 4+2n]  rate sorted sets of the same chain
-- KEYS[5+2n ..]      spend counters, as indexed by plan.spends[i][SPEND_KEYS], and each spend
--                    cap's approval grant of the current window, plan.spends[i][SPEND_GRANT]
-- KEYS[#KEYS]        the tenant's connections version (keyspace.connections_version), returned
--                    on ALLOW as "cv" ("" when absent); a replay reads it anew, never the memo's
-- ARGV[1]            now, ms since the epoch, from an injected (test) clock; empty: the script
--                    reads Redis's TIME, so every vault replica decides on one clock
-- ARGV[2]            the plan (JSON), built by the vault (domain/decision.py); its links and
--                    spend checks are arrays whose fields are named by LINK_* and SPEND_*
--
-- Returns JSON: {r = "A" | "D" | "M" (missing, reload chain[i]) | "S" (stale policy)
--               | "F" (audit backlog full) | "R" (request_id reused with another payload), ...}.
-- Numbers leave as strings: Lua numbers are doubles and cjson prints 14 digits.

local function redis_time_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local now, redis_ms  -- redis_ms: Redis's own clock, once read
if ARGV[1] == '' then
  now = redis_time_ms()
  redis_ms = now
else
  now = tonumber(ARGV[1])
end
local plan = cjson.decode(ARGV[2])
local n = #plan.chain

-- Fields of plan.chain[i] and of plan.spends[i] (arrays: a quarter cheaper to decode).
local LINK_PV, LINK_NAME, LINK_RATES, LINK_MAX_WINDOW, LINK_CALLS = 1, 2, 3, 4, 5
local SPEND_KIND, SPEND_KEYS, SPEND_GRANT, SPEND_LIMIT, SPEND_CUR, SPEND_LINK = 1, 2, 3, 4, 5, 6
local SPEND_QUOTA, SPEND_RUN, SPEND_RESET, SPEND_TTL = 7, 8, 9, 10
local SPEND_BUCKET, SPEND_FIRST = 11, 12

local function n2s(x) return string.format('%d', x) end

--!include keep_alive

-- The audit record of this decision: the request's fields from the plan, the verdict from here.
local function record(result)
  if not plan.audit then return end
  -- Two fields (the vault's AUDIT_*_FIELDS, domain/decision.py): "v" the verdict, made here,
  -- and "q" the request's part, as the plan brings it.
  local q = (result.quotas or {})[1] or {'', '', '', '0', '0', '0', '0'}
  local verdict = {plan.did, n2s(now), result.r, result.reason or '', q[1], q[2], q[4], q[5],
                   q[6], result.res_id or ''}
  redis.call('XADD', KEYS[4], '*', 'v', cjson.encode(verdict), 'q', plan.audit)
end

local function finish(result)
  record(result)
  result.t = n2s(now)  -- the time decided on, so the vault can follow this clock (spend windows)
  -- Only an ALLOW is remembered (it consumed a slot and placed a hold); a DENY consumed
  -- nothing, so a retried request_id is decided again and may pass once retry_after elapsed.
  if plan.memo == 1 and result.r == 'A' then
    -- Remembered with the request's digest, so a replay with another payload is refused. The
    -- answer carries the digest too (as a replay's does; the vault ignores it): one encoding.
    result.rd = plan.rd
    local encoded = cjson.encode(result)
    redis.call('SET', KEYS[2], encoded, 'PX', plan.memo_ttl)
    return encoded
  end
  return cjson.encode(result)
end

local function quota(subject, name, unit, limit, used, reset)
  local remaining = limit - used
  if remaining < 0 then remaining = 0 end
  return {subject, name, unit, n2s(limit), n2s(used), n2s(remaining), n2s(reset)}
end

-- On ALLOW the reply carries one quota per window (quota name and unit): of the key and its
-- ancestors, the one with the least remaining, i.e. the one that stops this key first (ties:
-- the nearest key). So a deep chain answers with as many quotas as a root key has windows.
local kept = {}
local function keep(quotas, subject, name, unit, limit, used, reset)
  local window = name .. ' ' .. unit
  local remaining = limit - used
  local before = kept[window]
  if before == nil then
    quotas[#quotas + 1] = quota(subject, name, unit, limit, used, reset)
    kept[window] = {#quotas, remaining}
  elseif remaining < before[2] then
    quotas[before[1]] = quota(subject, name, unit, limit, used, reset)
    before[2] = remaining
  end
end

local function deny(reason, quotas, retry_ms)
  return finish({r = 'D', reason = reason, quotas = quotas or {}, retry_ms = n2s(retry_ms or 0),
                 did = plan.did})
end

-- Tenant throttle. A tenant hash without "loaded" was lost (flush): rebuild before deciding.
local tenant = redis.call('HMGET', KEYS[1], 'loaded', 'throttled_until', 'threshold', 'spent',
                          'currency')
if not tenant[1] then return cjson.encode({r = 'M', idx = '0'}) end
-- A decision that cannot be recorded is not made (fail closed): the drainer is too far behind.
if plan.audit and redis.call('XLEN', KEYS[4]) >= plan.audit_max then
  return cjson.encode({r = 'F'})
end
-- Nor while the oldest undrained entry is older than the lag bound: so a Redis loss can only
-- forget decisions of the last audit_lag ms, which the rate-window rebuild accounts for
-- (the vault's store/rebuild_rates.py). Entry ids carry Redis's own clock, so this reads TIME.
if plan.audit then
  local oldest = redis.call('XRANGE', KEYS[4], '-', '+', 'COUNT', 1)[1]
  if oldest then
    redis_ms = redis_ms or redis_time_ms()
    if redis_ms - tonumber(string.match(oldest[1], '^(%d+)')) > plan.audit_lag then
      return cjson.encode({r = 'F'})
    end
  end
end
local throttled_until = tonumber(tenant[2] or '0')
if throttled_until > now then
  return deny('TENANT_THROTTLED',
              {quota(plan.tenant_subject, 'tenant/daily', tenant[5] or '',
                     tonumber(tenant[3] or '0'), tonumber(tenant[4] or '0'), throttled_until)},
              throttled_until - now)
end

-- State of the key and every ancestor: revoked beats frozen beats expired.
-- "grants": the key has had an approval grant (grant.lua and load_key.lua set it with the
-- grant), so its spend checks read their grant hashes; a key that never had one reads none.
local frozen, expired = false, false
local has_grants = {}
for i = 1, n do
  local fields = redis.call('HMGET', KEYS[4 + i], 'state', 'expire_ms', 'policy_version', 'loaded',
                            'grants')
  if not fields[4] then return cjson.encode({r = 'M', idx = n2s(i)}) end
  has_grants[i] = fields[5] ~= false
  if tonumber(fields[3]) ~= plan.chain[i][LINK_PV] then return cjson.encode({r = 'S', idx = n2s(i)}) end
  if fields[1] == 'revoked' then return deny('KEY_REVOKED') end
  if fields[1] == 'frozen' then frozen = true end
  if tonumber(fields[2]) <= now then expired = true end
end
if frozen then return deny('KEY_FROZEN') end
if expired then return deny('KEY_EXPIRED') end

-- A retried request_id that was allowed gets that decision again, consuming nothing again.
-- Checked after the state, so a replay is never allowed once the key (or an ancestor) is
-- blocked.
-- The same request_id with another payload is refused ("R"), as MintKey and Charge refuse it.
if plan.memo == 1 then
  local first = redis.call('GET', KEYS[2])
  if first then
    local rd = cjson.decode(first).rd
    if rd and rd ~= plan.rd then return cjson.encode({r = 'R'}) end
    local replayed = cjson.decode(first)
    replayed.t = n2s(now)
    replayed.cv = redis.call('GET', KEYS[#KEYS]) or ''
    return cjson.encode(replayed)
  end
end

-- Exact sliding windows: admitted iff fewer than `limit` calls were admitted in (now-window, now].
local rate_quotas = {}
for i = 1, n do
  local link = plan.chain[i]
  local name = link[LINK_NAME]
  if #link[LINK_RATES] > 0 then
    local zset = KEYS[4 + n + i]
    redis.call('ZREMRANGEBYSCORE', zset, '-inf', '(' .. n2s(now - link[LINK_MAX_WINDOW]))
    for _, rate in ipairs(link[LINK_RATES]) do
      local limit, window = rate[1], rate[2]
      local since = '(' .. n2s(now - window)
      local count = redis.call('ZCOUNT', zset, since, '+inf')
      if count >= limit then
        local oldest = redis.call('ZRANGEBYSCORE', zset, since, '+inf', 'WITHSCORES',
                                  'LIMIT', count - limit, 1)
        local frees_at = tonumber(oldest[2]) + window
        return deny('RATE_LIMITED', {quota(name, rate[3], 'requests', limit, count, frees_at)},
                    frees_at - now)
      end
      keep(rate_quotas, name, rate[3], 'requests', limit, count + 1, now + window)
    end
  end
  local calls = link[LINK_CALLS]
  if calls > 0 then
    local made = tonumber(redis.call('HGET', KEYS[4 + i], 'calls') or '0')
    if made >= calls then
      return deny('CALLS_EXHAUSTED', {quota(name, 'calls', 'requests', calls, made, 0)})
    end
  end
end

-- Spend: the used amount (settled spend plus open holds) plus this call's hold must fit.
local function rolling_used(hash, index, first_bucket)
  local old = redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. n2s(first_bucket))
  if #old > 0 then
    local values = redis.call('HMGET', hash, unpack(old))
    local dropped = 0
    for _, v in ipairs(values) do if v then dropped = dropped + tonumber(v) end end
    redis.call('HDEL', hash, unpack(old))
    redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. n2s(first_bucket))
    if dropped ~= 0 then redis.call('HINCRBY', hash, 'total', n2s(-dropped)) end
  end
  return tonumber(redis.call('HGET', hash, 'total') or '0')
end

local spend_quotas, holds = {}, {}
for i, s in ipairs(plan.spends) do
  local keys, cur, reset = s[SPEND_KEYS], s[SPEND_CUR], s[SPEND_RESET]
  -- An approved grant raises this cap for this window only (KEYS[grant] names the window): the
  -- next window reads another key, so the grant reverts by itself at the reset.
  local granted = nil
  if has_grants[s[SPEND_LINK]] then granted = redis.call('HGET', KEYS[s[SPEND_GRANT]], 'total') end
  local limit = s[SPEND_LIMIT] + tonumber(granted or '0')
  local used
  if s[SPEND_KIND] == 'rolling' then
    used = rolling_used(KEYS[keys[1]], KEYS[keys[2]], s[SPEND_FIRST])
  else
    used = tonumber(redis.call('GET', KEYS[keys[1]]) or '0')
  end
  -- This call's hold in the cap's currency (converted by the vault at the rate in force, rounded
  -- up: keyleash_core/fx), so a cap counts a call estimated in any currency it has a rate for.
  local hold = tonumber(plan.h[cur]) or 0
  local subject = plan.chain[s[SPEND_LINK]][LINK_NAME]
  if used + hold > limit or (hold == 0 and used >= limit) then
    local reason = 'SPEND_CAP_EXCEEDED'
    if s[SPEND_RUN] == 1 then reason = 'RUN_CAP_EXCEEDED' end
    local retry = 0
    if reset > 0 then retry = reset - now end
    return deny(reason, {quota(subject, s[SPEND_QUOTA], cur, limit, used, reset)}, retry)
  end
  keep(spend_quotas, subject, s[SPEND_QUOTA], cur, limit, used + hold, reset)
  holds[i] = hold
end

-- ALLOW: consume the rate slots and calls, place the hold.
for i = 1, n do
  local link = plan.chain[i]
  if #link[LINK_RATES] > 0 then
    redis.call('ZADD', KEYS[4 + n + i], now, plan.did)
    keep_alive(link[LINK_MAX_WINDOW], KEYS[4 + n + i])
  end
  if link[LINK_CALLS] > 0 then redis.call('HINCRBY', KEYS[4 + i], 'calls', 1) end
end
local targets, target_holds = {}, {}
for i, s in ipairs(plan.spends) do
  local hold = holds[i]
  if hold > 0 then
    -- What this target holds, in its cap's currency: settle.lua replaces exactly that amount.
    local hash, ttl = KEYS[s[SPEND_KEYS][1]], s[SPEND_TTL]
    target_holds[#target_holds + 1] = {s[SPEND_CUR], n2s(hold)}
    if s[SPEND_KIND] == 'rolling' then
      local index, bucket = KEYS[s[SPEND_KEYS][2]], n2s(s[SPEND_BUCKET])
      redis.call('HINCRBY', hash, 'total', n2s(hold))
      if redis.call('HINCRBY', hash, bucket, n2s(hold)) == hold then
        redis.call('ZADD', index, bucket, bucket)  -- a new bucket (or one back at 0: no-op)
        -- Renewed once per bucket (a minute): left with at least ttl then, the pair still has
        -- ttl minus a minute (over the window: ttl is the window and two buckets) at this
        -- bucket's last use.
        keep_alive(ttl, hash, index)
      end
      targets[#targets + 1] = {'rolling', hash, index, bucket}
    else
      -- A period's counter lives to a day past the period from its creation (whoever creates
      -- it sets that TTL), so only a new one needs it; a run's TTL slides with its use.
      local total = redis.call('INCRBY', hash, n2s(hold))
      if ttl > 0 and (total == hold or s[SPEND_RESET] == 0 or s[SPEND_RUN] == 1) then
        keep_alive(ttl, hash)
      end
      targets[#targets + 1] = {'counter', hash}
    end
  end
end
local reservation_id = ''
if plan.cost > 0 then
  reservation_id = plan.res_id
  redis.call('HSET', KEYS[3], 'held', n2s(plan.cost), 'currency', plan.cur,
             'key_id', plan.key_id, 'targets', cjson.encode(targets), 'settled', '0',
             'target_holds', cjson.encode(target_holds))
  redis.call('PEXPIRE', KEYS[3], plan.res_ttl)
end
local quotas = {}
for _, q in ipairs(rate_quotas) do quotas[#quotas + 1] = q end
for _, q in ipairs(spend_quotas) do quotas[#quotas + 1] = q end
return finish({r = 'A', did = plan.did, res_id = reservation_id, quotas = quotas,
               cv = redis.call('GET', KEYS[#KEYS]) or ''})

