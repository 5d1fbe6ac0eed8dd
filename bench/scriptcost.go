package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis"
)

// The script-cost measurement (-scriptcost): how much Redis CPU one check
// costs when a flight of n checks on distinct keys goes out as n pipelined
// count_hit runs, and when it goes out as one multi-key run. Redis is kept
// saturated by scriptCostConns connections, each sending flight after
// flight; Redis's own CPU comes from INFO cpu.
const (
	scriptCostConns  = 4
	scriptCostChecks = 100_000 // per connection and row
)

var scriptCostBatches = []int{1, 4, 8, 16, 32, 64, 128}

// runScriptCost measures on srv and writes a Markdown table to w.
func runScriptCost(ctx context.Context, srv *redisServer, w io.Writer) error {
	single := redis.NewScript(1, countHitLua)
	multi := redis.NewScript(-1, hammerredis.MultiKeyCountHitLua)
	for _, s := range []*redis.Script{single, multi} {
		if err := s.Load(srv.admin); err != nil {
			return err
		}
	}
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = "key:" + strconv.Itoa(i)
	}
	now := time.Now().UnixMilli()
	fmt.Fprintf(w, "| checks per flight | count_hit runs: checks/s | Redis CPU per check | multi-key run: checks/s | Redis CPU per check | multi-key / count_hit CPU |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|\n")
	for _, batch := range scriptCostBatches {
		var rate, cpu [2]float64
		for m, useMulti := range []bool{false, true} {
			if err := srv.flushAll(); err != nil {
				return err
			}
			cpu0, err := srv.cpuSeconds()
			if err != nil {
				return err
			}
			start := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, scriptCostConns)
			for g := range scriptCostConns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- scriptCostConn(ctx, srv.addr, single, multi, useMulti, batch, keys, g*7919, now)
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					return err
				}
			}
			elapsed := time.Since(start)
			cpu1, err := srv.cpuSeconds()
			if err != nil {
				return err
			}
			n := float64(scriptCostConns * (scriptCostChecks / batch * batch))
			rate[m], cpu[m] = n/elapsed.Seconds(), (cpu1-cpu0)/n
		}
		fmt.Fprintf(w, "| %d | %s | %.1f µs | %s | %.1f µs | %.2f |\n", batch, fmtRate(rate[0]), cpu[0]*1e6,
			fmtRate(rate[1]), cpu[1]*1e6, cpu[1]/cpu[0])
	}
	return nil
}

// scriptCostConn sends one connection's flights of batch checks on
// distinct keys, from key number first on.
func scriptCostConn(ctx context.Context, addr string, single, multi *redis.Script, useMulti bool, batch int,
	keys []string, first int, now int64) error {
	c, err := redis.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	args := make([]any, 0, 2+4*batch)
	next := first
	for range scriptCostChecks / batch {
		if !useMulti {
			for i := range batch {
				if err := single.SendHash(c, keys[(next+i*13)%len(keys)], now, 1, ttlSecond); err != nil {
					return err
				}
			}
			if err := c.Flush(); err != nil {
				return err
			}
			for range batch {
				if _, err := c.Receive(); err != nil {
					return err
				}
			}
		} else {
			args = append(args[:0], batch)
			for i := range batch {
				args = append(args, keys[(next+i*13)%len(keys)])
			}
			args = append(args, ttlSecond)
			for range batch {
				args = append(args, now, now, 1)
			}
			reply, err := redis.Values(multi.Do(c, args...))
			if err != nil {
				return err
			}
			if len(reply) != batch {
				return fmt.Errorf("the multi-key script replied %d elements, want %d", len(reply), batch)
			}
		}
		next += batch * 13
	}
	return nil
}

// cpuSeconds returns the CPU Redis has used, user and system, from INFO cpu.
func (s *redisServer) cpuSeconds() (float64, error) {
	f, err := s.info("cpu")
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, k := range []string{"used_cpu_user", "used_cpu_sys"} {
		v, err := strconv.ParseFloat(strings.TrimSpace(f[k]), 64)
		if err != nil {
			return 0, fmt.Errorf("INFO cpu %s: %w", k, err)
		}
		sum += v
	}
	return sum, nil
}
