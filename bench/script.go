package main

import (
	"strconv"
	"time"

	"github.com/hammer-go/hammerredis"
)

// countHitLua is the count_hit script of hammerredis. The redigo and rueidis
// drivers and the redis-benchmark ceiling run it, so every one of them does
// the Redis work of one hammerredis check.
//
//	KEYS[1] the bucket key, <prefix><id>:<bucket>
//	ARGV[1] now, ms since the Unix epoch
//	ARGV[2] the increment (1)
//	ARGV[3] the TTL in seconds (61 for a 60 s window)
//
// It returns the bucket's new count.
const countHitLua = hammerredis.CountHitLua

// Hammer 7's scripts, one per algorithm (hammerredis.FixWindowLua, ...).
// The rueidis fixed-window row runs fixWindowLua, and each algorithm's
// ceiling runs its script, so that they do the Redis work of a hammerredis
// Hammer 7 check.
//
//	fix_window:  KEYS[1] the key; ARGV "hit", the cost, the window's end (ms)
//	the others:  KEYS[1] the key; ARGV "hit", then sliding_window: the window
//	             in whole seconds, the limit; buckets: the capacity, the rate
//	             per second; then the cost and the clock ("": Redis TIME)
const (
	fixWindowLua     = hammerredis.FixWindowLua
	slidingWindowLua = hammerredis.SlidingWindowLua
	leakyBucketLua   = hammerredis.LeakyBucketLua
	tokenBucketLua   = hammerredis.TokenBucketLua
)

// The decision every driver makes: at most limit hits per window, a limit
// so high that every check is allowed, so that what is measured is the
// Redis work of one check, not the cost of a denial.
const (
	window    = time.Minute
	windowMs  = int64(window / time.Millisecond)
	limit     = 1_000_000_000
	ttlSecond = 61 // round(windowMs/1000 + 1), as hammerredis sets it
)

// bucketKey builds the fixed-window key the hand-written drivers (redigo,
// rueidis) count in: the layout hammerredis uses, <prefix><id>:<bucket>. The
// string it returns is the one allocation such a driver cannot avoid.
func bucketKey(prefix, id string, nowMs int64) string {
	var buf [20]byte
	b := strconv.AppendInt(buf[:0], nowMs/windowMs, 10)
	return prefix + id + ":" + string(b)
}
