--[[
  Points a claim at another purchase (the one whose job holds the queue slot for the key), and
  drops the never-queued record of ours, if the claim still belongs to us.

  KEYS[1]: the claim key. KEYS[2]: our purchase's state key.
  ARGV[1]: our purchase id. ARGV[2]: the new claim value. ARGV[3]: the claim TTL in seconds.
  Returns 1 when redirected, 0 when the claim is no longer ours.
]]
--- @include "includes/claim-owned-by"
if not claimOwnedBy(KEYS[1], ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('DEL', KEYS[2])
return 1
