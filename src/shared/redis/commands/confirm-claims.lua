--[[
  Extends claims (and their purchases' records) to their full TTLs once their jobs are
  enqueued, for each claim still owned by its purchase.

  KEYS: for each claim, its claim key, then its purchase's state key.
  ARGV[1]: the claim TTL in seconds. ARGV[2]: the state record TTL in seconds.
  ARGV[2 + i]: the purchase id of claim i.
  Returns 1 (extended) or 0 (no longer ours) for each claim.
]]
--- @include "includes/claim-owned-by"
local results = {}
for i = 1, #KEYS / 2 do
  local claimKey, stateKey = KEYS[2 * i - 1], KEYS[2 * i]
  if claimOwnedBy(claimKey, ARGV[2 + i]) then
    redis.call('EXPIRE', claimKey, ARGV[1])
    redis.call('EXPIRE', stateKey, ARGV[2])
    results[i] = 1
  else
    results[i] = 0
  end
end
return results
