package main

import (
	"context"
	"fmt"
	"strings"
)

// A checker makes rate-limit decisions with one library. One checker serves
// every caller of a cell, concurrently, as one limiter serves a whole
// service.
type checker interface {
	// check makes one decision for ids[id] and reports whether it was
	// allowed.
	check(ctx context.Context, id int) (allowed bool, err error)
	// close releases the checker's connections.
	close() error
}

// cellEnv is what a driver needs to open a checker for one cell.
type cellEnv struct {
	// addr is the private redis-server, "127.0.0.1:port".
	addr string
	// seeds are the private cluster's nodes, for the cluster row; nil for
	// the others.
	seeds []string
	// prefix starts every key of the cell, fresh for each cell.
	prefix string
	// callers is how many goroutines will call the checker at once.
	callers int
}

// A driver is one row of the report: a library, or one configuration of
// hammerredis.
type driver struct {
	// name is the row's label.
	name string
	// key is the name -libs selects it by.
	key string
	// peer is true for the other libraries, false for hammerredis.
	peer bool
	// api is the call made per check, for the report.
	api string
	// work is the Redis work of one check, for the report.
	work string
	// settings are the client settings, for the report.
	settings string
	// modules are the Go modules the row runs, for their versions.
	modules []string
	// pool and pipeline are a hammerredis row's PoolSize and MaxPipeline
	// (0: default), so that the report can tell whether they took effect.
	pool, pipeline int
	// cluster is true for a row that runs against the private cluster
	// (clusterMasters masters) instead of the single server.
	cluster bool
	// open returns a ready checker: connected, scripts loaded if the
	// library does that up front.
	open func(ctx context.Context, env cellEnv) (checker, error)
}

// drivers lists every row, hammerredis first.
var drivers = []driver{
	hammerDriver("hammer-pool1", "hammerredis pool 1, pipelined", 1, 0),
	hammerDriver("hammer-nopipe", "hammerredis pool 1, no pipelining", 1, 1),
	hammerDriver("hammer-pool4", fmt.Sprintf("hammerredis pool %d, pipelined", hammerPoolN), hammerPoolN, 0),
	hammerClusterDriver,
	redisRateDriver,
	ululeDriver,
	rueidisDriver,
	redigoDriver,
}

// pickFrom returns the rows of list whose driver's key or name contains one
// of the comma-separated words of filter; all of them for "" or "all".
func pickFrom[T any](filter string, list []T, driverOf func(T) driver) []T {
	if filter == "" || filter == "all" {
		return list
	}
	var out []T
	for _, row := range list {
		d := driverOf(row)
		for _, w := range strings.Split(filter, ",") {
			w = strings.TrimSpace(w)
			if w != "" && (strings.Contains(d.key, w) || strings.Contains(d.name, w)) {
				out = append(out, row)
				break
			}
		}
	}
	return out
}
