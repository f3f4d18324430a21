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
local results = {}
for i = 1, #KEYS / 2 do
  local claimKey, stateKey, purchaseId = KEYS[2 * i - 1], KEYS[2 * i], ARGV[2 + i]
  local current = redis.call('GET', claimKey)
  -- Ours: the value starts with our purchase id (see includes/claim-owned-by).
  if current and string.sub(current, 1, #purchaseId) == purchaseId then
    local status = redis.call('HGET', stateKey, 'status')
    local unfinished = status == 'queued' or status == 'processing'
    -- "<id> p <fingerprint>" becomes "<id> c <fingerprint>"; the TTL follows in one command.
    -- A claim written before claims had a state ("<id> <fingerprint>") keeps its fingerprint.
    local mark = string.sub(current, #purchaseId + 1, #purchaseId + 3)
    local rest = (mark == ' p ' or mark == ' c ') and string.sub(current, #purchaseId + 4)
      or string.sub(current, #purchaseId + 2)
    local confirmed = purchaseId .. ' c ' .. rest
    if unfinished then
      redis.call('SET', claimKey, confirmed, 'EX', ARGV[1])
      redis.call('EXPIRE', stateKey, ARGV[2])
    else
      redis.call('SET', claimKey, confirmed, 'KEEPTTL')
    end
    results[i] = 1
  else
    results[i] = 0
  end
end
return results
