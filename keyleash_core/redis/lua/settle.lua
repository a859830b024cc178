-- Settles one newly recorded billing event (metering), atomically and exactly once.
-- Every key named here carries the tenant's hash tag.
--
-- KEYS[1]            tenant hash (threshold, currency, day, spent, throttled_until, loaded)
-- KEYS[2]            reservation hash of the hold Authorize placed (may not exist)
-- KEYS[3]            this event's settled marker: once it exists, the event is never applied again
-- KEYS[4 .. 3+n]     key hashes of the chain, the spending key first ("loaded", policy_version)
-- KEYS[4+n ..]       spend counters, as indexed by plan.chain[i].adds[j].k; each adds the
--                    event's amount in its currency, plan.amts[plan.chain[i].adds[j].cur]
-- KEYS[.. #KEYS]     with plan.more: the markers of the group's other events, in its order
-- ARGV[1]            the plan (JSON), built by metering (domain/settle.py)
--
-- A group (plan.more: the ids of further events): new events without a hold, of the same key
-- chain, run, second, commit and currency, settled as one; plan.amt and plan.amts are their
-- sums. If any of them settled already, nothing is applied and the answer is {r = "D"}:
-- metering then settles each alone.
--
-- Exactly once: an event settles only while its marker (KEYS[3]) is absent, and sets it. So a
-- retried Charge (duplicate) whose first attempt crashed between the commit and the settle
-- settles now, and one that did settle changes nothing. The hold also remembers the event that
-- settled it (settled_by).
--
-- Keys that are not loaded are rebuilt from billing_events by whoever loads them. So that a
-- load that read Postgres before this event was committed cannot miss it, the script bumps a
-- "gen" field on every unloaded key hash (and the unloaded tenant hash) it would have counted
-- in; the loaders refuse to load when "gen" changed since they read Postgres, and read again.
--
-- With a hold (same key, not yet settled, the event counting in every currency the hold's
-- windows are in): add (actual - held) to every window the hold touched that still exists, each
-- in its cap's currency (actual from plan.amts, converted by metering at the rate in force at
-- charge time; held as Authorize converted it then), and mark it settled. Otherwise: release any open hold and add
-- the amount to the windows of every loaded key of the chain (unloaded keys are rebuilt from
-- billing_events, which already hold this event). Then count the amount in the tenant's daily
-- counter and throttle the tenant to the end of the UTC day when it crosses the threshold.
--
-- Returns JSON {r = "OK" | "S" (stale policy of chain[idx]) | "D" (a group: see above),
--               tenant = "ok"|"missing"|"stale", threshold, currency, spent, until}. Numbers
--               leave as strings.

local plan = cjson.decode(ARGV[1])
local amount = plan.amt
local n = #plan.chain

local function n2s(x) return string.format('%d', x) end

--!include keep_alive

-- Whether the Postgres snapshot "xmin:xmax:xip,..." a key was rebuilt from saw transaction xid
-- (then the rebuild already counted this event, and adding it again would count it twice).
local function seen_by(snap, xid)
  if not snap or snap == '' or not xid or xid == '' then return false end
  local xmin, xmax, xip = string.match(snap, '^(%d+):(%d+):?(.*)$')
  local x = tonumber(xid)
  if not xmin then return false end
  if x < tonumber(xmin) then return true end
  if x >= tonumber(xmax) then return false end
  for running in string.gmatch(xip, '%d+') do
    if tonumber(running) == x then return false end
  end
  return true
end

-- Which path: settle the hold, or add to the windows.
local hold, add, skip = nil, true, redis.call('EXISTS', KEYS[3]) == 1
if plan.res == 1 then
  local r = redis.call('HMGET', KEYS[2], 'held', 'currency', 'key_id', 'settled', 'targets',
                       'settled_by', 'target_holds')
  if r[6] == plan.eid then
    skip = true  -- a retry of this very event settled it already
  elseif r[1] and r[4] == '0' and r[3] == plan.key_id then
    -- Still open: whoever recorded this event never settled it (e.g. it crashed after the
    -- commit), so a retry (dup) settles it now; the flag below makes it happen once.
    skip = false
    hold = {held = tonumber(r[1]), currency = r[2], targets = cjson.decode(r[5] or '[]'),
            per_target = cjson.decode(r[7] or '[]')}
    -- The hold's own windows take the amount when the event counts in every currency they
    -- are in (plan.amts: its own and its conversions); otherwise the windows are added to.
    add = false
    for idx in ipairs(hold.targets) do
      local cur = hold.currency
      if hold.per_target[idx] then cur = hold.per_target[idx][1] end
      if plan.amts[cur] == nil then add = true end
    end
  end
end
if skip then amount = 0; add = false end

local more, first_more = plan.more, #KEYS + 1
if more then
  first_more = #KEYS - #more + 1
  if skip or redis.call('EXISTS', unpack(KEYS, first_more)) > 0 then
    return cjson.encode({r = 'D'})
  end
end

-- Before changing anything: the windows to add to must come from the current policies.
local loaded = {}
if add and amount ~= 0 then
  for i = 1, n do
    local fields = redis.call('HMGET', KEYS[3 + i], 'loaded', 'policy_version', 'snap')
    if fields[1] then
      if tonumber(fields[2]) ~= plan.chain[i].pv then
        return cjson.encode({r = 'S', idx = n2s(i)})
      end
      loaded[i] = not seen_by(fields[3], plan.xid)
    else
      redis.call('HINCRBY', KEYS[3 + i], 'gen', 1)
    end
  end
end

if hold then
  for idx, t in ipairs(hold.targets) do
    -- What this target held, in its cap's currency (a hold placed before FX holds `held`).
    local cur, held = hold.currency, hold.held
    if hold.per_target[idx] then
      cur, held = hold.per_target[idx][1], tonumber(hold.per_target[idx][2])
    end
    local delta = -held
    if not add then delta = tonumber(plan.amts[cur]) - held end
    if delta ~= 0 then
      if t[1] == 'rolling' then
        -- A bucket that aged out of the window took its hold with it.
        if redis.call('HEXISTS', t[2], t[4]) == 1 then
          redis.call('HINCRBY', t[2], t[4], n2s(delta))
          redis.call('HINCRBY', t[2], 'total', n2s(delta))
        end
      elseif redis.call('EXISTS', t[2]) == 1 then
        redis.call('INCRBY', t[2], n2s(delta))
      end
    end
  end
  redis.call('HSET', KEYS[2], 'settled', '1', 'settled_by', plan.eid)
end

if add and amount ~= 0 then
  for i = 1, n do
    if loaded[i] then
      for _, a in ipairs(plan.chain[i].adds) do
        local m = plan.amts[a.cur]  -- the amount in this window's currency
        if a.kind == 'rolling' then
          local hash, index, bucket = KEYS[a.k[1]], KEYS[a.k[2]], n2s(a.b)
          if redis.call('HINCRBY', hash, bucket, n2s(m)) == m then
            redis.call('ZADD', index, bucket, bucket)  -- a new bucket (or one back at 0: no-op)
          end
          redis.call('HINCRBY', hash, 'total', n2s(m))
          keep_alive(a.ttl, hash, index)
        else
          redis.call('INCRBY', KEYS[a.k[1]], n2s(m))
          if a.ttl > 0 then keep_alive(a.ttl, KEYS[a.k[1]]) end
        end
      end
    end
  end
end

-- The tenant's daily counter and throttle.
local t = redis.call('HMGET', KEYS[1], 'loaded', 'currency', 'day', 'threshold', 'spent',
                     'throttled_until', 'snap')
local state = 'ok'
if not t[1] then
  state = 'missing'
  if amount ~= 0 then redis.call('HINCRBY', KEYS[1], 'gen', 1) end
elseif (t[3] or '') < plan.today then
  state = 'stale'
elseif t[3] == plan.day and t[2] == plan.cur and amount ~= 0 and not seen_by(t[7], plan.xid) then
  -- (An event the tenant's rebuild already read from daily_spend is not counted again.)
  local before = tonumber(t[5] or '0')
  local after = redis.call('HINCRBY', KEYS[1], 'spent', n2s(amount))
  t[5] = n2s(after)
  local threshold = tonumber(t[4] or '0')
  -- Only the charge that crosses throttles: after an admin lift, spend already over the
  -- threshold does not throttle again that day.
  if threshold > 0 and before < threshold and after >= threshold then
    redis.call('HSET', KEYS[1], 'throttled_until', n2s(plan.day_end))
    t[6] = n2s(plan.day_end)
  end
end
if not skip then
  redis.call('SET', KEYS[3], plan.eid, 'PX', plan.marker_ttl)
  if more then
    for i, eid in ipairs(more) do
      redis.call('SET', KEYS[first_more + i - 1], eid, 'PX', plan.marker_ttl)
    end
  end
end
return cjson.encode({r = 'OK', tenant = state, threshold = t[4] or '0', currency = t[2] or '',
                     spent = t[5] or '0', ['until'] = t[6] or '0'})
