--[[
  Gives a claim back, and drops its purchase's record, if the claim still belongs to the purchase.

  KEYS[1]: the claim key. KEYS[2]: the purchase's state key.
  ARGV[1]: the purchase id.
  Returns 1 when released, 0 when the claim is no longer ours.
]]
--- @include "includes/claim-owned-by"
if not claimOwnedBy(KEYS[1], ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
