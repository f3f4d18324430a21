--[[
  Records outcomes that Postgres could not take, where Redis is then their only record, and
  announces each.

  KEYS: the purchases' state keys.
  ARGV[1]: the events channel.
  ARGV[1 + i]: outcome i as JSON, {"ttl": seconds, "event": "<JSON>", "state": {field: value}}.
  Returns the number of keys.
]]
--- @include "includes/hset-fields"
for i, key in ipairs(KEYS) do
  local outcome = cjson.decode(ARGV[1 + i])
  hsetFields(key, outcome.state)
  redis.call('EXPIRE', key, outcome.ttl)
  redis.call('PUBLISH', ARGV[1], outcome.event)
end
return #KEYS
