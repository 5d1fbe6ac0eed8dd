package main

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// rueidisDriver runs the count_hit script through rueidis, whose client
// pipelines concurrent commands automatically over a few connections. It
// stands in for rueidislimiter, which the Go module proxy does not serve
// (see the report's notes).
var rueidisDriver = driver{
	name:     "rueidis, same Lua script",
	key:      "rueidis",
	modules:  []string{"github.com/redis/rueidis"},
	work:     "count_hit Lua script by EVALSHA; concurrent calls auto-pipelined",
	peer:     true,
	api:      "rueidis.NewLuaScript(countHitLua).Exec(ctx, client, []string{key}, []string{now, \"1\", \"61\"}).AsInt64()",
	settings: "rueidis.NewClient(ClientOption{InitAddress: addr}), other options default: auto-pipelining over 2^PipelineMultiplex connections, PipelineMultiplex defaulting to log2(GOMAXPROCS) capped at 2",
	open: func(ctx context.Context, env cellEnv) (checker, error) {
		client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{env.addr}})
		if err != nil {
			return nil, err
		}
		return &rueidisChecker{client: client, script: rueidis.NewLuaScript(countHitLua), prefix: env.prefix}, nil
	},
}

type rueidisChecker struct {
	client rueidis.Client
	script *rueidis.Lua
	prefix string
}

var (
	incrementArg = strconv.Itoa(1)
	ttlArg       = strconv.Itoa(ttlSecond)
)

func (c *rueidisChecker) check(ctx context.Context, id int) (bool, error) {
	now := time.Now().UnixMilli()
	key := bucketKey(c.prefix, ids[id], now)
	n, err := c.script.Exec(ctx, c.client, []string{key},
		[]string{strconv.FormatInt(now, 10), incrementArg, ttlArg}).AsInt64()
	return n <= limit, err
}

func (c *rueidisChecker) close() error {
	c.client.Close()
	return nil
}
