-- Records a decision that was made without the decision script (a policy denial found by the
-- pure checks), so that every decision has its audit record.
-- KEYS[1] the tenant's audit stream; ARGV[1] the stream bound; ARGV[2..] field/value pairs.
-- Returns 'F' when the stream is full (the caller fails closed), else 'OK'.
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return 'F' end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
return 'OK'
