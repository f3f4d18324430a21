/**
 * Lua shared by the batched Redis scripts. `hsetFromArgv(key, fields, offset)` writes a hash
 * whose values are ARGV[offset + 1 .. offset + #fields], in the order of `fields`; `fields` is
 * declared once per script with `luaFieldList`.
 */
export const HSET_FROM_ARGV = `
local function hsetFromArgv(key, fields, offset)
  local hash = {}
  for f, field in ipairs(fields) do
    hash[#hash + 1] = field
    hash[#hash + 1] = ARGV[offset + f]
  end
  redis.call('HSET', key, unpack(hash))
end
`;

/** A Lua table literal of field names, e.g. `{'userId', 'amount'}`. */
export const luaFieldList = (fields: readonly string[]) => `{${fields.map((field) => `'${field}'`).join(', ')}}`;
