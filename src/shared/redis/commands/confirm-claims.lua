--[[
  Confirms claims once their purchases are recorded and enqueued, for each claim still owned by
  its purchase: marks it confirmed (duplicates may now be pointed at it) and extends it to the
  unfinished TTL, so that the key blocks duplicates for as long as the purchase may still be
  charged. A purchase that already finished (a fast worker announced it before this
  confirmation) keeps the shorter TTL the worker gave its claim.

  KEYS: for each claim, its claim key, then its purchase's state key.
  ARGV[1]: the unfinished claim TTL in seconds. ARGV[2]: the state record TTL in seconds.
  ARGV[2 + i]: the purchase id of claim i.
  Returns 1 (ours) or 0 (no longer ours) for each claim.
]]
--- @include "includes/claim-owned-by"
local results = {}
for i = 1, #KEYS / 2 do
  local claimKey, stateKey, purchaseId = KEYS[2 * i - 1], KEYS[2 * i], ARGV[2 + i]
  if claimOwnedBy(claimKey, purchaseId) then
    local current = redis.call('GET', claimKey)
    -- "<id> p <fingerprint>" becomes "<id> c <fingerprint>", keeping its TTL for now.
    if string.sub(current, #purchaseId + 1, #purchaseId + 3) == ' p ' then
      redis.call('SET', claimKey, purchaseId .. ' c ' .. string.sub(current, #purchaseId + 4), 'KEEPTTL')
    end
    local status = redis.call('HGET', stateKey, 'status')
    if status == 'queued' or status == 'processing' then
      redis.call('EXPIRE', claimKey, ARGV[1])
      redis.call('EXPIRE', stateKey, ARGV[2])
    end
    results[i] = 1
  else
    results[i] = 0
  end
end
return results
