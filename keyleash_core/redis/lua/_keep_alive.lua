-- Shared by the scripts that write windows (authorize.lua, settle.lua): pasted in place of
-- their `--!include keep_alive` line when Scripts loads them (Redis scripts share no code).
--
-- Keeps `key` (and `partner`) alive for at least `ttl` ms from now. The TTL is renewed only
-- when less than that is left, and then with up to a minute to spare, so most calls read a TTL
-- instead of writing one (a write in a script costs Redis about twice a read).
local function keep_alive(ttl, key, partner)
  if redis.call('PTTL', key) < ttl then
    local lifetime = ttl + math.min(ttl, 60000)
    redis.call('PEXPIRE', key, lifetime)
    -- A rolling window's hash and its bucket index expire together, or a hash outliving its
    -- index would keep buckets nothing trims out of its total.
    if partner then redis.call('PEXPIRE', partner, lifetime) end
  end
end
