-- Writes a Lua table of field = value pairs to the hash at `key`. The fields come from the
-- caller's JSON object, so no list of field names has to agree between TypeScript and Lua.
local function hsetFields(key, fields)
  local pairsList = {}
  for field, value in pairs(fields) do
    pairsList[#pairsList + 1] = field
    pairsList[#pairsList + 1] = value
  end
  redis.call('HSET', key, unpack(pairsList))
end
