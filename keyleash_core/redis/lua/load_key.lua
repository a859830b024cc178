-- Loads a key rebuilt from Postgres into Redis, unless it is already loaded.
-- Fields a concurrent state change or policy update wrote meanwhile are newer than this
-- snapshot, so they are kept (HSETNX); the spend counters are set from the billing events.
--
-- KEYS[1]      the key hash
-- KEYS[2 ..]   spend counters to set (string counters, or rolling hash + index pairs)
-- ARGV[1]      JSON: {fields = {state=..., expire_ms=..., policy_version=..., record=...},
--                     calls = n, counters = [{kind, k = [key indexes], value | buckets | fields
--                                                  | members ([score, member] of a rate set), ttl}],
--                     gen = the key hash's "gen" read before Postgres was read}
-- Returns 1 when it loaded, 0 when the key was already loaded, -1 when a charge was settled
-- meanwhile (settle.lua bumped "gen"): the snapshot may miss it, so read Postgres again.
if redis.call('HEXISTS', KEYS[1], 'loaded') == 1 then return 0 end
local data = cjson.decode(ARGV[1])
if (redis.call('HGET', KEYS[1], 'gen') or '0') ~= data.gen then return -1 end
for name, value in pairs(data.fields) do
  redis.call('HSETNX', KEYS[1], name, value)
end
redis.call('HSET', KEYS[1], 'calls', data.calls)
for _, c in ipairs(data.counters) do
  if c.kind == 'rate' then
    -- Admitted calls the audit table holds, plus placeholders for those it may not (merged:
    -- members that survived in Redis stay).
    for _, m in ipairs(c.members) do redis.call('ZADD', KEYS[c.k[1]], m[1], m[2]) end
    if #c.members > 0 then redis.call('PEXPIRE', KEYS[c.k[1]], c.ttl) end
  elseif c.kind == 'rolling' then
    local hash, index = KEYS[c.k[1]], KEYS[c.k[2]]
    redis.call('DEL', hash, index)
    local total = 0
    for _, pair in ipairs(c.buckets) do
      redis.call('HSET', hash, pair[1], pair[2])
      redis.call('ZADD', index, pair[1], pair[1])
      total = total + tonumber(pair[2])
    end
    redis.call('HSET', hash, 'total', string.format('%d', total))
    redis.call('PEXPIRE', hash, c.ttl)
    redis.call('PEXPIRE', index, c.ttl)
  elseif c.kind == 'grant' then
    -- Approval grants of one cap and window: a field per approval, "total" their sum.
    local hash = KEYS[c.k[1]]
    redis.call('DEL', hash)
    local total = 0
    for _, pair in ipairs(c.fields) do
      redis.call('HSET', hash, pair[1], pair[2])
      total = total + tonumber(pair[2])
    end
    redis.call('HSET', hash, 'total', string.format('%d', total))
    if c.ttl > 0 then redis.call('PEXPIRE', hash, c.ttl) end
    redis.call('HSET', KEYS[1], 'grants', '1')  -- authorize.lua reads grant hashes of this key
  else
    redis.call('SET', KEYS[c.k[1]], c.value)
    if c.ttl > 0 then redis.call('PEXPIRE', KEYS[c.k[1]], c.ttl) end
  end
end
redis.call('HSET', KEYS[1], 'loaded', '1')
return 1
