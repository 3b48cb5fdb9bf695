-- Reads the state of some of cognito-verify's limits without changing it
-- (src/limits/remote.rs; the status RPC): Redis' clock, the SMS guard's
-- counter of this UTC day, and the TAT of each keyed limit.
--
-- KEYS[1]      the daily counter's key prefix (the day's number is appended)
-- KEYS[i + 1]  a limit's key (its TAT, µs since the epoch)
-- Returns {now µs, the day's count, TAT of KEYS[2] or -1, ...}. The day's
-- key is made here, as in gcra.lua (standalone Redis only).
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local day = math.floor(now / 86400000000)
local out = {now, tonumber(redis.call('GET', KEYS[1] .. ':' .. string.format('%d', day))) or 0}
for i = 2, #KEYS do
  out[i + 1] = tonumber(redis.call('GET', KEYS[i])) or -1
end
return out
