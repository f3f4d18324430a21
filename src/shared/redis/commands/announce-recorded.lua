--[[
  Announces outcomes that Postgres now holds, and drops their in-flight records: status reads
  ask Postgres first, so a record has nothing left to say.

  KEYS: the purchases' state keys.
  ARGV[1]: the events channel. ARGV[1 + i]: the event (JSON) to publish for key i.
  Returns the number of keys.
]]
for i, key in ipairs(KEYS) do
  redis.call('DEL', key)
  redis.call('PUBLISH', ARGV[1], ARGV[i + 1])
end
return #KEYS
