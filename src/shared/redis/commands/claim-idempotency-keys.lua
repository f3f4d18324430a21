--[[
  Claims idempotency keys and creates their purchases' in-flight records, a batch at a time:
  concurrent requests share one round trip. Each claim is atomic on its own, and two claims of
  one key in one batch are decided in order, the first winning. A claim and its record live only
  for the pending TTL until the claim is confirmed: a purchase whose job was never enqueued must
  not look "queued" for days.

  KEYS: for each claim, its claim key, then its purchase's state key.
  ARGV[1]: the pending TTL in seconds.
  ARGV[1 + i]: claim i as JSON, {"claim": "<purchaseId> <fingerprint>", "state": {field: value}}.
  Returns, for each claim, '' when claimed, or the holder's claim value.
]]
--- @include "includes/hset-fields"
local results = {}
for i = 1, #KEYS / 2 do
  local claimKey, stateKey = KEYS[2 * i - 1], KEYS[2 * i]
  local existing = redis.call('GET', claimKey)
  if existing then
    results[i] = existing
  else
    local request = cjson.decode(ARGV[1 + i])
    redis.call('SET', claimKey, request.claim, 'EX', ARGV[1])
    hsetFields(stateKey, request.state)
    redis.call('EXPIRE', stateKey, ARGV[1])
    results[i] = ''
  end
end
return results
