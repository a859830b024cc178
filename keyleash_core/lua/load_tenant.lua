-- Loads a tenant's budget state rebuilt from Postgres, unless already loaded.
-- KEYS[1] tenant hash; ARGV: threshold, currency, spent today, day id, throttled_until ms.
if redis.call('HEXISTS', KEYS[1], 'loaded') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'threshold', ARGV[1], 'currency', ARGV[2], 'spent', ARGV[3],
           'day', ARGV[4], 'throttled_until', ARGV[5], 'loaded', '1')
return 1
