package main

import (
	"context"

	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"
	sredis "github.com/ulule/limiter/v3/drivers/store/redis"
)

// ululeDriver runs ulule/limiter v3 with its Redis store: INCRBY and PEXPIRE
// in one Lua script (EVALSHA) per Get, over a go-redis v9 connection pool.
var ululeDriver = driver{
	name:     "ulule/limiter v3 (Redis store)",
	key:      "ulule",
	modules:  []string{"github.com/ulule/limiter/v3", "github.com/redis/go-redis/v9"},
	work:     "its INCRBY + PEXPIRE/PTTL Lua script by EVALSHA, one round trip per check on a pooled connection",
	peer:     true,
	api:      "limiter.New(store, limiter.Rate{Period: time.Minute, Limit: 1e9}).Get(ctx, id)",
	settings: "drivers/store/redis.NewStoreWithOptions(rdb, StoreOptions{Prefix: cell prefix}); rdb as for redis_rate",
	open: func(ctx context.Context, env cellEnv) (checker, error) {
		rdb := redis.NewClient(goRedisOptions(env))
		if err := rdb.Ping(ctx).Err(); err != nil {
			rdb.Close()
			return nil, err
		}
		store, err := sredis.NewStoreWithOptions(rdb, limiter.StoreOptions{Prefix: env.prefix})
		if err != nil {
			rdb.Close()
			return nil, err
		}
		lim := limiter.New(store, limiter.Rate{Period: window, Limit: limit})
		return &ululeChecker{rdb: rdb, lim: lim}, nil
	},
}

type ululeChecker struct {
	rdb *redis.Client
	lim *limiter.Limiter
}

func (c *ululeChecker) check(ctx context.Context, id int) (bool, error) {
	r, err := c.lim.Get(ctx, ids[id])
	if err != nil {
		return false, err
	}
	return !r.Reached, nil
}

func (c *ululeChecker) close() error { return c.rdb.Close() }
