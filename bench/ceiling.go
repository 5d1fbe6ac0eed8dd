package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ceilingRun is one redis-benchmark run of the count_hit script.
type ceilingRun struct {
	// label says what the run shows.
	label string
	// ceiling marks the pipelined runs, whose best is the ceiling.
	ceiling bool
	// clients and pipeline are redis-benchmark's -c and -P.
	clients, pipeline int
	// requests is -n.
	requests int
	// command is the command line, as run.
	command string
	// rps is the requests per second redis-benchmark reported.
	rps float64
	// p50 and p99 are redis-benchmark's latency percentiles of one request
	// (of one pipeline, when pipelined).
	p50, p99 time.Duration
	// err is why the run failed, nil when it did not.
	err error
}

// ceilingSpecs are the runs: the pipelined ceiling, and two unpipelined
// figures for context. Requests are sized for about 2 s each at the
// reference figures of SPEC.md section 7.
var ceilingSpecs = []ceilingRun{
	{label: "ceiling: 50 connections, pipelined 64 deep", ceiling: true, clients: 50, pipeline: 64, requests: 400_000},
	{label: "50 connections, unpipelined", clients: 50, pipeline: 1, requests: 120_000},
	{label: "1 connection, unpipelined", clients: 1, pipeline: 1, requests: 18_000},
}

// runCeilings loads the count_hit script and runs each of specs with
// redis-benchmark, EVALSHA on random keys (key:__rand_int__, -r 100000),
// requests scaled by scale.
func runCeilings(ctx context.Context, srv *redisServer, specs []ceilingRun, scale float64) ([]ceilingRun, error) {
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	return runScriptBenchmarks(ctx, srv, countHitLua, func(sha string) []string {
		return []string{"EVALSHA", sha, "1", "key:__rand_int__", now, "1", strconv.Itoa(ttlSecond)}
	}, specs, scale)
}

// runScriptBenchmarks loads the script src with SCRIPT LOAD and runs each of
// specs with redis-benchmark on random ids (-r 100000), requests scaled by
// scale, the command that command returns for the script's SHA1 (whose
// __rand_int__ redis-benchmark replaces), emptying the server after each.
func runScriptBenchmarks(ctx context.Context, srv *redisServer, src string, command func(sha string) []string,
	specs []ceilingRun, scale float64) ([]ceilingRun, error) {
	sha, err := srv.loadScript(src)
	if err != nil {
		return nil, fmt.Errorf("SCRIPT LOAD: %w", err)
	}
	bin, err := exec.LookPath("redis-benchmark")
	if err != nil {
		return nil, fmt.Errorf("redis-benchmark is not on PATH (Debian: apt-get install redis-tools): %w", err)
	}
	host, port, _ := strings.Cut(srv.addr, ":")
	var runs []ceilingRun
	for _, r := range specs {
		r.requests = max(int(float64(r.requests)*scale), 1000)
		args := []string{"-h", host, "-p", port, "-c", strconv.Itoa(r.clients), "-n", strconv.Itoa(r.requests),
			"-P", strconv.Itoa(r.pipeline), "-r", strconv.Itoa(numIDs), "--csv"}
		args = append(args, command(sha)...)
		r.command = "redis-benchmark " + shellJoin(args)
		var out, errOut bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			r.err = fmt.Errorf("%v: %s", err, strings.TrimSpace(errOut.String()))
		} else {
			r.rps, r.p50, r.p99, r.err = parseBenchmarkCSV(out.String())
		}
		runs = append(runs, r)
		if err := srv.flushAll(); err != nil {
			return runs, err
		}
	}
	return runs, nil
}

// shellJoin joins args with spaces, writing an empty one as two single
// quotes, so that the command line can be run again as shown.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if a == "" {
			a = "''"
		}
		quoted[i] = a
	}
	return strings.Join(quoted, " ")
}

// parseBenchmarkCSV reads the rps and the p50 and p99 latencies from
// redis-benchmark --csv output: a header line naming the columns, then one
// line per test.
func parseBenchmarkCSV(out string) (rps float64, p50, p99 time.Duration, err error) {
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("redis-benchmark --csv output: %w", err)
	}
	if len(recs) < 2 {
		return 0, 0, 0, fmt.Errorf("redis-benchmark --csv output has no result line: %q", out)
	}
	col := map[string]int{}
	for i, name := range recs[0] {
		col[name] = i
	}
	row := recs[len(recs)-1]
	field := func(name string) (float64, error) {
		i, ok := col[name]
		if !ok || i >= len(row) {
			return 0, fmt.Errorf("redis-benchmark --csv output has no %q column: %q", name, out)
		}
		return strconv.ParseFloat(row[i], 64)
	}
	ms := func(name string) (time.Duration, error) {
		v, err := field(name)
		return time.Duration(math.Round(v * float64(time.Millisecond))), err
	}
	if rps, err = field("rps"); err != nil {
		return 0, 0, 0, err
	}
	// Latencies are optional: older redis-benchmark versions lack them.
	p50, _ = ms("p50_latency_ms")
	p99, _ = ms("p99_latency_ms")
	return rps, p50, p99, nil
}
