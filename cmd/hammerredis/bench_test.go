package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/internal/redistest"
)

// benchPrefix matches the key prefix of a bench run.
var benchPrefix = regexp.MustCompile(`^hammerredis-bench:\d+:[0-9a-f]{8}:$`)

// benchRow matches a table row of n callers without errors.
func benchRow(n int) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^ +` + strconv.Itoa(n) + ` +[1-9]\d* +[1-9]\d* +\S+ +\S+ +\d+\.\d +0$`)
}

// plantKeys writes keys that a bench run must leave alone: a service's
// bucket and a key of another bench run.
func plantKeys(t *testing.T, c redis.Conn) {
	t.Helper()
	for _, k := range []string{"Hammer:Redis:user:1:123", "hammerredis-bench:1:00000000:user:1:1"} {
		if _, err := c.Do("SET", k, "keep"); err != nil {
			t.Fatal(err)
		}
	}
}

// checkOnlyPlantedKeys checks that only plantKeys' keys are left.
func checkOnlyPlantedKeys(t *testing.T, c redis.Conn) {
	t.Helper()
	keys, err := redis.Strings(c.Do("KEYS", "*"))
	if err != nil || len(keys) != 2 {
		t.Errorf("KEYS * after bench = %d keys (%q...), %v; want only the 2 planted keys: bench deletes its own keys, and only those",
			len(keys), keys[:min(len(keys), 3)], err)
	}
}

func TestBenchTable(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t)
	c := srv.Conn(t)
	plantKeys(t, c)
	r := hr(t, "bench", "--redis-url", srv.URL(), "--callers", "1,4", "--duration", "300ms")
	if r.code != exitOK {
		t.Fatalf("hammerredis bench = %v\nwant exit 0", r)
	}
	for _, n := range []int{1, 4} {
		if !benchRow(n).MatchString(r.stdout) {
			t.Errorf("stdout has no row for %d callers, with checks, checks/s, p50, p99, allocs and 0 errors:\n%v", n, r)
		}
	}
	if !strings.Contains(r.stdout, "callers      checks    checks/s") {
		t.Errorf("stdout lacks the table header:\n%v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	warning := regexp.MustCompile(`^hammerredis bench: WARNING: writing keys under "(hammerredis-bench:\d+:[0-9a-f]{8}:)" to the Redis at ` +
		regexp.QuoteMeta(srv.URL()) + `; they expire 11s after their last hit`)
	m := warning.FindStringSubmatch(lines[0])
	if m == nil {
		t.Fatalf("the first line on stderr is not the warning naming the prefix and the Redis:\n%v", r)
	}
	for _, want := range []string{"callers 1  done: ", "callers 4  done: ", `deleted the run's `} {
		if strings.Count(r.stderr, want) != 1 {
			t.Errorf("stderr should hold %q once:\n%v", want, r)
		}
	}
	if strings.Contains(r.stdout+r.stderr, "\r") || strings.Contains(r.stderr, "[#") {
		t.Errorf("stderr is not a terminal: want plain lines, no carriage return, no bar:\n%q", r.stderr)
	}
	if keys, err := redis.Strings(c.Do("KEYS", globEscape(m[1])+"*")); err != nil || len(keys) != 0 {
		t.Errorf("KEYS %s* after bench = %d keys, %v; want none", m[1], len(keys), err)
	}
	checkOnlyPlantedKeys(t, c)
}

func TestBenchJSON(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t)
	c := srv.Conn(t)
	plantKeys(t, c)
	r := want(t, exitOK, ``, "bench", "--redis-url", srv.URL(), "--callers", "1,4", "--duration", "300ms",
		"--json", "--workload", "hot", "--pool", "2", "--max-pipeline", "8", "--no-coalesce")
	m := decode(t, r, "redis", "private_server", "key_prefix", "workload", "duration_ms", "pool", "max_pipeline",
		"coalescing", "expiry_ms", "keys_deleted", "interrupted", "cells")
	fields(t, m, map[string]any{"redis": srv.URL(), "private_server": false, "workload": "hot", "duration_ms": 300.0,
		"pool": 2.0, "max_pipeline": 8.0, "coalescing": false, "expiry_ms": 10000.0, "interrupted": false})
	if p, _ := m["key_prefix"].(string); !benchPrefix.MatchString(p) {
		t.Errorf("key_prefix = %#v, want hammerredis-bench:<pid>:<random>:", m["key_prefix"])
	}
	if n, _ := m["keys_deleted"].(float64); n < 1 {
		t.Errorf("keys_deleted = %#v, want the run's keys, at least 1", m["keys_deleted"])
	}
	cells, _ := m["cells"].([]any)
	if len(cells) != 2 {
		t.Fatalf("cells = %#v, want 2", m["cells"])
	}
	for i, callers := range []float64{1, 4} {
		cell, _ := cells[i].(map[string]any)
		fields(t, cell, map[string]any{"callers": callers, "errors": 0.0})
		for _, k := range []string{"checks", "elapsed_ms", "checks_per_sec", "p50_us", "p99_us", "allocs_per_check"} {
			if v, ok := cell[k].(float64); !ok || v <= 0 {
				t.Errorf("cells[%d].%s = %#v, want a positive number", i, k, cell[k])
			}
		}
		if p50, p99 := cell["p50_us"].(float64), cell["p99_us"].(float64); p50 > p99 {
			t.Errorf("cells[%d]: p50_us %v > p99_us %v", i, p50, p99)
		}
		kinds, _ := cell["errors_by_kind"].(map[string]any)
		for _, k := range []string{"closed", "disconnected", "timeout", "canceled", "stopped", "invalid", "redis", "bad_reply", "other"} {
			if kinds[k] != 0.0 {
				t.Errorf("cells[%d].errors_by_kind[%q] = %#v, want 0", i, k, kinds[k])
			}
		}
	}
	if strings.Contains(r.stdout+r.stderr, "\r") {
		t.Errorf("output holds a carriage return though stderr is not a terminal:\n%q", r.stderr)
	}
	checkOnlyPlantedKeys(t, c)
}

func TestBenchKeyPrefix(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t)
	c := srv.Conn(t)
	// A key that the prefix's pattern would match were its glob characters
	// not escaped, and one of the default prefix.
	for _, k := range []string{"myb:keep", "hammerredis-bench:keep"} {
		if _, err := c.Do("SET", k, "keep"); err != nil {
			t.Fatal(err)
		}
	}
	r := want(t, exitOK, ``, "bench", "--redis-url", srv.URL(), "--callers", "2", "--duration", "200ms",
		"--key-prefix", "my[b]*:", "--json")
	m := decode(t, r, "redis", "private_server", "key_prefix", "workload", "duration_ms", "pool", "max_pipeline",
		"coalescing", "expiry_ms", "keys_deleted", "interrupted", "cells")
	if p, _ := m["key_prefix"].(string); !regexp.MustCompile(`^my\[b\]\*:\d+:[0-9a-f]{8}:$`).MatchString(p) {
		t.Errorf("key_prefix = %#v, want my[b]*:<pid>:<random>:", m["key_prefix"])
	}
	if n, _ := m["keys_deleted"].(float64); n < 1 {
		t.Errorf("keys_deleted = %#v, want at least 1", m["keys_deleted"])
	}
	checkOnlyPlantedKeys(t, c)
}

func TestBenchPrivateServer(t *testing.T) {
	t.Parallel()
	r := want(t, exitOK, `\(private redis-server\)`, "bench", "--callers", "2", "--duration", "200ms")
	m := regexp.MustCompile(`to a private redis-server at redis://127\.0\.0\.1:\d+ \(pid (\d+)\)`).FindStringSubmatch(r.stderr)
	if m == nil || !benchRow(2).MatchString(r.stdout) || !strings.Contains(r.stderr, "removed the private redis-server") {
		t.Fatalf("hammerredis bench without a URL = %v\nwant a row measured on a private redis-server, removed at the end", r)
	}
	if pid, _ := strconv.Atoi(m[1]); syscall.Kill(pid, 0) == nil {
		t.Errorf("the private redis-server (pid %d) still runs after bench", pid)
	}
}

func TestBenchErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		args []string
		want string // on stderr
	}{
		{"callers not a number", []string{"--callers", "1,x"}, `--callers "1,x": want a comma-separated list`},
		{"callers 0", []string{"--callers", "0"}, `--callers "0"`},
		{"callers empty", []string{"--callers", ""}, `--callers ""`},
		{"callers trailing comma", []string{"--callers", "1,"}, `--callers "1,"`},
		{"callers too many", []string{"--callers", "5000"}, `numbers 1-4096`},
		{"workload", []string{"--workload", "cold"}, `--workload "cold": want random or hot`},
		{"duration 0", []string{"--duration", "0"}, "--duration 0s: must be positive"},
		{"pool 0", []string{"--pool", "0"}, "--pool 0: want 1-256"},
		{"max pipeline 0", []string{"--max-pipeline", "0"}, "--max-pipeline 0: want 1-16384"},
		{"max pipeline 16385", []string{"--max-pipeline", "16385"}, "--max-pipeline 16385: want 1-16384"},
		{"timeout 0", []string{"--timeout", "0"}, "--timeout 0s: must be positive"},
		{"extra args", []string{"now"}, `unexpected arguments ["now"]`},
		{"unknown flag", []string{"--nope"}, "flag provided but not defined: -nope"},
		{"bad URL", []string{"--redis-url", "http://u:s3cret@127.0.0.1:1"}, `unknown scheme "http"`},
		{"unreachable", []string{"--timeout", "300ms"}, "connecting to redis://127.0.0.1:1: "},
		{"password", []string{"--redis-url", "redis://u:s3cret@127.0.0.1:1/2", "--timeout", "300ms"}, "connecting to redis://127.0.0.1:1/2: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"bench", "--redis-url", unreachable, "--duration", "100ms"}, tt.args...)
			r := hr(t, args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("hammerredis %q = %v\nwant exit %d and %q on stderr", args, r, exitUsage, tt.want)
			}
			if strings.Contains(r.stdout+r.stderr, "s3cret") {
				t.Errorf("hammerredis %q printed the password:\n%v", args, r)
			}
			if r.elapsed > 5*time.Second {
				t.Errorf("hammerredis %q took %v, want a quick failure", args, r.elapsed)
			}
		})
	}
}

func TestBenchHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"bench", "--help"}, {"bench", "-h"}, {"help", "bench"}} {
		r := hr(t, args...)
		if r.code != exitOK || !strings.HasPrefix(r.stdout, "Usage: hammerredis bench") || r.stderr != "" {
			t.Errorf("hammerredis %q = %v\nwant exit 0 and the usage on stdout", args, r)
		}
	}
	r := hr(t, "bench", "--help")
	for _, want := range []string{
		"--redis-url", "$REDIS_URL", "--callers", "--duration", "--workload", "random", "hot", "--pool",
		"--max-pipeline", "--no-coalesce", "--key-prefix", "--timeout", "--json",
		"WRITES", "private redis-server", "never falls back", "127.0.0.1:6379", "warning", "<pid>:<random>:",
		`"Hammer:Redis:"`, "expire by themselves 11s", "SCAN MATCH", "Ctrl-C", "130", "checks/s", "p99",
		"allocations per check", "b.Stats()", "[#########.........]  52%  3.1s left  81.2k checks/s", "not a terminal",
	} {
		if !strings.Contains(strings.ReplaceAll(r.stdout, "  -", "  --"), want) {
			t.Errorf("hammerredis bench --help lacks %q:\n%s", want, r.stdout)
		}
	}
	r = hr(t, "--help")
	if !strings.Contains(r.stdout, "  bench ") {
		t.Errorf("hammerredis --help does not list bench:\n%s", r.stdout)
	}
}

func TestBenchInterrupt(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t)
	c := srv.Conn(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), "bench", "--redis-url", srv.URL(), "--callers", "4", "--duration", "30s", "--json")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once the run has written keys.
	for {
		n, err := redis.Int(c.Do("DBSIZE"))
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("bench wrote no key\nstderr:\n%s", &errOut)
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != exitInterrupted {
		t.Fatalf("bench after Ctrl-C: %v, want exit %d\nstdout:\n%s\nstderr:\n%s", err, exitInterrupted, &out, &errOut)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("bench took %v to stop after Ctrl-C", d)
	}
	if !strings.HasSuffix(errOut.String(), "hammerredis bench: interrupted; cleaned up\n") {
		t.Errorf("stderr does not end with \"interrupted; cleaned up\":\n%s", &errOut)
	}
	var rep struct {
		Interrupted bool
		KeysDeleted int `json:"keys_deleted"`
		Cells       []any
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || !rep.Interrupted || len(rep.Cells) != 0 || rep.KeysDeleted < 1 {
		t.Errorf("stdout = %s (%v)\nwant interrupted true, no finished cell and the deleted keys", &out, err)
	}
	if n, err := redis.Int(c.Do("DBSIZE")); err != nil || n != 0 {
		t.Errorf("DBSIZE after an interrupted bench = %d, %v; want 0", n, err)
	}
}

func TestProgressLine(t *testing.T) {
	for _, tt := range []struct {
		callers int
		frac    float64
		width   int
		left    time.Duration
		rate    float64
		want    string
	}{
		{64, 0.52, 18, 3100 * time.Millisecond, 81234, "callers 64  [#########.........]  52%  3.1s left  81.2k checks/s"},
		{1, 0, 10, 5 * time.Second, 0, "callers 1  [..........]   0%  5.0s left  0 checks/s"},
		{256, 1, 10, 0, 1_234_567, "callers 256  [##########]  100%  0.0s left  1.23M checks/s"},
		{4, 1.7, 4, -time.Second, 999, "callers 4  [####]  100%  0.0s left  999 checks/s"},
		{4, -0.2, 4, 9 * time.Second, 1500, "callers 4  [....]   0%  9.0s left  1.5k checks/s"},
	} {
		if got := progressLine(tt.callers, tt.frac, tt.width, tt.left, tt.rate); got != tt.want {
			t.Errorf("progressLine(%d, %v, %d, %v, %v) = %q, want %q", tt.callers, tt.frac, tt.width, tt.left, tt.rate, got, tt.want)
		}
	}
}

func TestProgressOutput(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{w: &buf, live: true}
	p.draw("a")
	p.done("b")
	if got, want := buf.String(), "\ra\x1b[K\rb\x1b[K\n"; got != want {
		t.Errorf("on a terminal, draw and done wrote %q, want %q", got, want)
	}
	buf.Reset()
	p = newProgress(&buf)
	p.draw("a")
	p.done("b")
	p.clear()
	if got, want := buf.String(), "b\n"; got != want {
		t.Errorf("elsewhere, draw, done and clear wrote %q, want %q", got, want)
	}
}

func TestShortDuration(t *testing.T) {
	for _, tt := range []struct{ d, want time.Duration }{
		{999, 999},
		{98_345, 98_300},
		{201_456, 201_000},
		{999_700, time.Millisecond},
		{1_234_567, 1_230_000},
	} {
		if got := shortDuration(tt.d); got != tt.want {
			t.Errorf("shortDuration(%v) = %v, want %v", tt.d, got, tt.want)
		}
	}
	if got := padLeft("1µs", 5); got != "  1µs" {
		t.Errorf("padLeft(1µs, 5) = %q, want two spaces before", got)
	}
}

func TestGlobEscape(t *testing.T) {
	if got, want := globEscape(`a*b?c[d]e\f:`), `a\*b\?c\[d\]e\\f:`; got != want {
		t.Errorf("globEscape = %q, want %q", got, want)
	}
}
