package main

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/hammer7"
	"github.com/hammer-go/hammerredis/protocol"
	"github.com/redis/rueidis"
)

// The numbers of the Hammer 7 rows, so large that every check is allowed,
// as in the other cells: what is measured is the Redis work of a check.
// Windows last window (a minute) and allow limit; buckets hold limit and
// leak or refill rate7 per second.
const rate7 = 1_000_000_000

// row7 is one row of the Hammer 7 section: a hammerredis algorithm, or a
// peer that implements the idea of one or more of them.
type row7 struct {
	driver
	// algos is a hammerredis row's algorithm; for a peer, the algorithms it
	// is compared with.
	algos []protocol.Algorithm
	// kind names the row's algorithm, for the report.
	kind string
}

// of reports whether the row is of algorithm a's kind.
func (r row7) of(a protocol.Algorithm) bool {
	for _, b := range r.algos {
		if b == a {
			return true
		}
	}
	return false
}

// rows7 lists the Hammer 7 section's rows, in report and run order: each
// algorithm's hammerredis row followed by its peers.
var rows7 = []row7{
	hammer7Row(protocol.FixWindow, "h7-fix", "1-minute fixed window, limit 1e9",
		"hammer7.FixWindow{Prefix, Window: time.Minute, Limit: 1e9}",
		"fix_window Lua script (INCRBY, PEXPIREAT NX) by EVALSHA; pipelined as count_hit is; hits on one key queued together share one script run"),
	{driver: ululeDriver, algos: []protocol.Algorithm{protocol.FixWindow}, kind: "fixed window"},
	{driver: rueidisFixDriver, algos: []protocol.Algorithm{protocol.FixWindow}, kind: "fixed window"},
	hammer7Row(protocol.SlidingWindow, "h7-sliding", "60 s sliding window, limit 1e9",
		"hammer7.SlidingWindow{Prefix, Window: time.Minute, Limit: 1e9}",
		"sliding_window Lua script (TIME, ZREMRANGEBYSCORE, ZCARD, ZADD NX, EXPIRE) by EVALSHA; pipelined, one script run per hit"),
	hammer7Row(protocol.LeakyBucket, "h7-leaky", "capacity 1e9, leaking 1e9/s",
		"hammer7.LeakyBucket{Prefix, LeakPerSecond: 1e9, Capacity: 1e9}",
		"leaky_bucket Lua script (TIME, HMGET, HSET, EXPIRE) by EVALSHA; pipelined, one script run per hit"),
	hammer7Row(protocol.TokenBucket, "h7-token", "capacity 1e9, refilling 1e9/s",
		"hammer7.TokenBucket{Prefix, RefillPerSecond: 1e9, Capacity: 1e9}",
		"token_bucket Lua script (TIME, HMGET, HSET, EXPIRE) by EVALSHA; pipelined, one script run per hit"),
	{driver: redisRateDriver, algos: []protocol.Algorithm{protocol.LeakyBucket, protocol.TokenBucket},
		kind: "GCRA (a leaky bucket as a meter)"},
}

// policy7 returns the policy of algorithm a's hammerredis row, its keys
// starting with prefix.
func policy7(a protocol.Algorithm, prefix string) hammer7.Policy {
	switch a {
	case protocol.FixWindow:
		return hammer7.FixWindow{Prefix: prefix, Window: window, Limit: limit}
	case protocol.SlidingWindow:
		return hammer7.SlidingWindow{Prefix: prefix, Window: window, Limit: limit}
	case protocol.LeakyBucket:
		return hammer7.LeakyBucket{Prefix: prefix, LeakPerSecond: rate7, Capacity: limit}
	default:
		return hammer7.TokenBucket{Prefix: prefix, RefillPerSecond: rate7, Capacity: limit}
	}
}

// hammer7Row runs algorithm a through the user-level API,
// hammer7.Limiter.Hit, on a backend with default settings (pool 1,
// pipelined).
func hammer7Row(a protocol.Algorithm, key, kind, policy, work string) row7 {
	return row7{
		driver: driver{
			name:     "hammerredis " + a.String(),
			key:      key,
			modules:  []string{"github.com/hammer-go/hammerredis"},
			work:     work,
			pool:     1,
			api:      "hammer7.New(backend, " + policy + ").Hit(ctx, id)",
			settings: "Options{ExpiryMs: 60000, PoolSize: 1}, other fields default; the policy's Prefix is the cell's prefix",
			open: func(ctx context.Context, env cellEnv) (checker, error) {
				b, err := startBackend(ctx, hammerredis.Options{
					ExpiryMs: windowMs,
					RedisURL: "redis://" + env.addr,
					PoolSize: 1,
				})
				if err != nil {
					return nil, err
				}
				// Hammer 7 puts ":" after the prefix itself.
				lim, err := hammer7.New(b, policy7(a, strings.TrimSuffix(env.prefix, ":")))
				if err != nil {
					hammerredis.Stop(b)
					return nil, err
				}
				return &hammer7Checker{b: b, lim: lim}, nil
			},
		},
		algos: []protocol.Algorithm{a},
		kind:  kind,
	}
}

type hammer7Checker struct {
	b   *hammerredis.Backend
	lim *hammer7.Limiter
}

func (c *hammer7Checker) check(ctx context.Context, id int) (bool, error) {
	r, err := c.lim.Hit(ctx, ids[id])
	return r.Allowed, err
}

func (c *hammer7Checker) close() error { return hammerredis.Stop(c.b) }

// rueidisFixDriver runs hammerredis's fix_window script through rueidis's
// auto-pipelining client: a fixed window done the way a hand-written
// rueidis limiter would, with the Redis work of hammerredis's fix_window.
var rueidisFixDriver = driver{
	name:     "rueidis fixed window, same Lua script",
	key:      "rueidis-fix",
	modules:  []string{"github.com/redis/rueidis"},
	work:     "fix_window Lua script (INCRBY, PEXPIREAT NX) by EVALSHA on `<prefix><id>:<now/60000>`; concurrent calls auto-pipelined",
	peer:     true,
	api:      "rueidis.NewLuaScript(hammerredis.FixWindowLua).Exec(ctx, client, []string{key}, []string{\"hit\", \"1\", windowEnd}).AsInt64()",
	settings: rueidisDriver.settings,
	open: func(ctx context.Context, env cellEnv) (checker, error) {
		client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{env.addr}})
		if err != nil {
			return nil, err
		}
		return &rueidisFixChecker{client: client, script: rueidis.NewLuaScript(fixWindowLua), prefix: env.prefix}, nil
	},
}

type rueidisFixChecker struct {
	client rueidis.Client
	script *rueidis.Lua
	prefix string
}

func (c *rueidisFixChecker) check(ctx context.Context, id int) (bool, error) {
	now := time.Now().UnixMilli()
	n, err := c.script.Exec(ctx, c.client, []string{bucketKey(c.prefix, ids[id], now)},
		[]string{"hit", incrementArg, strconv.FormatInt(windowEnd(now), 10)}).AsInt64()
	return n <= limit, err
}

func (c *rueidisFixChecker) close() error {
	c.client.Close()
	return nil
}

// windowEnd returns when the 1-minute window of nowMs ends, ms since the
// Unix epoch: fix_window's PEXPIREAT argument.
func windowEnd(nowMs int64) int64 { return (nowMs/windowMs + 1) * windowMs }
