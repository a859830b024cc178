-- Adds an approved grant to one spend cap's grant counter of a key, for one window.
-- Postgres holds the grant already (the approved approvals row); this makes the decision
-- script see it. When the key is not loaded, the counter is left alone and the key hash's
-- "gen" is bumped instead, so a load reading Postgres concurrently reads again and restores
-- the grant from Postgres (load_key.lua refuses a changed "gen"), as settle.lua does.
--
-- KEYS[1]  the capped key's hash
-- KEYS[2]  the grant counter (keyspace.spend_grant)
-- ARGV[1]  micros to add
-- ARGV[2]  ms Redis keeps the counter (0: no expiry)
-- Returns 1 when added, 0 when the key was not loaded.
if redis.call('HEXISTS', KEYS[1], 'loaded') == 0 then
  redis.call('HINCRBY', KEYS[1], 'gen', 1)
  return 0
end
redis.call('INCRBY', KEYS[2], ARGV[1])
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1
