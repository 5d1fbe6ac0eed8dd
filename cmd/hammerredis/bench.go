package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/protocol"
)

// Bench settings.
const (
	// benchExpiryMs is the backend's ExpiryMs: the run's keys expire
	// protocol.ExpirySeconds(benchExpiryMs) = 11s after their last hit.
	benchExpiryMs = 10_000
	// benchKeyBase is the default --key-prefix, to which every run adds
	// "<pid>:<random>:".
	benchKeyBase = "hammerredis-bench:"
	// maxCallers bounds each --callers value.
	maxCallers = 4096
)

// benchFlags are the settings of one bench run.
type benchFlags struct {
	urlFlags    redisURLFlags
	redisURL    string // resolved from urlFlags
	callers     []int
	duration    time.Duration
	workload    benchWorkload
	pool        int
	maxPipeline int
	noCoalesce  bool
	keyBase     string // --key-prefix; the run's keys go under keyBase<pid>:<random>:
	timeout     time.Duration
	json        bool
	verbose     bool
}

// newBenchFlagSet returns bench's flags, parsed into f.
func newBenchFlagSet(f *benchFlags) (fs *flag.FlagSet, callers, workload *string) {
	fs = flag.NewFlagSet("hammerredis bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and usage are printed by runBench
	fs.Usage = func() {}
	f.urlFlags.register(fs, "`URL` of the Redis to measure: redis://[[user]:password@]host[:port][/db], or rediss:// for TLS\n"+
		"(default $REDIS_URL; if none is given, a private redis-server is started)")
	callers = fs.String("callers", "1,16,64,256",
		"comma-separated `list` of how many goroutines check at once; one row each, each 1-"+strconv.Itoa(maxCallers))
	fs.DurationVar(&f.duration, "duration", 5*time.Second, "how long each row measures")
	workload = fs.String("workload", "random",
		"`name` of how ids are picked: random (uniform over 100000) or hot (90% on 10 ids)")
	fs.IntVar(&f.pool, "pool", 1,
		"the backend's PoolSize: connections, each with its own server goroutine (1-"+strconv.Itoa(hammerredis.MaxPoolSize)+")")
	fs.IntVar(&f.maxPipeline, "max-pipeline", hammerredis.DefaultMaxPipeline,
		"the backend's MaxPipeline: calls written before their replies are read (1-"+
			strconv.Itoa(hammerredis.MaxPipelineLimit)+"); 1 turns pipelining off")
	fs.BoolVar(&f.noCoalesce, "no-coalesce", false,
		"set the backend's DisableCoalescing: send every hit on its own")
	fs.StringVar(&f.keyBase, "key-prefix", benchKeyBase,
		"start of the run's key `prefix`, to which the run adds \"<pid>:<random>:\" so that it is unique")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "how long to wait for each connection to Redis")
	fs.BoolVar(&f.json, "json", false, "print the results as one JSON object on stdout")
	fs.BoolVar(&f.verbose, "verbose", false, "log the backends' connection events to stderr")
	return fs, callers, workload
}

// parseBench parses args into f. It returns flag.ErrHelp for --help and a
// usageError for a mistake.
func parseBench(fs *flag.FlagSet, f *benchFlags, callers, workload *string, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	var err error
	switch {
	case fs.NArg() > 0:
		return usageErrorf("unexpected arguments %q", fs.Args())
	case f.duration <= 0:
		return usageErrorf("--duration %v: must be positive", f.duration)
	case f.pool < 1 || f.pool > hammerredis.MaxPoolSize:
		return usageErrorf("--pool %d: want 1-%d", f.pool, hammerredis.MaxPoolSize)
	case f.maxPipeline < 1 || f.maxPipeline > hammerredis.MaxPipelineLimit:
		return usageErrorf("--max-pipeline %d: want 1-%d", f.maxPipeline, hammerredis.MaxPipelineLimit)
	case f.timeout <= 0:
		return usageErrorf("--timeout %v: must be positive", f.timeout)
	}
	if f.callers, err = parseCallers(*callers); err != nil {
		return err
	}
	for _, w := range benchWorkloads {
		if w.name == *workload {
			f.workload = w
			return nil
		}
	}
	return usageErrorf("--workload %q: want random or hot", *workload)
}

// parseCallers parses a comma-separated list of caller counts.
func parseCallers(list string) ([]int, error) {
	var out []int
	for s := range strings.SplitSeq(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > maxCallers {
			return nil, usageErrorf("--callers %q: want a comma-separated list of numbers 1-%d, e.g. 1,16,64", list, maxCallers)
		}
		out = append(out, n)
	}
	return out, nil
}

// runBench runs "hammerredis bench".
func runBench(args []string, stdout, stderr io.Writer) int {
	var f benchFlags
	fs, callers, workload := newBenchFlagSet(&f)
	if err := parseBench(fs, &f, callers, workload, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			benchUsage(fs, stdout)
			return exitOK
		}
		fmt.Fprintf(stderr, "hammerredis bench: %v\nRun \"hammerredis bench --help\" for usage.\n", err)
		return exitUsage
	}
	var err error
	if f.redisURL, err = f.urlFlags.resolve("bench", stderr); err != nil {
		fmt.Fprintf(stderr, "hammerredis bench: %v\nRun \"hammerredis bench --help\" for usage.\n", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench(ctx, f, stderr)
	if ctx.Err() != nil {
		// Only a failed clean-up is worth telling after Ctrl-C.
		rep.Interrupted, err = true, rep.cleanUpErr
	}
	if err != nil {
		rep.Error = err.Error()
	}
	if f.json {
		printBenchJSON(stdout, rep)
	} else {
		printBenchTable(stdout, rep)
	}
	switch {
	case rep.Interrupted && err == nil:
		fmt.Fprintln(stderr, "hammerredis bench: interrupted; cleaned up")
		return exitInterrupted
	case rep.Interrupted:
		fmt.Fprintf(stderr, "hammerredis bench: interrupted; %v\n", err)
		return exitInterrupted
	case err != nil:
		fmt.Fprintf(stderr, "hammerredis bench: %v\n", err)
		return exitError
	}
	return exitOK
}

// bench runs every cell of f and cleans up. The report holds the cells that
// finished, also when it returns an error.
func bench(ctx context.Context, f benchFlags, stderr io.Writer) (rep *benchReport, err error) {
	pid := os.Getpid()
	prefix := fmt.Sprintf("%s%d:%08x:", f.keyBase, pid, rand.Uint32())
	rep = newBenchReport(f, prefix)
	opts := benchOptions(f, prefix, pid, stderr)
	if f.redisURL != "" {
		// Reject a bad URL before anything dials it; the backend's errors
		// never show a password.
		if _, err := hammerredis.New(opts); err != nil {
			return rep, err
		}
		rep.Redis = withoutCredentials(f.redisURL)
		fmt.Fprintf(stderr, "hammerredis bench: WARNING: writing keys under %q to the Redis at %s; they expire %ds "+
			"after their last hit and are deleted at the end\n", prefix, rep.Redis, protocol.ExpirySeconds(benchExpiryMs))
	}
	t, err := openTarget(f.redisURL, pid)
	if err != nil {
		return rep, err
	}
	if t.private != nil {
		rep.Redis, rep.PrivateServer = t.shown, true
		fmt.Fprintf(stderr, "hammerredis bench: writing keys under %q to a private redis-server at %s (pid %d), "+
			"removed at the end\n", prefix, t.shown, t.private.Pid())
	}
	opts.RedisURL = t.url

	var admin redis.Conn
	defer func() {
		if rep.cleanUpErr = rep.cleanUp(t, admin, prefix, stderr); rep.cleanUpErr != nil {
			err = errors.Join(err, rep.cleanUpErr)
		}
	}()
	dctx, cancel := context.WithTimeout(ctx, f.timeout)
	admin, err = t.dialAdmin(dctx, fmt.Sprintf("hammerredis-bench-admin-%d", pid))
	cancel()
	if err != nil {
		return rep, fmt.Errorf("connecting to %s: %w", rep.Redis, err)
	}

	p := newProgress(stderr)
	for _, n := range f.callers {
		res, err := runCell(ctx, opts, f.timeout, f.workload, n, f.duration, p)
		if err != nil {
			p.clear()
			if ctx.Err() == nil {
				err = fmt.Errorf("%s, %d callers: %w", rep.Redis, n, err)
			}
			return rep, err
		}
		p.done(cellSummary(res))
		rep.add(res)
		if res.checks == 0 && res.firstErr != "" {
			return rep, fmt.Errorf("no check succeeded with %d callers: %s", n, res.firstErr)
		}
	}
	return rep, nil
}

// benchOptions returns the options of the run's backends.
func benchOptions(f benchFlags, prefix string, pid int, stderr io.Writer) hammerredis.Options {
	logger := slog.New(slog.DiscardHandler)
	if f.verbose {
		logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	return hammerredis.Options{
		ExpiryMs:          benchExpiryMs,
		RedisURL:          f.redisURL,
		KeyPrefix:         prefix,
		PoolSize:          f.pool,
		MaxPipeline:       f.maxPipeline,
		DisableCoalescing: f.noCoalesce,
		RedixConfig: &hammerredis.RedisConfig{
			ConnectTimeout: f.timeout,
			ClientName:     fmt.Sprintf("hammerredis-bench-%d", pid), // to find it in CLIENT LIST
		},
		Logger: logger,
	}
}

// cleanUp deletes the run's keys, which are all under prefix, from the
// user's Redis through the admin connection, or removes the private server
// with its keys. It works after Ctrl-C too: the admin connection has its own
// timeouts. (Ctrl-C on a terminal also stops the private server, which runs
// in the same process group: its keys are gone with it.)
func (rep *benchReport) cleanUp(t *target, admin redis.Conn, prefix string, stderr io.Writer) error {
	if admin != nil {
		defer admin.Close()
	}
	if t.private != nil {
		t.private.Stop()
		fmt.Fprintln(stderr, "hammerredis bench: removed the private redis-server")
		return nil
	}
	if admin == nil {
		return nil // never connected: nothing was written
	}
	// The prefix is unique to this run: the pattern matches only its keys.
	n, err := deleteMatching(admin, globEscape(prefix)+"*")
	rep.KeysDeleted = n
	if err != nil {
		return fmt.Errorf("deleting the keys under %q: %w (%d deleted; the others expire by themselves within %ds)",
			prefix, err, n, protocol.ExpirySeconds(benchExpiryMs))
	}
	fmt.Fprintf(stderr, "hammerredis bench: deleted the run's %d key(s) under %q\n", n, prefix)
	return nil
}

// globEscape escapes the characters special in Redis glob patterns.
func globEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`).Replace(s)
}

func benchUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, `Usage: hammerredis bench [--redis-url URL] [--callers 1,16,64,256] [--duration 5s]
                         [--workload random|hot] [--pool N] [--max-pipeline N]
                         [--no-coalesce] [--key-prefix P] [--timeout 5s] [--json]

Measures hammerredis against a Redis. For each --callers value it starts a
backend (hammerredis.Start with --pool, --max-pipeline and --no-coalesce),
waits for its connection (at most --timeout), and runs that many goroutines
calling hammer.New(backend).CheckRate back to back for --duration, each check
one hit in a %v window under a limit no run reaches, on ids picked by
--workload:

  random  uniform over %d ids, "user:0" to "user:99999"
  hot     %.0f%% of the checks on %d ids, the rest uniform over %d

It prints a row per --callers value on stdout: the successful checks and
checks/s, the latency p50 and p99 (a log-bucketed histogram, within 3%%), heap
allocations per check (the whole process's runtime.MemStats.Mallocs), and the
backend's failed calls by kind (b.Stats()).

Safety: bench WRITES to the Redis it measures.
  - Without --redis-url, --redis-url-file and $REDIS_URL (prefer the last two
    for a URL with a password, which ps shows in --redis-url) it starts a
    private redis-server from PATH on a free port and removes it at the end;
    it never falls back to the Redis at 127.0.0.1:6379.
  - With a URL it first prints a warning line naming the Redis and the key
    prefix, and writes only keys under "<--key-prefix><pid>:<random>:",
    such as "%s4242:9f3a2c41:": a prefix unique to the run,
    never the services' "%s". That is one key per id and %v
    window, up to %d per window with --workload random.
  - The keys expire by themselves %ds after their last hit (ExpiryMs %d),
    and at the end, also after Ctrl-C, bench deletes them: SCAN MATCH on the
    run's prefix and DEL, which touches no other key. (A private server is
    removed with its keys.)

Progress goes to stderr. On a terminal it is one line redrawn ten times a
second, then a summary line per row:

  callers 64  [#########.........]  52%%  3.1s left  81.2k checks/s

When stderr is not a terminal (a pipe, a file, CI) only the summary lines
are printed, without carriage returns.

With --json, stdout is one JSON object: {"redis", "private_server",
"key_prefix", "workload", "duration_ms", "pool", "max_pipeline",
"coalescing", "expiry_ms", "keys_deleted", "interrupted", "cells":
[{"callers", "checks", "elapsed_ms", "checks_per_sec", "p50_us", "p99_us",
"allocs_per_check", "errors", "errors_by_kind", "first_error"}], "error"};
"first_error" and "error" only when there is one; keys_deleted is 0 with a
private server. Usage errors are printed on stderr only.

Exit status: 0 on success; 2 on a usage error, a missing redis-server, a
Redis not reachable within --timeout, or a row where no check succeeded; 130
when interrupted (Ctrl-C), after cleaning up.

Flags:
`, benchWindow, benchIDCount, hotShare*100, hotIDs, benchIDCount, benchKeyBase, protocol.DefaultKeyPrefix,
		benchWindow, benchIDCount, protocol.ExpirySeconds(benchExpiryMs), benchExpiryMs)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}
