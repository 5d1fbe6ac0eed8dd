package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseBenchmarkCSV(t *testing.T) {
	out := `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"EVALSHA 329a 1 key:__rand_int__ 1700000000000 1 61","189035.92","16.541","4.768","15.895","24.271","32.047","34.079"
`
	rps, p50, p99, err := parseBenchmarkCSV(out)
	if err != nil || rps != 189035.92 || p50 != 15895*time.Microsecond || p99 != 32047*time.Microsecond {
		t.Fatalf("parseBenchmarkCSV = %v, %v, %v, %v; want 189035.92, 15.895ms, 32.047ms, nil", rps, p50, p99, err)
	}
	if _, _, _, err := parseBenchmarkCSV(`"test","rps"` + "\n"); err == nil {
		t.Fatal("parseBenchmarkCSV(header only) = nil error, want one")
	}
}

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
BenchmarkCountHit/redigo-conn/serial-2         	   31009	     77312 ns/op	     184 B/op	       4 allocs/op
BenchmarkCountHit/backend/serial-2             	   24000	    100123 ns/op	     520 B/op	      13 allocs/op
PASS
`
	got := parseGoBench(out)
	if len(got) != 2 || got[1].name != "BenchmarkCountHit/backend/serial-2" || got[1].nsPerOp != 100123 ||
		got[1].bytesPerOp != 520 || got[1].allocsPerOp != 13 || !got[1].hasAllocsCol {
		t.Fatalf("parseGoBench = %+v", got)
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-quick", "-callers", "1,8", "-workloads", "hot", "-libs", "hammer,redigo"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.duration != 200*time.Millisecond || len(cfg.callers) != 2 || cfg.callers[1] != 8 ||
		len(cfg.workloads) != 1 || cfg.workloads[0].name != "hot" || len(cfg.drivers) != 5 {
		t.Fatalf("parseFlags = %+v", cfg)
	}
	if !cfg.runMain || len(cfg.rows7) != 4 || len(cfg.callers7) != 3 || cfg.callers7[2] != 256 {
		t.Fatalf("parseFlags: runMain %v, %d Hammer 7 rows, callers %v: want true, the 4 hammerredis rows, 16,64,256",
			cfg.runMain, len(cfg.rows7), cfg.callers7)
	}
	for _, bad := range [][]string{{"-callers", "8,1"}, {"-callers", "0"}, {"-workloads", "cold"}, {"-libs", "nope"}, {"extra"},
		{"-section", "h6"}, {"-h7-callers", "256,64"}, {"-section", "h7", "-libs", "redigo"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) = nil error, want one", bad)
		}
	}
}

// TestSmoke runs one short cell per driver and each workload's id picker,
// a scaled-down ceiling, and writes the report and charts: every driver
// must complete checks without errors or denials.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("smoke run of every driver against a private redis-server")
	}
	cfg := config{
		duration:     150 * time.Millisecond,
		warmup:       50 * time.Millisecond,
		callers:      []int{3},
		workloads:    workloads,
		runMain:      true,
		drivers:      drivers,
		ceiling:      true,
		ceilingScale: 0.01,
		cmdline:      "go test",
		out:          t.TempDir(),
		progress:     t.Logf,
	}
	// One workload per driver is enough to prove each works: run the hot
	// mix only for the first.
	rep, err := measure(context.Background(), withWorkloads(cfg, workloads[:1]))
	if err != nil {
		t.Fatal(err)
	}
	hot, err := measure(context.Background(), withDrivers(withWorkloads(cfg, workloads[1:]), drivers[:1]))
	if err != nil {
		t.Fatal(err)
	}
	rep.results = append(rep.results, hot.results...)
	rep.cfg.workloads = workloads

	if rep.ceilingErr != nil {
		t.Fatalf("redis-benchmark: %v", rep.ceilingErr)
	}
	for _, c := range rep.ceilings {
		if c.err != nil || c.rps <= 0 {
			t.Errorf("redis-benchmark %s: %v req/s, %v", c.label, c.rps, c.err)
		}
	}
	if len(rep.results) != len(drivers)+1 {
		t.Fatalf("got %d results, want %d", len(rep.results), len(drivers)+1)
	}
	for _, r := range rep.results {
		if r.checks == 0 || r.errors != 0 || r.denied != 0 || r.p50 <= 0 || r.p99 < r.p50 || r.conns < 1 {
			t.Errorf("%s, %s: %d checks, %d errors (%s), %d denied, p50 %v, p99 %v, %d conns: want checks, no errors",
				r.driver.name, r.workload.name, r.checks, r.errors, r.firstErr, r.denied, r.p50, r.p99, r.conns)
		}
		// Every driver runs one Lua script per check at most; hammerredis may
		// merge the hits on one key.
		if spc := r.scriptsPerCheck(); spc <= 0 || spc > 1.05 || r.checksPerRead() <= 0 {
			t.Errorf("%s, %s: %.2f script runs per check, %.2f checks per read: want (0, 1] and > 0",
				r.driver.name, r.workload.name, spc, r.checksPerRead())
		}
	}

	if err := rep.write(nil); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(cfg.out, "bench.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range drivers {
		if !strings.Contains(string(md), "| "+d.name+" |") {
			t.Errorf("bench.md has no row for %s", d.name)
		}
	}
	for _, name := range []string{"bench.png", "bench-hot.png"} {
		png, err := os.ReadFile(filepath.Join(cfg.out, name))
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
			t.Errorf("%s: not a PNG (%d bytes, %v)", name, len(png), err)
		}
	}
}

func withWorkloads(cfg config, wls []workload) config {
	cfg.workloads = wls
	return cfg
}

func withDrivers(cfg config, ds []driver) config {
	cfg.drivers = ds
	cfg.ceiling = false
	return cfg
}
