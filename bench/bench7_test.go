package main

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hammer-go/hammerredis/protocol"
)

func TestCommand7(t *testing.T) {
	now := int64(1_800_000_030_000) // 30 s into a minute
	for _, tc := range []struct {
		algo protocol.Algorithm
		want []string
	}{
		{protocol.FixWindow, []string{"hit", "1", "1800000060000"}},
		{protocol.SlidingWindow, []string{"hit", "60", "1000000000", "1", ""}},
		{protocol.LeakyBucket, []string{"hit", "1000000000", "1000000000", "1", ""}},
		{protocol.TokenBucket, []string{"hit", "1000000000", "1000000000", "1", ""}},
	} {
		got := command7(algoOf(tc.algo), "sha", now)
		want := append([]string{"EVALSHA", "sha", "1", "key:__rand_int__"}, tc.want...)
		if !slices.Equal(got, want) {
			t.Errorf("command7(%s) = %q, want %q", tc.algo, got, want)
		}
	}
	// Near a window's end, the ceiling counts in the next window.
	for _, tc := range []struct{ now, want int64 }{
		{1_800_000_000_000, 1_800_000_060_000},
		{1_800_000_044_999, 1_800_000_060_000},
		{1_800_000_045_001, 1_800_000_120_000},
	} {
		if got := ceilingWindowEnd(tc.now); got != tc.want {
			t.Errorf("ceilingWindowEnd(%d) = %d, want %d", tc.now, got, tc.want)
		}
	}
	if got := shellJoin([]string{"EVALSHA", "x", ""}); got != "EVALSHA x ''" {
		t.Errorf("shellJoin = %q, want %q", got, "EVALSHA x ''")
	}
}

func TestRows7(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range rows7 {
		if seen[r.key] {
			t.Errorf("two Hammer 7 rows with key %q", r.key)
		}
		seen[r.key] = true
		if len(r.algos) == 0 || r.kind == "" || r.open == nil {
			t.Errorf("row %s: algos %v, kind %q, open set %v", r.key, r.algos, r.kind, r.open != nil)
		}
		if !r.peer && len(r.algos) != 1 {
			t.Errorf("hammerredis row %s has algorithms %v, want one", r.key, r.algos)
		}
	}
	if got := algosOf(rows7); !slices.Equal(got, []protocol.Algorithm{protocol.FixWindow, protocol.SlidingWindow,
		protocol.LeakyBucket, protocol.TokenBucket}) {
		t.Errorf("algosOf(rows7) = %v, want the four algorithms in order", got)
	}
	for _, a := range algosOf(rows7) {
		if err := policy7Valid(a); err != nil {
			t.Errorf("%s: %v", a, err)
		}
	}
}

// policy7Valid checks that algorithm a's row policy is one the library
// accepts, by the protocol's rules.
func policy7Valid(a protocol.Algorithm) error {
	p := protocol.Policy{Algorithm: a, Prefix: "h1:r0", Limit: limit}
	if a.IsWindow() {
		p.ScaleMs = windowMs
	} else {
		p.Rate = rate7
	}
	return protocol.Hit{Policy: p, ID: ids[0], Cost: 1, Now: time.Now().UnixMilli()}.Validate()
}

func TestParseFlagsSection(t *testing.T) {
	cfg, err := parseFlags([]string{"-section", "h7", "-h7-callers", "16,64"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.runMain || len(cfg.drivers) != 0 || len(cfg.rows7) != len(rows7) || !slices.Equal(cfg.callers7, []int{16, 64}) {
		t.Fatalf("parseFlags(-section h7) = runMain %v, %d drivers, %d Hammer 7 rows, callers %v; want false, 0, %d, [16 64]",
			cfg.runMain, len(cfg.drivers), len(cfg.rows7), cfg.callers7, len(rows7))
	}
	cfg, err = parseFlags([]string{"-section", "main"})
	if err != nil || !cfg.runMain || len(cfg.rows7) != 0 || len(cfg.drivers) != len(drivers) {
		t.Fatalf("parseFlags(-section main) = runMain %v, %d Hammer 7 rows, %d drivers, %v", cfg.runMain, len(cfg.rows7), len(cfg.drivers), err)
	}
	cfg, err = parseFlags([]string{"-libs", "h7-fix,rueidis-fix"})
	if err != nil || cfg.runMain || len(cfg.rows7) != 2 {
		t.Fatalf("parseFlags(-libs h7-fix,rueidis-fix) = runMain %v, %d Hammer 7 rows, %v; want false, 2", cfg.runMain, len(cfg.rows7), err)
	}
}

// report7 returns a report of the Hammer 7 section alone with every cell
// measured: each row checks rates[key] per second at 64 callers (twice
// that at 256) on random ids, and hot[key] times that on hot ids.
func report7(rates, hot map[string]float64, ceilings map[protocol.Algorithm]float64) *report {
	rep := &report{cfg: config{workloads: workloads, rows7: rows7, callers7: []int{64, 256}, reruns7: 6,
		duration: time.Second, warmup: time.Second}}
	for _, wl := range workloads {
		for _, n := range rep.cfg.callers7 {
			for _, row := range rows7 {
				rate := rates[row.key]
				if n == 256 {
					rate *= 2
				}
				if wl.name == "hot" {
					rate *= hot[row.key]
				}
				rep.results7 = append(rep.results7, result{cell: cell{driver: row.driver, workload: wl, callers: n, section: section7},
					checks: int64(rate), elapsed: time.Second, p50: time.Millisecond, p99: 2 * time.Millisecond, conns: 1, reads: 10, scripts: 10})
			}
		}
	}
	rep.ceil7 = map[protocol.Algorithm]*ceilings7{}
	for a, c := range ceilings {
		rep.ceil7[a] = &ceilings7{algo: a, runs: []ceilingRun{
			{label: "before the cells", ceiling: true, rps: c * 0.9, command: "redis-benchmark …"},
			{label: "again, after the cells", ceiling: true, rps: c, command: "redis-benchmark …"},
		}}
	}
	return rep
}

func TestTargets7(t *testing.T) {
	rep := report7(
		map[string]float64{"h7-fix": 90_000, "ulule": 30_000, "rueidis-fix": 50_000, "h7-sliding": 50_000,
			"h7-leaky": 60_000, "h7-token": 40_000, "redis_rate": 20_000},
		map[string]float64{"h7-fix": 3, "rueidis-fix": 1, "ulule": 1, "h7-sliding": 1, "h7-leaky": 1, "h7-token": 1, "redis_rate": 1},
		map[protocol.Algorithm]float64{protocol.FixWindow: 200_000, protocol.SlidingWindow: 100_000,
			protocol.LeakyBucket: 65_000, protocol.TokenBucket: 80_000})
	got := map[string]string{}
	for _, row := range rep.targets7() {
		got[row.target+"|"+row.workload+"|"+strconv.Itoa(row.callers)] = row.def + " " + row.verdict
	}
	for key, want := range map[string]string{
		// fix_window: 90k against rueidis-fix's 50k at 64, 180k against 100k at 256: 1.8×.
		"fix_window: ≥ 1.5× the fastest peer of its kind (rueidis-fix, 50.0k)|random|64":       "1.80× **met**",
		"fix_window: ≥ 90% of its own redis-benchmark ceiling (200.0k)|random|64":              "45% **not met**",
		"fix_window: ≥ 90% of its own redis-benchmark ceiling (200.0k)|random|256":             "90% **met**",
		"fix_window: ≥ 3.0× the fastest peer of its kind (rueidis-fix, 50.0k)|hot|64":          "5.40× **met**",
		"leaky_bucket: ≥ 1.5× the fastest peer of its kind (redis_rate, 20.0k)|random|64":      "3.00× **met**",
		"leaky_bucket: ≥ 3.0× the fastest peer of its kind (redis_rate, 20.0k)|hot|64":         "3.00× **met**",
		"token_bucket: ≥ 3.0× the fastest peer of its kind (redis_rate, 40.0k)|hot|256":        "2.00× **not met**",
		"sliding_window: ≥ 90% of its own redis-benchmark ceiling (100.0k)|random|256":         "100% **met**",
		"sliding_window: ≥ 1.5× (random ids), ≥ 3× (hot ids) the fastest peer of its kind|–|0": "– n/a: no peer of its kind",
	} {
		if got[key] != want {
			t.Errorf("target %q = %q, want %q", key, got[key], want)
		}
	}
	// 4 algorithms × ceiling at 2 callers, 3 with peers × 2 workloads × 2
	// callers, and sliding_window's n/a.
	if len(got) != 8+12+1 {
		t.Errorf("got %d Hammer 7 targets, want 21: %v", len(got), got)
	}
	for key := range got {
		if strings.Contains(key, "sliding_window: ≥ 3") || strings.Contains(key, "|hot|") && strings.Contains(key, "ceiling") {
			t.Errorf("unexpected target %q", key)
		}
	}
}

func TestWriteHammer7(t *testing.T) {
	rep := report7(
		map[string]float64{"h7-fix": 90_000, "ulule": 30_000, "rueidis-fix": 50_000, "h7-sliding": 50_000,
			"h7-leaky": 60_000, "h7-token": 40_000, "redis_rate": 20_000},
		map[string]float64{"h7-fix": 3, "rueidis-fix": 1, "ulule": 1, "h7-sliding": 1, "h7-leaky": 1, "h7-token": 1, "redis_rate": 1},
		map[protocol.Algorithm]float64{protocol.FixWindow: 200_000, protocol.SlidingWindow: 100_000,
			protocol.LeakyBucket: 65_000, protocol.TokenBucket: 80_000})
	var buf bytes.Buffer
	rep.writeMarkdown(&buf, nil)
	md := buf.String()
	for _, want := range []string{
		"## Targets",
		"## Hammer 7 algorithms",
		"### redis-benchmark: each algorithm's ceiling",
		"| fix_window | 200.0k/s | before the cells | 180.0k |",
		"| hammerredis fix_window | 1-minute fixed window, limit 1e9 | 90.0k | 180.0k |",
		"| *fix_window: vs fastest peer of its kind, % of its ceiling* |  | 1.80× (rueidis-fix), 45% | 1.80× (rueidis-fix), 90% |",
		"| *sliding_window: vs fastest peer of its kind, % of its ceiling* |  | no peer, 50% | no peer, 100% |",
		"| *token_bucket: vs fastest peer of its kind, % of its ceiling* |  | 2.00× (redis_rate), 50% |",
		"### Hammer 7, workload \"hot\"",
		"#### Redis connections",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report has no %q", want)
		}
	}
	// A Hammer 7 run writes none of the main section's tables.
	for _, absent := range []string{"## Libraries and settings", "## redis-benchmark: the ceiling", "## Workload "} {
		if strings.Contains(md, absent) {
			t.Errorf("Hammer 7 report has %q", absent)
		}
	}
}

// TestSmoke7 runs one short cell per Hammer 7 row on random ids and a
// scaled-down ceiling of each algorithm: every row must complete checks
// without errors or denials.
func TestSmoke7(t *testing.T) {
	if testing.Short() {
		t.Skip("smoke run of every Hammer 7 row against a private redis-server")
	}
	cfg := config{
		duration:     150 * time.Millisecond,
		warmup:       50 * time.Millisecond,
		workloads:    workloads[:1],
		rows7:        rows7,
		callers7:     []int{3},
		ceiling:      true,
		ceilingScale: 0.01,
		cmdline:      "go test",
		progress:     t.Logf,
	}
	rep, err := measure(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.results) != 0 || len(rep.results7) != len(rows7) {
		t.Fatalf("got %d main and %d Hammer 7 results, want 0 and %d", len(rep.results), len(rep.results7), len(rows7))
	}
	for _, r := range rep.results7 {
		if r.checks == 0 || r.errors != 0 || r.denied != 0 || r.p50 <= 0 || r.conns < 1 {
			t.Errorf("%s: %d checks, %d errors (%s), %d denied, p50 %v, %d conns: want checks, no errors",
				r.driver.name, r.checks, r.errors, r.firstErr, r.denied, r.p50, r.conns)
		}
		if spc := r.scriptsPerCheck(); spc <= 0 || spc > 1.05 {
			t.Errorf("%s: %.2f script runs per check, want (0, 1]", r.driver.name, spc)
		}
	}
	for _, a := range algosOf(rows7) {
		c := rep.ceil7[a]
		if c == nil || c.err != nil || len(c.runs) != 2 || c.best() <= 0 {
			t.Errorf("%s ceiling: %+v", a, c)
		}
	}
	var buf bytes.Buffer
	rep.writeMarkdown(&buf, nil)
	for _, row := range rows7 {
		if !strings.Contains(buf.String(), "| "+row.name+" |") {
			t.Errorf("report has no row for %s", row.name)
		}
	}
}
