package main

import (
	"context"
	"time"

	"github.com/gomodule/redigo/redis"
)

// redigoDriver runs the count_hit script through a redigo Pool: one
// connection per caller, one round trip (EVALSHA) per check, no pipelining.
// At one caller it is the bare redigo round trip that hammerredis's latency
// is held against.
var redigoDriver = driver{
	name:     "redigo Pool, same Lua script",
	key:      "redigo",
	modules:  []string{"github.com/gomodule/redigo"},
	work:     "count_hit Lua script by EVALSHA, one round trip per check on a pooled connection",
	peer:     true,
	api:      "pool.Get(); redis.NewScript(1, countHitLua).Do(conn, key, now, 1, 61); conn.Close()",
	settings: "redis.Pool{MaxIdle: callers, MaxActive: callers, Wait: true, Dial: redis.Dial(tcp, addr)}",
	open: func(ctx context.Context, env cellEnv) (checker, error) {
		pool := &redis.Pool{
			MaxIdle:   env.callers,
			MaxActive: env.callers,
			Wait:      true,
			DialContext: func(ctx context.Context) (redis.Conn, error) {
				return redis.DialContext(ctx, "tcp", env.addr)
			},
		}
		c := &redigoChecker{pool: pool, script: redis.NewScript(1, countHitLua), prefix: env.prefix}
		conn, err := pool.GetContext(ctx)
		if err != nil {
			pool.Close()
			return nil, err
		}
		defer conn.Close()
		if err := c.script.Load(conn); err != nil {
			pool.Close()
			return nil, err
		}
		return c, nil
	},
}

type redigoChecker struct {
	pool   *redis.Pool
	script *redis.Script
	prefix string
}

func (c *redigoChecker) check(ctx context.Context, id int) (bool, error) {
	conn := c.pool.Get()
	defer conn.Close()
	now := time.Now().UnixMilli()
	n, err := redis.Int64(c.script.Do(conn, bucketKey(c.prefix, ids[id], now), now, 1, ttlSecond))
	return n <= limit, err
}

func (c *redigoChecker) close() error { return c.pool.Close() }
