package server

import "github.com/gomodule/redigo/redis"

// Hammer 7's scripts, one per algorithm, each serving every operation of its
// algorithm (ARGV[1] names it). They write what hammer_backend_redis 7.x
// writes (keys, types, fields, members' scores, units, TTL rules), with the
// fixes listed in protocol/hammer7.go, whose rules they implement. They need
// Redis 7.0 (PEXPIREAT NX). Stored numbers are written with %d: Redis would
// turn a Lua number of 15 digits or more into exponent notation.
//
// The clock argument of the scripts that read it is "" (read Redis TIME) or
// "<s>:<µs>", a clock that tests set (Config.ScriptClock).

// guardLua refuses to run before Redis 7.0, before any write (fix_window's
// INCRBY would otherwise count and its PEXPIREAT NX then fail): the check
// at connect cannot run when the user may not run INFO.
// redis.REDIS_VERSION_NUM is itself new in 7.0. It also defines what the
// algorithms share: the clock and the integer format.
const guardLua = `
if (redis.REDIS_VERSION_NUM or 0) < 0x070000 then
  return redis.error_reply('ERR hammerredis: Hammer 7 needs Redis 7.0 or later')
end
local function clock(arg)
  if arg ~= '' then
    local s, us = string.match(arg, '^(%d+):(%d+)$')
    return tonumber(s), tonumber(us)
  end
  local t = redis.call('TIME')
  return tonumber(t[1]), tonumber(t[2])
end
local function int(n) return string.format('%d', n) end
local function wrongtype(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t ~= want and t ~= 'none' then
    return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
  end
end
`

// Each algorithm is a Lua function of its key, its operation, its three
// numbers (strings, as the arguments come) and the clock (s, µs), run once
// by the algorithm's own script and once per element by the multi-key
// script.

// fixLua: fix_window's hit and inc (INCRBY) and set (SET), then the window's
// end as the key's expiry, unless the key has one (NX: the first writer's
// stands, as with Elixir's EXPIREAT NX). One script, so the count never
// lives without its expiry. An INCRBY on a key of another type fails before
// anything is written; set checks the type first, where SET would replace
// any key; get (in a multi-key run; alone it is a GET) writes nothing.
// Numbers: the increment or count, the window's end (ms since the Unix
// epoch). It returns the count.
const fixLua = `
local function fix(key, op, n, endms)
  if op == 'get' then return redis.call('GET', key) end
  local c
  if op == 'set' then
    local e = wrongtype(key, 'string')
    if e then return e end
    redis.call('SET', key, n)
    c = tonumber(n)
  else
    c = redis.call('INCRBY', key, n)
  end
  redis.call('PEXPIREAT', key, endms, 'NX')
  return c
end
`

// slidingLua: sliding_window's hit, inc, set and get on the hit's key.
// Numbers: the window in whole seconds w, the limit, the cost, increment or
// count. hit returns the count when allowed, else {count, retry ms (-1:
// never)}: an allowed hit, the common case, costs the client one integer
// to decode; the others return the count. Members are "<s>-<µs>-<i>": the
// dash keeps them apart from Elixir's all-digit members, and ZADD NX with
// the next i when taken keeps two runs of one microsecond from overwriting
// each other's. A window's state counts the members left (count), those
// added by this run and not yet written (pending), and those older than the
// window still stored (gone: 0 once zload has trimmed them; the check
// script reads without trimming, check.go).
const slidingLua = `
local function zadd(key, s, us, k)
  local base, score, i = int(s) .. '-' .. int(us) .. '-', int(s), 0
  while k > 0 do
    local args, m = {}, math.min(k, 256)
    for j = 1, m do
      i = i + 1
      args[2 * j - 1], args[2 * j] = score, base .. i
    end
    k = k - redis.call('ZADD', key, 'NX', unpack(args))
  end
end
local function zload(key, s, w)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', int(s - w))
  return {count = redis.call('ZCARD', key), pending = 0, gone = 0}
end
local function zflush(key, st, s, us, w)
  if st.pending > 0 then zadd(key, s, us, st.pending) end
  redis.call('EXPIRE', key, int(w))
  st.pending, st.dirty = 0, false
end
local function slide(st, key, op, limit, n, w, s, us)
  if op == 'inc' or st.count + n <= limit then
    st.count, st.pending, st.dirty = st.count + n, st.pending + n, true
    return st.count
  end
  if n > limit then return {st.count, -1} end
  local k, score = st.count + n - limit, s
  if k <= st.count - st.pending then
    local m = redis.call('ZRANGE', key, int(st.gone + k - 1), int(st.gone + k - 1), 'WITHSCORES')
    score = tonumber(m[2])
  end
  return {st.count, (score + w) * 1000 - (s * 1000 + math.floor(us / 1000))}
end
local function sliding(key, op, w, limit, n, s, us)
  w, limit, n = tonumber(w), tonumber(limit), tonumber(n)
  if op == 'get' then
    return redis.call('ZCOUNT', key, '(' .. int(s - w), '+inf')
  end
  if op == 'set' then
    local e = wrongtype(key, 'zset')
    if e then return e end
    redis.call('DEL', key)
    if n > 0 then
      zadd(key, s, us, n)
      redis.call('EXPIRE', key, int(w))
    end
    return n
  end
  local st = zload(key, s, w)
  local r = slide(st, key, op, limit, n, w, s, us)
  if st.dirty then zflush(key, st, s, us, w) end
  return r
end
`

// bucketLua: leaky_bucket's and token_bucket's hit and get, on the hash both
// keep, read with the leak or refill up to now (the elapsed seconds never
// negative, should a failover bring an earlier clock). Numbers: the
// capacity, the rate (units per second), the cost. hit returns the level or
// tokens when allowed, else {level or tokens, retry ms (-1: never)}; get
// returns the level or tokens. A token bucket without a key is full.
//
// bucket works on st, the hash as loaded (level and last_update, nil when
// absent), and marks it dirty when a hit changes it; the caller writes a
// dirty hash back (flush). A multi-key run loads a key once and writes it
// once, after its last call: the same data as calls one by one, for a
// third of the commands on a hot key.
const bucketLua = `
local function load(key)
  local v = redis.call('HMGET', key, 'level', 'last_update')
  return {level = tonumber(v[1]), last = tonumber(v[2])}
end
local function flush(key, st)
  redis.call('HSET', key, 'level', int(st.level), 'last_update', int(st.last))
  redis.call('EXPIRE', key, int(st.ttl))
end
local function bucket(leaky, st, op, cap, rate, cost, s, us)
  cap, rate, cost = tonumber(cap), tonumber(rate), tonumber(cost)
  local now_ms = s * 1000 + math.floor(us / 1000)
  local last = st.last or s
  local elapsed = math.max(0, s - last)
  local function store(level, ttl)
    st.level, st.last, st.ttl, st.dirty = level, s, math.ceil(ttl / rate) + 60, true
  end
  if leaky then
    local level = st.level or 0
    local left = math.max(0, level - elapsed * rate)
    if op == 'get' then return left end
    if left + cost <= cap then
      store(left + cost, left + cost)
      return left + cost
    end
    if cost > cap then return {left, -1} end
    return {left, (last + math.ceil((level + cost - cap) / rate)) * 1000 - now_ms}
  end
  local level = st.level or cap
  local tokens = math.min(cap, level + elapsed * rate)
  if op == 'get' then return tokens end
  if tokens >= cost then
    store(tokens - cost, cap - (tokens - cost))
    return tokens - cost
  end
  if cost > cap then return {tokens, -1} end
  return {tokens, (last + math.ceil((cost - level) / rate)) * 1000 - now_ms}
end
local function bucket1(leaky, key, op, cap, rate, cost, s, us)
  local st = load(key)
  local r = bucket(leaky, st, op, cap, rate, cost, s, us)
  if st.dirty then flush(key, st) end
  return r
end
`

// FixWindowLua is fix_window's script (fixLua).
//
//	KEYS[1] "<prefix>:<id>:<window>"
//	ARGV[1] "hit" (hit and inc) or "set"
//	ARGV[2] the increment, or the count to set
//	ARGV[3] the window's end, ms since the Unix epoch
const FixWindowLua = guardLua + fixLua + `
return fix(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
`

// SlidingWindowLua is sliding_window's script (slidingLua).
//
//	KEYS[1] "<prefix>:<id>:<scale ms>"
//	ARGV[1] "hit", "inc", "set" or "get"
//	ARGV[2] the window in whole seconds, w
//	ARGV[3] the limit
//	ARGV[4] the cost, increment or count
//	ARGV[5] the clock: "" (Redis TIME) or "<s>:<µs>" (Config.ScriptClock)
const SlidingWindowLua = guardLua + slidingLua + `
local s, us = clock(ARGV[5])
return sliding(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], s, us)
`

// LeakyBucketLua is leaky_bucket's script (bucketLua).
//
//	KEYS[1] "<prefix>:<id>"
//	ARGV[1] "hit" or "get"
//	ARGV[2] the capacity
//	ARGV[3] the rate, units per second
//	ARGV[4] the cost
//	ARGV[5] the clock, as for SlidingWindowLua
const LeakyBucketLua = guardLua + bucketLua + `
local s, us = clock(ARGV[5])
return bucket1(true, KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], s, us)
`

// TokenBucketLua is token_bucket's script (bucketLua), with the arguments
// of LeakyBucketLua.
const TokenBucketLua = guardLua + bucketLua + `
local s, us = clock(ARGV[5])
return bucket1(false, KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], s, us)
`

// Multi7Lua runs Hammer 7's calls of several keys at once, in order (one
// key may come back), each as its algorithm's script would, so that Redis
// runs one script for many checks (multi.go). All of them read the clock
// once. It runs only on a single server: on a Redis Cluster the keys of one
// script must share a slot.
//
//	KEYS[i]          the keys
//	ARGV[1]          the clock, as for SlidingWindowLua
//	ARGV[5i-3..5i+1] key i's algorithm (1 to 4, protocol.Algorithm), its
//	                 operation and its three numbers, as its script takes
//	                 them (0 where it takes fewer)
//
// It returns one element per key: what its script would, or its error,
// which does not stop the others. An error may come after a write (a
// command the user may not run): the call is not run again. A bucket's hash
// is read once and written once per run (bucketLua), a sliding window
// trimmed and counted once and its members added once (slidingLua); should
// that write fail, every call that changed the key gets the error.
const Multi7Lua = guardLua + fixLua + slidingLua + bucketLua + failedLua + `
local s, us = clock(ARGV[1])
local out, hashes, zsets, zw, writers = {}, {}, {}, {}, {}
-- run calls f on st, the cached state of key (loaded by load on its first
-- call), and notes i among the writers of key when f changed it.
local function run(cache, key, load, i, f, ...)
  local ok, st = true, cache[key]
  if not st then
    ok, st = pcall(load)
    if not ok then return false, st end
    cache[key], writers[key] = st, writers[key] or {}
  end
  local dirty = st.dirty
  st.dirty = false
  local r
  ok, r = pcall(f, st, ...)
  if ok and st.dirty then table.insert(writers[key], i) end
  st.dirty = st.dirty or dirty
  return ok, r
end
local function fail(key, e)
  for _, i in ipairs(writers[key] or {}) do out[i] = failed(e) end
end
for i = 1, #KEYS do
  local j, key = 5 * i - 3, KEYS[i]
  local alg, op, a, b, c = ARGV[j], ARGV[j + 1], ARGV[j + 2], ARGV[j + 3], ARGV[j + 4]
  local ok, r
  if alg == '1' then
    ok, r = pcall(fix, key, op, a, b)
  elseif alg == '2' and (op == 'hit' or op == 'inc') then
    local w = tonumber(a)
    zw[key] = w
    ok, r = run(zsets, key, function() return zload(key, s, w) end, i,
      function(st) return slide(st, key, op, tonumber(b), tonumber(c), w, s, us) end)
  elseif alg == '2' and op == 'get' and zsets[key] then
    ok, r = true, zsets[key].count
  elseif alg == '2' then
    -- set, or a get of a key this run has not touched: the window's
    -- members first, as one by one
    local st = zsets[key]
    if st and st.dirty then
      local fok, e = pcall(zflush, key, st, s, us, zw[key])
      if not fok then fail(key, e) end
    end
    zsets[key], writers[key] = nil, nil
    ok, r = pcall(sliding, key, op, a, b, c, s, us)
  else
    ok, r = run(hashes, key, function() return load(key) end, i,
      function(st) return bucket(alg == '3', st, op, a, b, c, s, us) end)
  end
  if ok then out[i] = r else out[i] = failed(r) end -- r may be false: a GET of no key
end
for key, st in pairs(zsets) do
  if st.dirty then
    local ok, e = pcall(zflush, key, st, s, us, zw[key])
    if not ok then fail(key, e) end
  end
end
for key, st in pairs(hashes) do
  if st.dirty then
    local ok, e = pcall(flush, key, st)
    if not ok then fail(key, e) end
  end
end
return out
`

// failedLua: failed(r) returns what pcall caught, r, as an error reply: a
// Redis error as it came (an error reply, or the message of a command's
// error, which starts with its code), any other as ERR, so that a
// multi-key script answers one call's error, with the code the call alone
// would get, without stopping the others.
const failedLua = `
local function failed(r)
  if type(r) == 'table' and r['err'] then return r end
  if type(r) == 'string' and string.match(r, '^%u+ ') then return {err = r} end
  return {err = 'ERR ' .. tostring(r)}
end
`

// script7 is one of the scripts above, its EVALSHA and EVAL first
// arguments boxed once.
type script7 struct {
	sha, source any
}

func newScript7(src string) script7 {
	return script7{sha: redis.NewScript(1, src).Hash(), source: src}
}

// The scripts by algorithm (protocol.Algorithm indexes them), and the
// multi-key one.
var (
	scripts7 = [...]script7{
		1: newScript7(FixWindowLua),
		2: newScript7(SlidingWindowLua),
		3: newScript7(LeakyBucketLua),
		4: newScript7(TokenBucketLua),
	}
	multi7 = newScript7(Multi7Lua)
)
