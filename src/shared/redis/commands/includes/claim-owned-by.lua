-- Whether the claim at `claimKey` still belongs to `purchaseId` (its value starts with that id):
-- a claim that expired and was taken by a newer purchase is never touched.
local function claimOwnedBy(claimKey, purchaseId)
  local current = redis.call('GET', claimKey)
  return current and string.sub(current, 1, #purchaseId) == purchaseId
end
