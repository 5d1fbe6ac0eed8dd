// Command bench measures hammerredis against other Go rate limiters on Redis,
// side by side in one run on one private redis-server, and writes the
// results as Markdown (bench.md) and charts (bench.png, bench-hot.png).
//
// Each cell is one library (or hammerredis configuration), one workload
// (random ids or a hot-key mix) and one number of concurrent callers; it
// reports checks per second, p50 and p99 latency, allocations per check and
// the connections Redis saw. redis-benchmark running the same Lua script,
// pipelined, gives the ceiling.
//
// Usage (from bench/; make bench runs the first):
//
//	go run . -out ../docs
//	go run . -quick -libs hammer,redigo -callers 1,64
//
// Flags:
//
//	-duration d    measurement per cell (default 2s)
//	-warmup d      warm-up per cell, not measured (default 500ms)
//	-callers list  concurrent callers (default 1,4,16,64,256)
//	-workloads l   random, hot (default both)
//	-libs list     rows whose key or name contains a word (default all)
//	-out dir       write bench.md and the PNGs there; without it the
//	               Markdown goes to standard output
//	-quick         a smoke run: 200ms cells, 100ms warm-up, short ceiling
//	-ceiling       run redis-benchmark (default true)
//	-gobench       run the library's BenchmarkCountHit (default true)
//	-lib-dir dir   the library's module, for -gobench (default ..)
//	-scriptcost    only measure Redis CPU per check: flights of count_hit
//	               runs against one multi-key run (scriptcost.go)
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// config is one run's settings.
type config struct {
	// scriptCost runs only the script-cost measurement (scriptcost.go).
	scriptCost       bool
	duration, warmup time.Duration
	callers          []int
	workloads        []workload
	drivers          []driver
	// out is the output directory; "" writes the Markdown to stdout only.
	out string
	// ceiling runs redis-benchmark; ceilingScale scales its request counts.
	ceiling      bool
	ceilingScale float64
	// goBench runs the library's BenchmarkCountHit in libDir for
	// goBenchTime.
	goBench     bool
	libDir      string
	goBenchTime string
	// reruns is how many extra runs noisy cells may take in all, so that a
	// busy machine does not stretch the run much.
	reruns int
	// cmdline is how the run was started, for the report.
	cmdline string
	// progress receives one line per cell; nil for none.
	progress func(format string, args ...any)
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// parseFlags turns the command line into a config.
func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	duration := fs.Duration("duration", 2*time.Second, "measurement per cell")
	warmup := fs.Duration("warmup", 500*time.Millisecond, "warm-up per cell, not measured")
	callers := fs.String("callers", "1,4,16,64,256", "comma-separated numbers of concurrent callers")
	wls := fs.String("workloads", "random,hot", "comma-separated workloads: random, hot")
	libs := fs.String("libs", "all", "comma-separated words: rows whose key or name contains one run")
	out := fs.String("out", "", "directory for bench.md and the charts; empty: Markdown to standard output")
	quick := fs.Bool("quick", false, "smoke run: 200ms cells, 100ms warm-up, short ceiling and go test -bench")
	ceiling := fs.Bool("ceiling", true, "run redis-benchmark for the ceiling")
	goBench := fs.Bool("gobench", true, "run the library's BenchmarkCountHit with go test -benchmem")
	libDir := fs.String("lib-dir", "..", "the library's module directory, for -gobench")
	scriptCost := fs.Bool("scriptcost", false, "only measure Redis CPU per check, count_hit runs against multi-key runs")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg := config{
		scriptCost: *scriptCost, duration: *duration, warmup: *warmup, out: *out,
		ceiling: *ceiling, ceilingScale: 1, goBench: *goBench, libDir: *libDir, goBenchTime: "1s", reruns: 12,
		cmdline:  strings.TrimSpace("go run . " + strings.Join(args, " ")),
		progress: func(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) },
	}
	if *quick {
		cfg.duration, cfg.warmup, cfg.ceilingScale, cfg.goBenchTime = 200*time.Millisecond, 100*time.Millisecond, 0.05, "100ms"
		cfg.reruns = 0
	}
	if cfg.duration <= 0 || cfg.warmup < 0 {
		return config{}, errors.New("-duration must be > 0 and -warmup >= 0")
	}
	for _, s := range strings.Split(*callers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return config{}, fmt.Errorf("-callers: %q is not a positive number", s)
		}
		if len(cfg.callers) > 0 && n <= cfg.callers[len(cfg.callers)-1] {
			return config{}, fmt.Errorf("-callers: list them in increasing order, got %q", *callers)
		}
		cfg.callers = append(cfg.callers, n)
	}
	var err error
	if cfg.workloads, err = pickWorkloads(*wls); err != nil {
		return config{}, err
	}
	if cfg.drivers, err = pickDrivers(*libs); err != nil {
		return config{}, err
	}
	return cfg, nil
}

// run measures every cell of cfg and writes the report: to cfg.out, or the
// Markdown to stdout.
func run(ctx context.Context, cfg config, stdout *os.File) error {
	if cfg.scriptCost {
		srv, err := startRedis()
		if err != nil {
			return err
		}
		defer srv.stop()
		return runScriptCost(ctx, srv, stdout)
	}
	rep, err := measure(ctx, cfg)
	if err != nil {
		return err
	}
	return rep.write(stdout)
}

// measure starts the private redis-server and runs the ceiling, every cell
// and the library's go test -bench.
func measure(ctx context.Context, cfg config) (*report, error) {
	progress := cfg.progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	rep := &report{cfg: cfg, started: time.Now()}
	srv, err := startRedis()
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	rep.machine = describeMachine(srv)
	progress("bench: redis-server %s on %s; %d cells of %v + %v warm-up",
		rep.machine.redisVersion, srv.addr, len(cfg.workloads)*len(cfg.callers)*len(cfg.drivers), cfg.duration, cfg.warmup)

	if cfg.ceiling {
		rep.ceilings, rep.ceilingErr = runCeilings(ctx, srv, ceilingSpecs, cfg.ceilingScale)
		rep.logCeilings(progress, rep.ceilings)
	}

	// The cluster row's cluster starts when that row first runs, and stops
	// at the end of the run.
	single := singleTarget(srv)
	var cluster *target
	defer func() { cluster.stop() }()
	targetOf := func(d driver) (*target, error) {
		if !d.cluster {
			return single, nil
		}
		if cluster == nil {
			progress("bench: starting a private cluster of %d masters with one replica each", clusterMasters)
			t0 := time.Now()
			c, err := startClusterTarget()
			if err != nil {
				return nil, fmt.Errorf("starting the cluster: %w", err)
			}
			cluster, rep.clusterStart = c, time.Since(t0)
			rep.clusterVersion, _ = c.servers[0].version()
		}
		return cluster, nil
	}

	n, budget := 0, cfg.reruns
	for _, wl := range cfg.workloads {
		for _, callers := range cfg.callers {
			for _, d := range cfg.drivers {
				n++
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				t0 := time.Now()
				tgt, err := targetOf(d)
				if err != nil {
					return nil, err
				}
				res, err := runQuietCell(ctx, tgt, cell{driver: d, workload: wl, callers: callers},
					fmt.Sprintf("b%d:", n), cfg, &budget, progress)
				if err != nil {
					return nil, fmt.Errorf("%s, %s, %d callers: %w", wl.name, d.name, callers, err)
				}
				res.took = time.Since(t0)
				rep.results = append(rep.results, res)
				progress("bench: %-6s %3d callers  %-36s %9s/s  p50 %7s  p99 %7s  %5.1f allocs  %3d conns  others %s cores%s",
					wl.name, callers, d.name, fmtRate(res.rate()), fmtDur(res.p50), fmtDur(res.p99), res.allocs, res.conns,
					fmtCores(res.otherCPU), errorNote(res))
				if err := tgt.flushAll(); err != nil {
					return nil, err
				}
				runtime.GC()
			}
		}
	}

	if cfg.ceiling && rep.ceilingErr == nil {
		// The ceiling again, after the cells: the report uses the better of
		// the two, so that a slow moment of the machine does not lower it.
		again := ceilingSpecs[0]
		again.label = "ceiling again, after the cells"
		runs, err := runCeilings(ctx, srv, []ceilingRun{again}, cfg.ceilingScale)
		rep.ceilings, rep.ceilingErr = append(rep.ceilings, runs...), err
		rep.logCeilings(progress, runs)
	}

	if cfg.goBench {
		progress("bench: go test -bench BenchmarkCountHit in %s", cfg.libDir)
		gb := runGoBench(ctx, cfg.libDir, "^BenchmarkCountHit$", cfg.goBenchTime)
		rep.goBench = &gb
		if gb.err != nil {
			progress("bench: go test -bench: %v", gb.err)
		}
	}
	rep.took = time.Since(rep.started)
	return rep, nil
}

// noisyRetries is how many times a cell is measured again when other
// processes took more than noisyCores during it.
const noisyRetries = 2

// runQuietCell runs a cell, and runs it again, up to noisyRetries times and
// while *budget lasts, when other processes took more than noisyCores of
// the machine during it; it keeps the quietest measurement. Each run gets a
// fresh prefix and an empty server (every master of the cluster emptied).
func runQuietCell(ctx context.Context, srv *target, c cell, prefix string, cfg config, budget *int,
	progress func(string, ...any)) (result, error) {
	var best result
	for attempt := 0; ; attempt++ {
		res, err := runCell(ctx, srv, c, fmt.Sprintf("%sr%d:", prefix, attempt), cfg.warmup, cfg.duration)
		if err != nil {
			return res, err
		}
		res.reruns = attempt
		if attempt == 0 || (res.otherCPU >= 0 && res.otherCPU < best.otherCPU) {
			best = res
		}
		if res.otherCPU <= noisyCores || attempt == noisyRetries || *budget <= 0 {
			best.reruns = attempt
			return best, nil
		}
		*budget--
		progress("bench: %-6s %3d callers  %-36s other processes took %.2f cores: measuring again",
			c.workload.name, c.callers, c.driver.name, res.otherCPU)
		if err := srv.flushAll(); err != nil {
			return best, err
		}
		runtime.GC()
	}
}

// write writes bench.md and the charts to r.cfg.out, or the Markdown to
// stdout when it is "".
func (r *report) write(stdout *os.File) error {
	charts := map[string]string{}
	if r.cfg.out == "" {
		var buf bytes.Buffer
		r.writeMarkdown(&buf, charts)
		_, err := stdout.Write(buf.Bytes())
		return err
	}
	if err := os.MkdirAll(r.cfg.out, 0o755); err != nil {
		return err
	}
	for _, wl := range r.cfg.workloads {
		name := "bench.png"
		if wl.name != "random" {
			name = "bench-" + wl.name + ".png"
		}
		if err := writeChart(filepath.Join(r.cfg.out, name), r, wl); err != nil {
			return fmt.Errorf("chart %s: %w", name, err)
		}
		charts[wl.name] = name
	}
	var buf bytes.Buffer
	r.writeMarkdown(&buf, charts)
	path := filepath.Join(r.cfg.out, "bench.md")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return err
	}
	if r.cfg.progress != nil {
		r.cfg.progress("bench: wrote %s and %d chart(s)", path, len(charts))
	}
	return nil
}

// logCeilings reports redis-benchmark runs as progress.
func (r *report) logCeilings(progress func(string, ...any), runs []ceilingRun) {
	for _, c := range runs {
		progress("bench: redis-benchmark %-45s %10s req/s  %v", c.label, fmtRate(c.rps), errOrEmpty(c.err))
	}
	if r.ceilingErr != nil {
		progress("bench: redis-benchmark: %v", r.ceilingErr)
	}
}

// errorNote summarises a cell's failures for the progress line.
func errorNote(res result) string {
	if res.errors == 0 && res.denied == 0 {
		return ""
	}
	return fmt.Sprintf("  %d errors, %d denied: %s", res.errors, res.denied, res.firstErr)
}

// errOrEmpty returns err's text, or "" for nil.
func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
