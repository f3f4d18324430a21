--[[
  Announces outcomes that Postgres now holds, drops their in-flight records (status reads ask
  Postgres first, so a record has nothing left to say), and starts each purchase's key on its
  last stretch: a claim that blocked duplicates while the purchase was unfinished now expires the
  idempotency TTL after the outcome, if it still belongs to the purchase.

  KEYS: for each purchase, its state key, then its claim key.
  ARGV[1]: the events channel. ARGV[2]: the claim TTL after the outcome, in seconds.
  ARGV[2 + i]: purchase i as JSON, {"purchaseId": "...", "event": "<JSON to publish>"}.
  Returns the number of purchases.
]]
--- @include "includes/claim-owned-by"
for i = 1, #KEYS / 2 do
  local stateKey, claimKey = KEYS[2 * i - 1], KEYS[2 * i]
  local outcome = cjson.decode(ARGV[2 + i])
  redis.call('DEL', stateKey)
  if claimOwnedBy(claimKey, outcome.purchaseId) then redis.call('EXPIRE', claimKey, ARGV[2]) end
  redis.call('PUBLISH', ARGV[1], outcome.event)
end
return #KEYS / 2
