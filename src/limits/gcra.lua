-- One decision of cognito-verify's limits (src/limits/remote.rs): GCRA for
-- every limit of a call, all or nothing, atomically (a script runs alone).
-- The same math as src/limits/gcra.rs, which has its tests and its words.
--
-- KEYS[i]       a limit's key; its value is the limit's TAT, µs since the epoch
-- ARGV[2i - 1]  the limit's emission interval T, µs
-- ARGV[2i]      its span n × T, µs: how far ahead of now a TAT may be
-- Returns {0, 0} when the call is admitted (every key then holds its new TAT,
-- expiring when that TAT is reached), or {i, wait µs} for the limit whose
-- wait is longest (the first of equals), and nothing is written.
--
-- Redis' clock, not the replicas', so replicas with skewed clocks agree.
-- (Writes after TIME need effects replication: Redis >= 5, or Valkey.)
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local new_tats = {}
local worst, worst_wait = 0, 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local span = tonumber(ARGV[2 * i])
  -- No TAT, or one in the past, means the full burst is available.
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  new_tats[i] = tat + interval
  local wait = new_tats[i] - span - now
  if wait > worst_wait then worst, worst_wait = i, wait end
end
if worst > 0 then return {worst, worst_wait} end
for i, key in ipairs(KEYS) do
  -- The TAT matters until it is reached: expire it then (ms, rounded up).
  -- '%d': Lua's default number format would round 16 digits to 14.
  local ttl = math.ceil((new_tats[i] - now) / 1000)
  redis.call('SET', key, string.format('%d', new_tats[i]), 'PX', string.format('%d', ttl))
end
return {0, 0}
