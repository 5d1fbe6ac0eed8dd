package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/hammer"
)

// hammerPoolN is the PoolSize of the pooled hammerredis row (Hammer's
// default pool_size).
const hammerPoolN = 4

// hammerDriver runs hammerredis through the user-level API,
// hammer.Limiter.CheckRate, with PoolSize pool and MaxPipeline pipeline
// (0: the default).
func hammerDriver(key, name string, pool, pipeline int) driver {
	pipe := "default (256)"
	work := "count_hit Lua script (HINCRBY, HSETNX, HSET, EXPIRE) by EVALSHA; the calls queued meanwhile share one pipelined write"
	if pipeline != 0 {
		pipe = fmt.Sprint(pipeline)
	}
	if pipeline == 1 {
		work = "count_hit Lua script (HINCRBY, HSETNX, HSET, EXPIRE) by EVALSHA, one round trip per call"
	}
	if pool > 1 {
		work += fmt.Sprintf("; calls spread by id over %d connections", pool)
	}
	return driver{
		name:     name,
		key:      key,
		modules:  []string{"github.com/hammer-go/hammerredis"},
		work:     work,
		pool:     pool,
		pipeline: pipeline,
		api:      "hammer.New(backend).CheckRate(ctx, id, time.Minute, 1e9)",
		settings: fmt.Sprintf("Options{ExpiryMs: 60000, PoolSize: %d, MaxPipeline: %s}, other fields default", pool, pipe),
		open: func(ctx context.Context, env cellEnv) (checker, error) {
			b, err := hammerredis.Start(hammerredis.Options{
				ExpiryMs:    windowMs,
				RedisURL:    "redis://" + env.addr,
				KeyPrefix:   env.prefix,
				PoolSize:    pool,
				MaxPipeline: pipeline,
				Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
			})
			if err != nil {
				return nil, err
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := b.WaitConnected(wctx); err != nil {
				hammerredis.Stop(b)
				return nil, fmt.Errorf("waiting for the connection: %w", err)
			}
			return &hammerChecker{b: b, lim: hammer.New(b)}, nil
		},
	}
}

type hammerChecker struct {
	b   *hammerredis.Backend
	lim *hammer.Limiter
}

func (c *hammerChecker) check(ctx context.Context, id int) (bool, error) {
	r, err := c.lim.CheckRate(ctx, ids[id], window, limit)
	return r.Allowed, err
}

func (c *hammerChecker) close() error { return hammerredis.Stop(c.b) }
