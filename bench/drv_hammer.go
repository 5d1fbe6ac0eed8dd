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
	work := "count_hit Lua script (HINCRBY, HSETNX, HSET, EXPIRE) by EVALSHA; calls are written as they come while few are in the air, " +
		"else the calls queued meanwhile share one write; hits queued together share script runs (one bucket's hits summed, " +
		"up to 64 buckets in one multi-key run)"
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
			return openHammer(ctx, hammerredis.Options{
				ExpiryMs:    windowMs,
				RedisURL:    "redis://" + env.addr,
				KeyPrefix:   env.prefix,
				PoolSize:    pool,
				MaxPipeline: pipeline,
			})
		},
	}
}

// hammerClusterDriver runs hammerredis with default options against the
// private cluster of clusterMasters masters, which the harness starts when
// this row first runs.
var hammerClusterDriver = driver{
	name:    fmt.Sprintf("hammerredis cluster, %d masters", clusterMasters),
	key:     "hammer-cluster",
	modules: []string{"github.com/hammer-go/hammerredis"},
	work: fmt.Sprintf("count_hit Lua script by EVALSHA on the master of the key's slot, one pipelining connection per "+
		"master (%d), each with one replica; all nodes on this machine", clusterMasters),
	cluster:  true,
	api:      "hammer.New(backend).CheckRate(ctx, id, time.Minute, 1e9)",
	settings: "Options{ExpiryMs: 60000, Cluster: &ClusterConfig{Addrs: the 6 nodes}}, other fields default",
	open: func(ctx context.Context, env cellEnv) (checker, error) {
		if len(env.seeds) == 0 {
			return nil, fmt.Errorf("no cluster to run against")
		}
		return openHammer(ctx, hammerredis.Options{
			ExpiryMs:  windowMs,
			Cluster:   &hammerredis.ClusterConfig{Addrs: env.seeds},
			KeyPrefix: env.prefix,
			// Never the system Redis, should the cluster setting be ignored.
			RedisURL: "redis://127.0.0.1:1",
		})
	},
}

// openHammer starts a backend with opts and waits until it is connected.
func openHammer(ctx context.Context, opts hammerredis.Options) (checker, error) {
	b, err := startBackend(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &hammerChecker{b: b, lim: hammer.New(b)}, nil
}

// startBackend starts a backend with opts (and a warning-level logger) and
// waits until it is connected.
func startBackend(ctx context.Context, opts hammerredis.Options) (*hammerredis.Backend, error) {
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := hammerredis.Start(opts)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.WaitConnected(wctx); err != nil {
		hammerredis.Stop(b)
		return nil, fmt.Errorf("waiting for the connection: %w", err)
	}
	return b, nil
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
