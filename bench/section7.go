package main

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"time"

	"github.com/hammer-go/hammerredis/protocol"
)

// section7 is the name of the Hammer 7 section in cells and in -section.
const section7 = "h7"

// algo7 is what the ceiling of one Hammer 7 algorithm runs: its script,
// with the arguments hammerredis sends for a check of the section.
type algo7 struct {
	algo protocol.Algorithm
	src  string
	// requests is redis-benchmark's -n: about 2.5 s at this machine's
	// figures.
	requests int
	// args returns the script's arguments after its key, at nowMs.
	args func(nowMs int64) []string
}

var (
	limitArg7 = strconv.Itoa(limit)
	rateArg7  = strconv.Itoa(rate7)
)

// algos7 are the four algorithms, in report order; the clocked scripts'
// last argument "" makes them read Redis TIME, as hammerredis's does.
var algos7 = []algo7{
	{algo: protocol.FixWindow, src: fixWindowLua, requests: 500_000, args: func(nowMs int64) []string {
		return []string{"hit", "1", strconv.FormatInt(ceilingWindowEnd(nowMs), 10)}
	}},
	{algo: protocol.SlidingWindow, src: slidingWindowLua, requests: 250_000, args: func(int64) []string {
		return []string{"hit", strconv.FormatInt(windowMs/1000, 10), limitArg7, "1", ""}
	}},
	{algo: protocol.LeakyBucket, src: leakyBucketLua, requests: 200_000, args: func(int64) []string {
		return []string{"hit", limitArg7, rateArg7, "1", ""}
	}},
	{algo: protocol.TokenBucket, src: tokenBucketLua, requests: 200_000, args: func(int64) []string {
		return []string{"hit", limitArg7, rateArg7, "1", ""}
	}},
}

// algoOf returns algorithm a's ceiling settings.
func algoOf(a protocol.Algorithm) algo7 {
	for _, x := range algos7 {
		if x.algo == a {
			return x
		}
	}
	panic(fmt.Sprintf("no ceiling settings for %v", a))
}

// ceilingWindowEnd is fix_window's window end for a redis-benchmark run
// starting at nowMs: the current 1-minute window's, or the next one's when
// fewer than 15 s are left, so that the end does not pass during the run
// (PEXPIREAT would then delete every key, other work than a check's).
func ceilingWindowEnd(nowMs int64) int64 {
	end := windowEnd(nowMs)
	if end-nowMs < 15_000 {
		end += windowMs
	}
	return end
}

// command7 is redis-benchmark's command for algorithm a's script sha:
// EVALSHA on random keys.
func command7(a algo7, sha string, nowMs int64) []string {
	return append([]string{"EVALSHA", sha, "1", "key:__rand_int__"}, a.args(nowMs)...)
}

// ceilingSpec7 is the ceiling run of each algorithm, as the count_hit
// ceiling's: 50 connections pipelined 64 deep.
var ceilingSpec7 = ceilingRun{label: "50 connections, pipelined 64 deep", ceiling: true, clients: 50, pipeline: 64}

// ceilings7 are one algorithm's ceiling runs: before the cells, and again
// after them.
type ceilings7 struct {
	algo protocol.Algorithm
	runs []ceilingRun
	// err is why the runs are missing or cut short.
	err error
}

// best returns the better pipelined rate, 0 when unknown.
func (c *ceilings7) best() float64 {
	best := 0.0
	for _, r := range c.runs {
		if r.ceiling && r.err == nil {
			best = max(best, r.rps)
		}
	}
	return best
}

// algos returns the algorithms of the hammerredis rows of rows, in order.
func algosOf(rows []row7) []protocol.Algorithm {
	var out []protocol.Algorithm
	for _, r := range rows {
		if !r.peer {
			out = append(out, r.algos...)
		}
	}
	return out
}

// runCeilings7 runs the ceiling of each algorithm of the run, labelled
// label, and adds the runs to the report.
func (r *report) runCeilings7(ctx context.Context, srv *redisServer, label string, progress func(string, ...any)) {
	if r.ceil7 == nil {
		r.ceil7 = map[protocol.Algorithm]*ceilings7{}
	}
	for _, a := range algosOf(r.cfg.rows7) {
		c := r.ceil7[a]
		if c == nil {
			c = &ceilings7{algo: a}
			r.ceil7[a] = c
		}
		if c.err != nil {
			continue
		}
		al := algoOf(a)
		spec := ceilingSpec7
		spec.label, spec.requests = label, al.requests
		now := time.Now().UnixMilli()
		runs, err := runScriptBenchmarks(ctx, srv, al.src, func(sha string) []string { return command7(al, sha, now) },
			[]ceilingRun{spec}, r.cfg.ceilingScale)
		c.runs, c.err = append(c.runs, runs...), err
		for _, run := range runs {
			progress("bench: redis-benchmark %-14s %-24s %10s req/s  %v", a, run.label, fmtRate(run.rps), errOrEmpty(run.err))
		}
		if err != nil {
			progress("bench: redis-benchmark %s: %v", a, err)
		}
	}
}

// measure7 runs the Hammer 7 section: each algorithm's ceiling, the cells
// (workload, callers, row), and the ceilings again.
func measure7(ctx context.Context, cfg config, srv *redisServer, rep *report, progress func(string, ...any)) error {
	if len(cfg.rows7) == 0 {
		return nil
	}
	progress("bench: Hammer 7 algorithms: %d cells of %v + %v warm-up",
		len(cfg.workloads)*len(cfg.callers7)*len(cfg.rows7), cfg.duration, cfg.warmup)
	if cfg.ceiling {
		rep.runCeilings7(ctx, srv, "before the cells", progress)
	}
	single := singleTarget(srv)
	n, budget := 0, cfg.reruns7
	for _, wl := range cfg.workloads {
		for _, callers := range cfg.callers7 {
			for _, row := range cfg.rows7 {
				n++
				if err := ctx.Err(); err != nil {
					return err
				}
				t0 := time.Now()
				res, err := runQuietCell(ctx, single, cell{driver: row.driver, workload: wl, callers: callers, section: section7},
					fmt.Sprintf("h%d:", n), cfg, &budget, progress)
				if err != nil {
					return fmt.Errorf("Hammer 7, %s, %s, %d callers: %w", wl.name, row.name, callers, err)
				}
				res.took = time.Since(t0)
				rep.results7 = append(rep.results7, res)
				progress("bench: h7 %-6s %3d callers  %-37s %9s/s  p50 %7s  p99 %7s  %5.1f allocs  %3d conns  others %s cores%s",
					wl.name, callers, row.name, fmtRate(res.rate()), fmtDur(res.p50), fmtDur(res.p99), res.allocs, res.conns,
					fmtCores(res.otherCPU), errorNote(res))
				if err := single.flushAll(); err != nil {
					return err
				}
				runtime.GC()
			}
		}
	}
	if cfg.ceiling {
		rep.runCeilings7(ctx, srv, "again, after the cells", progress)
	}
	return nil
}
