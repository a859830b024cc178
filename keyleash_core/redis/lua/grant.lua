-- Adds an approved grant to one spend cap's grant hash of a key, for one window, once.
-- Postgres holds the grant already (the approved approvals row); this makes the decision
-- script see it. Idempotent per approval (field = approval id; "total" = their sum), so a
-- retried approval that crashed between Postgres and Redis can apply it again safely. When the
-- key is not loaded, the hash is left alone and the key hash's "gen" is bumped instead, so a
-- load reading Postgres concurrently reads again and restores the grant from Postgres
-- (load_key.lua refuses a changed "gen"), as settle.lua does.
--
-- KEYS[1]  the capped key's hash
-- KEYS[2]  the grant hash (keyspace.spend_grant)
-- ARGV[1]  micros granted
-- ARGV[2]  ms Redis keeps the hash (0: no expiry)
-- ARGV[3]  the approval id
-- Returns 1 when added, 0 when already there, -1 when the key was not loaded.
if redis.call('HEXISTS', KEYS[1], 'loaded') == 0 then
  redis.call('HINCRBY', KEYS[1], 'gen', 1)
  return -1
end
-- Tells authorize.lua this key's spend checks must read their grant hashes.
redis.call('HSET', KEYS[1], 'grants', '1')
if redis.call('HSETNX', KEYS[2], ARGV[3], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], 'total', ARGV[1])
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1
