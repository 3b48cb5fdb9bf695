-- One decision of cognito-verify's limits (src/limits/remote.rs): GCRA for
-- every keyed limit of a call, and the SMS guard's daily counter when the
-- call has one, all or nothing, atomically (a script runs alone). The same
-- math as src/limits/gcra.rs, which has its tests and its words.
--
-- KEYS[1]          the daily counter's key prefix; the UTC day's number is
--                  appended (used only when ARGV[1] > 0)
-- ARGV[1]          the daily limit; 0: this call has no daily counter
-- KEYS[i + 1]      a limit's key; its value is the limit's TAT, µs since the epoch
-- ARGV[2i]         the limit's emission interval T, µs
-- ARGV[2i + 1]     its span n × T, µs: how far ahead of now a TAT may be
-- Returns {0, 0, count, day} when the call is admitted (every key then
-- holds its new TAT, expiring when that TAT is reached, and the day's counter
-- is one up), or {j, wait µs, count, day} for the limit whose wait is longest
-- (the first of equals; j = 1 is the daily counter, j = i + 1 the limit of
-- KEYS[i + 1]), and nothing is written. `count` is the day's counter after
-- the decision (0 without one), `day` the UTC day's number by Redis' clock.
--
-- The day's key is KEYS[1] with the day appended, made here: a key the
-- script does not declare, which standalone Redis (and Valkey) run, and
-- Redis Cluster or a key-routing proxy would refuse (the limits need a
-- standalone Redis anyway: docs/operations.md).
--
-- Redis' clock, not the replicas', so replicas with skewed clocks agree, on
-- the day too. (Writes after TIME need effects replication: Redis >= 5, or
-- Valkey.)
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local day_us = 86400000000
local daily = tonumber(ARGV[1])
local worst, worst_wait = 0, 0
local day = math.floor(now / day_us)
local day_key, count = nil, 0
if daily > 0 then
  day_key = KEYS[1] .. ':' .. string.format('%d', day)
  count = tonumber(redis.call('GET', day_key)) or 0
  if count >= daily then worst, worst_wait = 1, (day + 1) * day_us - now end
end
local new_tats = {}
for i = 2, #KEYS do
  local interval = tonumber(ARGV[2 * i - 2])
  local span = tonumber(ARGV[2 * i - 1])
  -- No TAT, or one in the past, means the full burst is available.
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  new_tats[i] = tat + interval
  local wait = new_tats[i] - span - now
  if wait > worst_wait then worst, worst_wait = i, wait end
end
if worst > 0 then return {worst, worst_wait, count, day} end
for i = 2, #KEYS do
  -- The TAT matters until it is reached: expire it then (ms, rounded up).
  -- '%d': Lua's default number format would round 16 digits to 14.
  local ttl = math.ceil((new_tats[i] - now) / 1000)
  redis.call('SET', KEYS[i], string.format('%d', new_tats[i]), 'PX', string.format('%d', ttl))
end
if day_key then
  count = redis.call('INCR', day_key)
  -- Kept an hour past its day, for late readers; then gone.
  redis.call('PEXPIREAT', day_key, string.format('%d', (day + 1) * 86400000 + 3600000))
end
return {0, 0, count, day}
