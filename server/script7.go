package server

import "github.com/gomodule/redigo/redis"

// Hammer 7's scripts, one per algorithm, each serving every operation of its
// algorithm (ARGV[1] names it). They write what hammer_backend_redis 7.x
// writes (keys, types, fields, members' scores, units, TTL rules), with the
// fixes listed in protocol/hammer7.go, whose rules they implement. They need
// Redis 7.0 (PEXPIREAT NX). Stored numbers are written with %d: Redis would
// turn a Lua number of 15 digits or more into exponent notation.
//
// The last argument of the three clocked scripts is "" (read Redis TIME) or
// "<s>:<µs>", a clock that tests set (Config.ScriptClock).

// guardLua refuses to run before Redis 7.0, before any write (fix_window's
// INCRBY would otherwise count and its PEXPIREAT NX then fail): the check
// at connect cannot run when the user may not run INFO.
// redis.REDIS_VERSION_NUM is itself new in 7.0.
const guardLua = `
if (redis.REDIS_VERSION_NUM or 0) < 0x070000 then
  return redis.error_reply('ERR hammerredis: Hammer 7 needs Redis 7.0 or later')
end
`

// clockLua reads the script's clock: whole seconds and microseconds.
const clockLua = guardLua + `
local function clock(arg)
  if arg ~= '' then
    local s, us = string.match(arg, '^(%d+):(%d+)$')
    return tonumber(s), tonumber(us)
  end
  local t = redis.call('TIME')
  return tonumber(t[1]), tonumber(t[2])
end
local function int(n) return string.format('%d', n) end
`

// FixWindowLua is fix_window's script, for hit and inc (INCRBY) and set
// (SET), then the window's end as the key's expiry, unless the key has one
// (NX: the first writer's stands, as with Elixir's EXPIREAT NX). One script,
// so the count never lives without its expiry. An INCRBY on a key of another
// type fails before anything is written; set checks the type first, where
// SET would replace any key.
//
//	KEYS[1] "<prefix>:<id>:<window>"
//	ARGV[1] "hit" (hit and inc) or "set"
//	ARGV[2] the increment, or the count to set
//	ARGV[3] the window's end, ms since the Unix epoch
//
// It returns the count.
const FixWindowLua = guardLua + `
local n
if ARGV[1] == 'set' then
  local t = redis.call('TYPE', KEYS[1])['ok']
  if t ~= 'string' and t ~= 'none' then
    return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
  end
  redis.call('SET', KEYS[1], ARGV[2])
  n = tonumber(ARGV[2])
else
  n = redis.call('INCRBY', KEYS[1], ARGV[2])
end
redis.call('PEXPIREAT', KEYS[1], ARGV[3], 'NX')
return n
`

// SlidingWindowLua is sliding_window's script, for hit, inc, set and get on
// the hit's key.
//
//	KEYS[1] "<prefix>:<id>:<scale ms>"
//	ARGV[1] "hit", "inc", "set" or "get"
//	ARGV[2] the window in whole seconds, w
//	ARGV[3] the limit
//	ARGV[4] the cost, increment or count
//	ARGV[5] the clock
//
// hit returns {allowed (1 or 0), count, retry ms (0 when allowed, -1
// never)}; the others return the count. Members are "<s>-<µs>-<i>": the
// dash keeps them apart from Elixir's all-digit members, and ZADD NX with
// the next i when taken keeps two scripts of one microsecond from
// overwriting each other's.
const SlidingWindowLua = clockLua + `
local s, us = clock(ARGV[5])
local key, op = KEYS[1], ARGV[1]
local w, limit, n = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if op == 'get' then
  return redis.call('ZCOUNT', key, '(' .. int(s - w), '+inf')
end
local function add(k)
  local base, score, i = int(s) .. '-' .. int(us) .. '-', int(s), 0
  while k > 0 do
    local args, m = {}, math.min(k, 256)
    for j = 1, m do
      i = i + 1
      args[2 * j - 1], args[2 * j] = score, base .. i
    end
    k = k - redis.call('ZADD', key, 'NX', unpack(args))
  end
  redis.call('EXPIRE', key, int(w))
end
if op == 'set' then
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'zset' and t ~= 'none' then
    return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
  end
  redis.call('DEL', key)
  if n > 0 then add(n) end
  return n
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', int(s - w))
local c = redis.call('ZCARD', key)
if op == 'inc' then
  add(n)
  return c + n
end
if c + n <= limit then
  if n > 0 then add(n) else redis.call('EXPIRE', key, int(w)) end
  return {1, c + n, 0}
end
if n > limit then return {0, c, -1} end
local k = int(c + n - limit - 1)
local m = redis.call('ZRANGE', key, k, k, 'WITHSCORES')
return {0, c, (tonumber(m[2]) + w) * 1000 - (s * 1000 + math.floor(us / 1000))}
`

// bucketLua: the hash both buckets keep, read with the leak or refill up
// to now (the elapsed seconds never negative, should a failover bring an
// earlier clock).
//
//	KEYS[1] "<prefix>:<id>"
//	ARGV[1] "hit" or "get"
//	ARGV[2] the capacity
//	ARGV[3] the rate, units per second
//	ARGV[4] the cost
//	ARGV[5] the clock
const bucketLua = clockLua + `
local s, us = clock(ARGV[5])
local key, op = KEYS[1], ARGV[1]
local cap, rate, cost = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local v = redis.call('HMGET', key, 'level', 'last_update')
local now_ms = s * 1000 + math.floor(us / 1000)
local function store(level, ttl)
  redis.call('HSET', key, 'level', int(level), 'last_update', int(s))
  redis.call('EXPIRE', key, int(math.ceil(ttl / rate) + 60))
end
`

// LeakyBucketLua is leaky_bucket's script, for hit and get. hit returns
// {allowed, level, retry ms}; get returns the level.
const LeakyBucketLua = bucketLua + `
local level = tonumber(v[1]) or 0
local last = tonumber(v[2]) or s
local left = math.max(0, level - math.max(0, s - last) * rate)
if op == 'get' then return left end
if left + cost <= cap then
  store(left + cost, left + cost)
  return {1, left + cost, 0}
end
if cost > cap then return {0, left, -1} end
return {0, left, (last + math.ceil((level + cost - cap) / rate)) * 1000 - now_ms}
`

// TokenBucketLua is token_bucket's script, for hit and get; a bucket without
// a key is full. hit returns {allowed, tokens, retry ms}; get returns the
// tokens.
const TokenBucketLua = bucketLua + `
local level = tonumber(v[1]) or cap
local last = tonumber(v[2]) or s
local tokens = math.min(cap, level + math.max(0, s - last) * rate)
if op == 'get' then return tokens end
if tokens >= cost then
  store(tokens - cost, cap - (tokens - cost))
  return {1, tokens - cost, 0}
end
if cost > cap then return {0, tokens, -1} end
return {0, tokens, (last + math.ceil((cost - level) / rate)) * 1000 - now_ms}
`

// script7 is one of the scripts above, its EVALSHA and EVAL first
// arguments boxed once.
type script7 struct {
	sha, source any
}

func newScript7(src string) script7 {
	return script7{sha: redis.NewScript(1, src).Hash(), source: src}
}

// The scripts by algorithm (protocol.Algorithm indexes them).
var scripts7 = [...]script7{
	1: newScript7(FixWindowLua),
	2: newScript7(SlidingWindowLua),
	3: newScript7(LeakyBucketLua),
	4: newScript7(TokenBucketLua),
}
