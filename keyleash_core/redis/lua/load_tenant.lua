-- Loads a tenant's budget state rebuilt from Postgres, unless already loaded.
-- KEYS[1] tenant hash; ARGV: threshold, currency, spent today, day id, throttled_until ms, the
-- hash's "gen" read before Postgres was read, and the Postgres snapshot the spend was read in
-- (settle.lua skips events it saw). Returns 1 loaded, 0 already loaded, -1 when a charge was
-- settled meanwhile (settle.lua bumped "gen"): read Postgres again.
if redis.call('HEXISTS', KEYS[1], 'loaded') == 1 then return 0 end
if (redis.call('HGET', KEYS[1], 'gen') or '0') ~= ARGV[6] then return -1 end
redis.call('HSET', KEYS[1], 'threshold', ARGV[1], 'currency', ARGV[2], 'spent', ARGV[3],
           'day', ARGV[4], 'throttled_until', ARGV[5], 'snap', ARGV[7] or '', 'loaded', '1')
return 1
