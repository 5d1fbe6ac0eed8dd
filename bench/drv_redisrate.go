package main

import (
	"context"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// redisRateDriver runs go-redis/redis_rate v10: GCRA in one Lua script
// (EVALSHA) per Allow, over a go-redis v9 connection pool.
var redisRateDriver = driver{
	name:     "go-redis/redis_rate v10",
	key:      "redis_rate",
	modules:  []string{"github.com/go-redis/redis_rate/v10", "github.com/redis/go-redis/v9"},
	work:     "its GCRA Lua script by EVALSHA, one round trip per check on a pooled connection",
	peer:     true,
	api:      "redis_rate.NewLimiter(rdb).Allow(ctx, key, redis_rate.PerMinute(1e9))",
	settings: "go-redis v9 redis.NewClient(&redis.Options{Addr, PoolSize: max(callers, 10*GOMAXPROCS)}), other options default",
	open: func(ctx context.Context, env cellEnv) (checker, error) {
		rdb := redis.NewClient(goRedisOptions(env))
		if err := rdb.Ping(ctx).Err(); err != nil {
			rdb.Close()
			return nil, err
		}
		return &redisRateChecker{rdb: rdb, lim: redis_rate.NewLimiter(rdb), keys: prefixed(env.prefix)}, nil
	},
}

// goRedisOptions are the go-redis client settings of the go-redis based
// drivers: the defaults, with a pool no smaller than the number of callers.
func goRedisOptions(env cellEnv) *redis.Options {
	return &redis.Options{Addr: env.addr, PoolSize: max(env.callers, 10*gomaxprocs())}
}

// prefixed returns prefix+id for every id, for the libraries that take the
// whole key per call, so that building the key costs nothing per check.
func prefixed(prefix string) []string {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = prefix + id
	}
	return keys
}

type redisRateChecker struct {
	rdb  *redis.Client
	lim  *redis_rate.Limiter
	keys []string
}

func (c *redisRateChecker) check(ctx context.Context, id int) (bool, error) {
	r, err := c.lim.Allow(ctx, c.keys[id], redis_rate.PerMinute(limit))
	if err != nil {
		return false, err
	}
	return r.Allowed > 0, nil
}

func (c *redisRateChecker) close() error { return c.rdb.Close() }
