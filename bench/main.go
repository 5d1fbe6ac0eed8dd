// Command bench measures hammerredis against other Go rate limiters on Redis,
// side by side in one run on one private redis-server, and writes the
// results as Markdown (bench.md) and charts (bench.png, bench-hot.png).
//
// Each cell is one library (or hammerredis configuration), one workload
// (random ids or a hot-key mix) and one number of concurrent callers; it
// reports checks per second, p50 and p99 latency, allocations per check and
// the connections Redis saw. redis-benchmark running the same Lua script,
// pipelined, gives the ceiling. A second section, "Hammer 7 algorithms"
// (section7.go), runs each of package hammer7's algorithms beside the
// libraries that implement the same idea, against its own script's ceiling.
//
// Usage (from bench/; make bench runs the first):
//
//	go run . -out ../docs
//	go run . -quick -libs hammer,redigo -callers 1,64
//	go run . -section h7
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
//	-section s     all (default); main, only the Hammer 6 rows; h7, only
//	               the Hammer 7 algorithms
//	-h7-callers l  concurrent callers of the Hammer 7 cells (default 16,64,256)
//
// -libs, -workloads, -duration, -warmup, -quick and -ceiling apply to both
// sections; -callers and -gobench to the main one.
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
	// runMain runs the main section: drivers at callers, the count_hit
	// ceiling and the library's go test -bench.
	runMain bool
	drivers []driver
	// rows7 are the Hammer 7 section's rows, run at callers7 (none: the
	// section does not run); reruns7 is its own budget of reruns.
	rows7    []row7
	callers7 []int
	reruns7  int
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
	section := fs.String("section", "all", "sections to run: all; main (the Hammer 6 rows); h7 (the Hammer 7 algorithms)")
	callers7 := fs.String("h7-callers", "16,64,256", "comma-separated numbers of concurrent callers of the Hammer 7 cells")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg := config{
		scriptCost: *scriptCost, duration: *duration, warmup: *warmup, out: *out,
		ceiling: *ceiling, ceilingScale: 1, goBench: *goBench, libDir: *libDir, goBenchTime: "1s", reruns: 12, reruns7: 6,
		cmdline:  strings.TrimSpace("go run . " + strings.Join(args, " ")),
		progress: func(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) },
	}
	if *quick {
		cfg.duration, cfg.warmup, cfg.ceilingScale, cfg.goBenchTime = 200*time.Millisecond, 100*time.Millisecond, 0.05, "100ms"
		cfg.reruns, cfg.reruns7 = 0, 0
	}
	if cfg.duration <= 0 || cfg.warmup < 0 {
		return config{}, errors.New("-duration must be > 0 and -warmup >= 0")
	}
	var err error
	if cfg.callers, err = parseCallers("-callers", *callers); err != nil {
		return config{}, err
	}
	if cfg.callers7, err = parseCallers("-h7-callers", *callers7); err != nil {
		return config{}, err
	}
	if cfg.workloads, err = pickWorkloads(*wls); err != nil {
		return config{}, err
	}
	var runMain, run7 bool
	switch *section {
	case "all":
		runMain, run7 = true, true
	case "main":
		runMain = true
	case section7:
		run7 = true
	default:
		return config{}, fmt.Errorf("-section: %q is not all, main or %s", *section, section7)
	}
	// -libs picks rows in every section that runs; a section none of whose
	// rows it picks does not run.
	if runMain {
		cfg.drivers = pickFrom(*libs, drivers, func(d driver) driver { return d })
	}
	if run7 {
		cfg.rows7 = pickFrom(*libs, rows7, func(r row7) driver { return r.driver })
	}
	cfg.runMain = len(cfg.drivers) > 0
	if !cfg.runMain && len(cfg.rows7) == 0 {
		var keys []string
		if runMain {
			for _, d := range drivers {
				keys = append(keys, d.key)
			}
		}
		if run7 {
			for _, r := range rows7 {
				keys = append(keys, r.key)
			}
		}
		return config{}, fmt.Errorf("-libs %q matches no row of -section %s (have %s)", *libs, *section, strings.Join(keys, ", "))
	}
	return cfg, nil
}

// parseCallers parses flag's comma-separated list of increasing positive
// numbers.
func parseCallers(flag, list string) ([]int, error) {
	var out []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not a positive number", flag, s)
		}
		if len(out) > 0 && n <= out[len(out)-1] {
			return nil, fmt.Errorf("%s: list them in increasing order, got %q", flag, list)
		}
		out = append(out, n)
	}
	return out, nil
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

// measure starts the private redis-server and runs the sections of cfg:
// the main one (the ceiling, every cell and the library's go test -bench),
// then the Hammer 7 one.
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
		rep.machine.redisVersion, srv.addr,
		len(cfg.workloads)*(len(cfg.callers)*len(cfg.drivers)+len(cfg.callers7)*len(cfg.rows7)), cfg.duration, cfg.warmup)
	if cfg.runMain {
		if err := measureMain(ctx, cfg, srv, rep, progress); err != nil {
			return nil, err
		}
	}
	if err := measure7(ctx, cfg, srv, rep, progress); err != nil {
		return nil, err
	}
	rep.took = time.Since(rep.started)
	return rep, nil
}

// measureMain runs the main section: the ceiling, every cell, the ceiling
// again and the library's go test -bench.
func measureMain(ctx context.Context, cfg config, srv *redisServer, rep *report, progress func(string, ...any)) error {
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
					return err
				}
				t0 := time.Now()
				tgt, err := targetOf(d)
				if err != nil {
					return err
				}
				res, err := runQuietCell(ctx, tgt, cell{driver: d, workload: wl, callers: callers},
					fmt.Sprintf("b%d:", n), cfg, &budget, progress)
				if err != nil {
					return fmt.Errorf("%s, %s, %d callers: %w", wl.name, d.name, callers, err)
				}
				res.took = time.Since(t0)
				rep.results = append(rep.results, res)
				progress("bench: %-6s %3d callers  %-36s %9s/s  p50 %7s  p99 %7s  %5.1f allocs  %3d conns  others %s cores%s",
					wl.name, callers, d.name, fmtRate(res.rate()), fmtDur(res.p50), fmtDur(res.p99), res.allocs, res.conns,
					fmtCores(res.otherCPU), errorNote(res))
				if err := tgt.flushAll(); err != nil {
					return err
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
	return nil
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
		if !r.cfg.runMain {
			break // the charts are of the main section's cells
		}
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
