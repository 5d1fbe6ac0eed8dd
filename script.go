package hammerredis

import "github.com/hammer-go/hammerredis/server"

// CountHitLua is the Lua source of the count_hit script the backend runs to
// count a hit (by EVALSHA, or EVAL when Redis lacks it; hits on one bucket
// queued together run it once, with their summed increment). It is exported
// for tools that must do the same Redis work as the backend, such as
// benchmarks of bare Redis clients.
//
//	KEYS[1] the bucket key, <prefix><id>:<bucket>
//	ARGV[1] now, ms since the Unix epoch
//	ARGV[2] the increment
//	ARGV[3] the TTL in seconds, protocol.ExpirySeconds of the expiry
//
// It returns the bucket's new count, as a string past 2^53.
const CountHitLua = server.CountHitLua

// MultiKeyCountHitLua is the Lua source of the multi-key count_hit script:
// on a single server, hits on distinct buckets queued together run as one
// run of it, each bucket written as its own count_hit would write it. It is
// exported, like CountHitLua, for tools that measure the Redis work of a
// check.
//
//	KEYS[i]      the bucket keys
//	ARGV[1]      the TTL in seconds
//	ARGV[3i-1]   key i's first hit's now (created, if the bucket is new)
//	ARGV[3i]     key i's last hit's now (updated)
//	ARGV[3i+1]   key i's summed increment
//
// It returns one element per key: the bucket's new count, or an error.
const MultiKeyCountHitLua = server.MultiKeyLua

// The Lua sources of Hammer 7's scripts, one per algorithm (package
// hammer7), exported like CountHitLua for tools that must do the same Redis
// work as the backend. Each takes one key and, first, the operation ("hit",
// and "inc", "set" or "get" where the algorithm has them); the argument
// lists are in server/script7.go.
const (
	FixWindowLua     = server.FixWindowLua
	SlidingWindowLua = server.SlidingWindowLua
	LeakyBucketLua   = server.LeakyBucketLua
	TokenBucketLua   = server.TokenBucketLua
)
