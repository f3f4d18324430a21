--[[
  Moves queued purchases to processing, never backwards from a final status, and announces each
  purchase it moved (one PUBLISH per purchase, none for one already further along).

  KEYS: the purchases' state keys.
  ARGV[1]: updatedAt (ISO 8601). ARGV[2]: the events channel.
  ARGV[2 + i]: the announcement of the purchase of KEYS[i] (JSON to publish).
  Returns the number of keys.
]]
for i, key in ipairs(KEYS) do
  if redis.call('HGET', key, 'status') == 'queued' then
    redis.call('HSET', key, 'status', 'processing', 'updatedAt', ARGV[1])
    redis.call('PUBLISH', ARGV[2], ARGV[2 + i])
  end
end
return #KEYS
