--[[
  Records outcomes that Postgres could not take, where Redis is then their only record,
  announces each, and starts each purchase's key on its last stretch (see announce-recorded).

  KEYS: for each purchase, its state key, then its claim key.
  ARGV[1]: the events channel. ARGV[2]: the claim TTL after the outcome, in seconds.
  ARGV[2 + i]: purchase i as JSON,
    {"purchaseId": "...", "ttl": seconds, "event": "<JSON>", "state": {field: value}}.
  Returns the number of purchases.
]]
--- @include "includes/hset-fields"
--- @include "includes/claim-owned-by"
for i = 1, #KEYS / 2 do
  local stateKey, claimKey = KEYS[2 * i - 1], KEYS[2 * i]
  local outcome = cjson.decode(ARGV[2 + i])
  hsetFields(stateKey, outcome.state)
  redis.call('EXPIRE', stateKey, outcome.ttl)
  if claimOwnedBy(claimKey, outcome.purchaseId) then redis.call('EXPIRE', claimKey, ARGV[2]) end
  redis.call('PUBLISH', ARGV[1], outcome.event)
end
return #KEYS / 2
