--[[
  Returns the job already remembered under a deduplication id (refreshing its life), or
  remembers this one and returns nil.

  KEYS[1]: the record key.
  ARGV[1]: the job (JSON). ARGV[2]: how long to remember it, in seconds.
]]
local existing = redis.call('GET', KEYS[1])
if existing then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return existing
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
