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
// key of another type keeps its TTL untouched.
var countHitScript = redis.NewScript(1, CountHitLua)

// CountHitLua is the count_hit script's source, for tools that must do the
// same Redis work as the backend (benchmarks of bare clients).
const CountHitLua = `
local count = redis.call('HINCRBY', KEYS[1], 'count', ARGV[2])
redis.call('HSETNX', KEYS[1], 'created', ARGV[1])
redis.call('HSET', KEYS[1], 'updated', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if count >= 9007199254740992 or count <= -9007199254740992 then
  return redis.call('HMGET', KEYS[1], 'count')[1]
end
return count
`

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
var coalescedScript = redis.NewScript(1, coalescedLua)

const coalescedLua = `
local count = redis.call('HINCRBY', KEYS[1], 'count', ARGV[3])
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
