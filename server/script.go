package server

import "github.com/gomodule/redigo/redis"

// countHitScript is count_hit as one atomic script: the same commands, in the
// same order, as the Elixir library's MULTI/EXEC, so the hash is byte for
// byte the same (fields count, created, updated, in that order).
//
//	KEYS[1] the bucket key
//	ARGV[1] now, ms since the Unix epoch
//	ARGV[2] the increment
//	ARGV[3] the TTL in seconds
//
// It returns the new count. Lua holds numbers as doubles, exact only up to
// 2^53, so a count that large is read back as the string Redis stores.
// Unlike MULTI/EXEC, an error in HINCRBY
// (WRONGTYPE, overflow) aborts the script before anything is written, so a
// key of another type keeps its TTL untouched; so does a TTL out of range,
// checked first. An error after HINCRBY (a user who may not run HSET or
// EXPIRE) comes after the count was written: the call fails with ErrRedis,
// and is never sent again.
var countHitScript = redis.NewScript(1, CountHitLua)

// CountHitLua is the count_hit script's source, for tools that must do the
// same Redis work as the backend (benchmarks of bare clients).
const CountHitLua = `
local ttl = tonumber(ARGV[3])
if not ttl or ttl < 1 or ttl > 3155760001 then
  return redis.error_reply('ERR count_hit: invalid TTL ' .. ARGV[3])
end
local count = redis.call('HINCRBY', KEYS[1], 'count', ARGV[2])
redis.call('HSETNX', KEYS[1], 'created', ARGV[1])
redis.call('HSET', KEYS[1], 'updated', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if count >= 9007199254740992 or count <= -9007199254740992 then
  return redis.call('HMGET', KEYS[1], 'count')[1]
end
return count
`

// maxTTL is the largest TTL the scripts accept, written in them as a
// literal: protocol.ExpirySeconds(protocol.MaxExpiryMs). A TTL that Redis
// would refuse is refused before anything is written.
const maxTTL = 3155760001

// The script's EVALSHA and EVAL arguments, boxed once.
var (
	countHitSHA    any = countHitScript.Hash()
	countHitSource any = CountHitLua
)

// coalescedScript is count_hit for several hits on one bucket at once (see
// coalesce.go). It writes what the hits would have written one by one.
//
//	KEYS[1] the bucket key
//	ARGV[1] the first hit's now (created, if the bucket is new)
//	ARGV[2] the last hit's now (updated)
//	ARGV[3] the sum of the increments
//	ARGV[4] the TTL in seconds
//
// Whatever can make it fail is checked before its first write: the TTL, the
// user's right to run each command (Redis 7's redis.acl_check_cmd; older
// servers skip it), then the key's type and the sum's range by HINCRBY
// itself, the first write, run with pcall. Such a refusal is returned as an error marked with
// notRunCode: nothing was written, so the server runs the group's hits one by
// one, each with its own outcome. Any other error came after the sum was
// counted, and the hits are never sent again.
var coalescedScript = redis.NewScript(1, coalescedLua)

// notRunCode starts the error of a coalesced script that wrote nothing.
const notRunCode = "NOTRUN"

const coalescedLua = `
local function refuse(why)
  return redis.error_reply('NOTRUN ' .. why)
end
local ttl = tonumber(ARGV[4])
if not ttl or ttl < 1 or ttl > 3155760001 then
  return refuse('ERR count_hit: invalid TTL ' .. ARGV[4])
end
if redis.acl_check_cmd then
  if not (redis.acl_check_cmd('HINCRBY', KEYS[1], 'count', ARGV[3])
      and redis.acl_check_cmd('HSETNX', KEYS[1], 'created', ARGV[1])
      and redis.acl_check_cmd('HSET', KEYS[1], 'updated', ARGV[2])
      and redis.acl_check_cmd('EXPIRE', KEYS[1], ARGV[4])) then
    return refuse('NOPERM this user has no permissions to run one of the commands of count_hit')
  end
end
local count = redis.pcall('HINCRBY', KEYS[1], 'count', ARGV[3])
if type(count) == 'table' and count['err'] then
  return refuse(count['err'])
end
redis.call('HSETNX', KEYS[1], 'created', ARGV[1])
redis.call('HSET', KEYS[1], 'updated', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if count >= 9007199254740992 or count <= -9007199254740992 then
  return redis.call('HMGET', KEYS[1], 'count')[1]
end
return count
`

var (
	coalescedSHA    any = coalescedScript.Hash()
	coalescedSource any = coalescedLua
)

// multiKeyScript is count_hit for several buckets at once: the groups of a
// flight on distinct keys (each one hit, or hits coalesced), so that Redis
// runs one script for many checks (multi.go). It runs only on a single
// server: on a Redis Cluster the keys of one script must share a slot.
//
//	KEYS[i]      the bucket keys
//	ARGV[1]      the TTL in seconds
//	ARGV[3i-1]   key i's first hit's now (created, if the bucket is new)
//	ARGV[3i]     key i's last hit's now (updated)
//	ARGV[3i+1]   key i's summed increment
//
// It returns one element per key: the count, or an error. An error marked
// with notRunCode wrote nothing for its key (HINCRBY refused it: a key of
// another type, an overflow, a key the user may not write); any other error
// came after the count was written. One key's error does not stop the
// others. A TTL out of range refuses the whole run before anything is
// written (notRunCode).
var multiKeyScript = redis.NewScript(-1, MultiKeyLua)

// MultiKeyLua is the multi-key script's source, for tools that must do the
// same Redis work as the backend (benchmarks).
const MultiKeyLua = `
local ttl = tonumber(ARGV[1])
if not ttl or ttl < 1 or ttl > 3155760001 then
  return redis.error_reply('NOTRUN ERR count_hit: invalid TTL ' .. ARGV[1])
end
local out = {}
for i = 1, #KEYS do
  local k, j = KEYS[i], 3 * i - 1
  local count = redis.pcall('HINCRBY', k, 'count', ARGV[j + 2])
  if type(count) == 'table' then
    out[i] = {err = 'NOTRUN ' .. count['err']}
  else
    local e = redis.pcall('HSETNX', k, 'created', ARGV[j])
    if type(e) ~= 'table' then e = redis.pcall('HSET', k, 'updated', ARGV[j + 1]) end
    if type(e) ~= 'table' then e = redis.pcall('EXPIRE', k, ARGV[1]) end
    if type(e) == 'table' then
      out[i] = e
    elseif count >= 9007199254740992 or count <= -9007199254740992 then
      out[i] = redis.call('HMGET', k, 'count')[1]
    else
      out[i] = count
    end
  end
end
return out
`

var (
	multiKeySHA    any = multiKeyScript.Hash()
	multiKeySource any = MultiKeyLua
)

// maxMultiKeys bounds the keys of one multi-key script run, so that one run
// keeps Redis from other clients no longer than a few dozen checks do.
const maxMultiKeys = 64
