--[[
  Moves queued purchases to processing, never backwards from a final status.

  KEYS: the purchases' state keys.
  ARGV[1]: updatedAt (ISO 8601).
  Returns the number of keys.
]]
for _, key in ipairs(KEYS) do
  if redis.call('HGET', key, 'status') == 'queued' then
    redis.call('HSET', key, 'status', 'processing', 'updatedAt', ARGV[1])
  end
end
return #KEYS
