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
