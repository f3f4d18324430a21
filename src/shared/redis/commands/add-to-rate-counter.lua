--[[
  Adds to a fixed-window rate counter: a key that lives as long as its window, plus a second so
  that a late addition never outlives it by much.

  KEYS[1]: the counter's key.
  ARGV[1]: what to add. ARGV[2]: how long the counter lives, in milliseconds.
  Returns the counter's new total.
]]
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
if total == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return total
