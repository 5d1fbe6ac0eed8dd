package server

// checkLua defines check(), which decides every limit of a protocol.Check,
// by protocol/check.go's rules, with the building blocks of Hammer 7's scripts
// (script7.go) and count_hit's commands (script.go). It works in two
// phases (CheckLua runs it once, MultiCheckLua once per check):
//
//  1. Decide, in order, writing nothing. The first limit on a key reads it
//     into a state (a counter's count, a sliding window's members left, a
//     bucket's hash); every limit then decides on that state and adds its
//     hit to it as pending, as its own call would write it: a Hammer 6 or
//     fix-window hit always (a denied one too), the others only when
//     allowed. So a later limit on one key sees the earlier's hit, and
//     every decision is the one its call would make.
//  2. Write, unless the mode is "all" and a limit that is not shadow
//     denied: each key once, as its calls one by one would have left it
//     (count_hit's fields, in its order, with one HSET of the count, of
//     created when the read found none, and of updated, then EXPIRE;
//     fix()'s INCRBY and PEXPIREAT NX; a sliding window trimmed, then
//     zflush; a bucket's flush).
//
// It runs no command that Hammer 6's and Hammer 7's calls do not run (a
// Hammer 6 count and created are read with HMGET, as get_bucket reads
// them; a fix window's count with GET, as its get does), so a user allowed
// both may run it.
// A read that its call's write would refuse (WRONGTYPE, a counter that is
// not an integer) fails the whole check before anything is written, as do
// a count that would pass 2^53 (beyond it Lua's doubles are not exact) and
// an invalid TTL. An error in the writes (a command the user may not run)
// comes after earlier writes: the check is never sent again.
const checkLua = `
local big = 9007199254740992
-- counter returns the integer v holds (0 for none), or nil and the error
-- that INCRBY or HINCRBY would give: Redis reads base 10 without a sign
-- but '-', spaces or leading zeros.
local function counter(v, bad)
  if not v then return 0 end
  if v ~= '0' and not string.match(v, '^-?[1-9]%d*$') then return nil, bad end
  local n = tonumber(v)
  if n >= big or n <= -big then return nil, 'ERR hammerredis: check: a count past 2^53' end
  return n
end
-- check decides the n limits of one check: their keys KEYS[ko+1..ko+n],
-- limit i's five arguments from ARGV[ao+5i-4]; mode, Now (as the argument
-- came), the TTL and the clock (s, us) as CheckLua takes them. It writes
-- limit i's count and retry ms into out[o+2i-1] and out[o+2i], and returns
-- nothing, or an error reply.
local function check(out, o, ko, n, mode, nowarg, ttl, ao, s, us)
  local all, now, nttl = mode == 'all', tonumber(nowarg), tonumber(ttl)
  if not nttl or nttl < 1 or nttl > 3155760001 then
    return redis.error_reply('ERR check: invalid TTL ' .. ttl)
  end
  local states, keys, charge = {}, {}, true
  for i = 1, n do
    local j, key = ao + 5 * i - 4, KEYS[ko + i]
    local kind, shadow, cost, a, b = ARGV[j], ARGV[j + 1] == '1', tonumber(ARGV[j + 2]), ARGV[j + 3], ARGV[j + 4]
    local st, count, retry = states[key], 0, 0
    if not st then
      if kind == '0' or kind == '1' then
        local c, e, created
        if kind == '0' then
          local v = redis.call('HMGET', key, 'count', 'created')
          c, e = counter(v[1], 'ERR hash value is not an integer')
          created = v[2]
        else
          c, e = counter(redis.call('GET', key), 'ERR value is not an integer or out of range')
        end
        if not c then return redis.error_reply(e) end
        st = {count = c, pending = 0, endms = b, created = created}
      elseif kind == '2' then
        local w = tonumber(b)
        local gone = redis.call('ZCOUNT', key, '-inf', int(s - w))
        st = {count = redis.call('ZCARD', key) - gone, pending = 0, gone = gone, w = w}
      else
        st = load(key)
      end
      st.kind = kind
      states[key] = st
      keys[#keys + 1] = key
    end
    if kind == '0' or kind == '1' then
      st.pending = st.pending + cost
      local limit = tonumber(a)
      count = st.count + st.pending
      if count >= big then return redis.error_reply('ERR hammerredis: check: a count past 2^53') end
      if count <= limit then
        retry = 0
      elseif cost > limit then
        retry = -1
      elseif kind == '0' then
        retry = tonumber(b)
      else
        retry = tonumber(b) - now
      end
    else
      local r
      if kind == '2' then
        r = slide(st, key, 'hit', tonumber(a), cost, st.w, s, us)
      else
        r = bucket(kind == '3', st, 'hit', a, b, cost, s, us)
      end
      if type(r) == 'table' then count, retry = r[1], r[2] else count = r end
    end
    if retry ~= 0 and not shadow then charge = false end
    out[o + 2 * i - 1], out[o + 2 * i] = count, retry
  end
  if all and not charge then return end
  for _, key in ipairs(keys) do
    local st = states[key]
    if st.kind == '0' then
      -- count_hit's HINCRBY, HSETNX created and HSET updated as one
      -- HSET: the count is known, and so is whether created is set.
      local c = int(st.count + st.pending)
      if st.created then
        redis.call('HSET', key, 'count', c, 'updated', nowarg)
      else
        redis.call('HSET', key, 'count', c, 'created', nowarg, 'updated', nowarg)
      end
      redis.call('EXPIRE', key, ttl)
    elseif st.kind == '1' then
      fix(key, 'hit', int(st.pending), st.endms)
    elseif st.kind == '2' then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', int(s - st.w))
      if st.pending > 0 then zflush(key, st, s, us, st.w) end
    elseif st.dirty then
      flush(key, st)
    end
  end
end
`

// CheckLua is the check script's source (checkLua): every limit of a
// protocol.Check decided in one run, for tools that must do the same Redis
// work as the backend. Like Hammer 7's scripts it needs Redis 7.0.
//
//	KEYS[i]          limit i's key: the Hammer 6 layout's bucket key of
//	                 its id at Now/ScaleMs, or its policy's key
//	                 (protocol.Policy.Key); limits may share one
//	ARGV[1]          "all" (AllOrNothing) or "each"
//	ARGV[2]          the clock, as for SlidingWindowLua
//	ARGV[3]          Now, ms since the Unix epoch (a Hammer 6 bucket's
//	                 created and updated)
//	ARGV[4]          the Hammer 6 buckets' TTL in seconds
//	ARGV[5i..5i+4]   limit i: its kind (0: Hammer 6, else its algorithm, 1
//	                 to 4, protocol.Algorithm), "1" when shadow else "0",
//	                 its cost, then two numbers: Hammer 6, the limit and the
//	                 ms to its bucket's end; fix_window, the limit and the
//	                 window's end (ms since the Unix epoch); sliding_window,
//	                 the limit and the window in whole seconds; the
//	                 buckets, the capacity and the rate
//
// It returns one {count, retry ms} per limit, in order: retry 0 when the
// limit allows, -1 when it never can, else the wait (at least 1), as its
// own call would answer (protocol.HitReply).
const CheckLua = guardLua + fixLua + slidingLua + bucketLua + checkLua + `
local s, us = clock(ARGV[2])
local out, replies = {}, {}
local e = check(out, 0, 0, #KEYS, ARGV[1], ARGV[3], ARGV[4], 4, s, us)
if e then return e end
for i = 1, #KEYS do replies[i] = {out[2 * i - 1], out[2 * i]} end
return replies
`

// MultiCheckLua runs several checks at once, in order, each as CheckLua
// would run it alone (check()), so that Redis runs one script for many
// (multi.go): a later check sees the earlier's writes, and one key may come
// back. All of them read the clock once. It runs only on a single server:
// on a Redis Cluster the keys of one script must share a slot.
//
//	KEYS             the checks' keys, in order: each check's as CheckLua
//	                 takes them
//	ARGV[1]          the clock, as for SlidingWindowLua
//	ARGV[2]          the Hammer 6 buckets' TTL in seconds
//	ARGV[3..]        each check in turn: its number of limits n, "all" or
//	                 "each", Now, then its limits' 5n arguments as for
//	                 CheckLua
//
// It returns one flat array, each check's part in turn: its limits'
// count and retry ms, 2n integers (CheckLua's pairs, flattened: Redis
// spends less on one array than on many), or one error, which does not
// stop the others. An error may come after a write (a command the user may
// not run): the check is not run again.
const MultiCheckLua = guardLua + fixLua + slidingLua + bucketLua + checkLua + failedLua + `
local s, us = clock(ARGV[1])
local out, o, ko, ao = {}, 0, 0, 2
while ao < #ARGV do
  local n = tonumber(ARGV[ao + 1])
  local ok, e = pcall(check, out, o, ko, n, ARGV[ao + 2], ARGV[ao + 3], ARGV[2], ao + 3, s, us)
  if ok and not e then
    o = o + 2 * n
  else
    for k = o + 2, o + 2 * n do out[k] = nil end
    o = o + 1
    out[o] = failed(e)
  end
  ko, ao = ko + n, ao + 3 + 5 * n
end
return out
`

// checkScript is the check script, multiCheck the multi-check one, their
// EVALSHA and EVAL first arguments boxed once.
var (
	checkScript = newScript7(CheckLua)
	multiCheck  = newScript7(MultiCheckLua)
)
