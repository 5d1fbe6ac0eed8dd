// Command algochart draws docs/algorithms.svg: one traffic pattern run
// through each of Hammer 7's four algorithms, with comparable numbers, and
// which hits each allowed and denied over time. make charts runs it.
//
// It drives package hammer7's limiters on package memory's backend, which
// decides exactly as the Redis backend's scripts do, with a stepped clock:
// the output is the same on every run and on every machine. It also prints
// the allowed hits per algorithm and phase as a Markdown table.
//
// Usage:
//
//	go run ./internal/cmd/algochart [-out docs/algorithms.svg]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hammer-go/hammerredis/hammer7"
	"github.com/hammer-go/hammerredis/memory"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "algochart:", err)
		os.Exit(1)
	}
}

// run parses args, simulates, writes the SVG and prints the table to
// stdout; flag errors and usage go to stderr.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("algochart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "docs/algorithms.svg", "where to write the SVG chart")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	runs, err := simulate()
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, []byte(render(runs)), 0o644); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "wrote %s\n\n%s", *out, table(runs))
	return err
}

// start is the clock at t = 0: a whole second, a multiple of 10 s (so the
// fixed windows start at 0, 10 s, 20 s …), far in the future because a
// fix-window key expires at an absolute time on the backend's clock.
var start = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)

// span is the chart's time axis, from start.
const span = 60 * time.Second

// phase is a stretch of the traffic: one request every Every from From
// until before To.
type phase struct {
	Name            string
	From, To, Every time.Duration
}

// traffic is the one pattern that every algorithm gets, in time order.
var traffic = []phase{
	{"1 per 2 s", 500 * time.Millisecond, 10 * time.Second, 2 * time.Second},
	{"5/s over the 20 s boundary", 18 * time.Second, 22 * time.Second, 200 * time.Millisecond},
	{"2/s", 24 * time.Second, 40 * time.Second, 500 * time.Millisecond},
	{"10 in 1 s after idling", 50 * time.Second, 51 * time.Second, 100 * time.Millisecond},
	{"then 2/s", 51 * time.Second, 60 * time.Second, 500 * time.Millisecond},
}

// algo is one algorithm with the numbers the chart uses.
type algo struct {
	Name   string // Hammer 7's name
	Label  string // the numbers, in words
	Policy hammer7.Policy
	Limit  int64 // the limit or capacity
}

// algos are the four rows: the windows allow 10 per 10 s, the buckets hold
// 10 and leak or refill 1 per second, the same long-run rate.
var algos = []algo{
	{"fix_window", "10 per fixed 10 s window", hammer7.FixWindow{Prefix: "chart.fix", Window: 10 * time.Second, Limit: 10}, 10},
	{"sliding_window", "10 in any 10 s", hammer7.SlidingWindow{Prefix: "chart.sliding", Window: 10 * time.Second, Limit: 10}, 10},
	{"leaky_bucket", "capacity 10, leaks 1/s", hammer7.LeakyBucket{Prefix: "chart.leaky", LeakPerSecond: 1, Capacity: 10}, 10},
	{"token_bucket", "capacity 10, refills 1/s", hammer7.TokenBucket{Prefix: "chart.token", RefillPerSecond: 1, Capacity: 10}, 10},
}

// hit is one request and what the limiter answered.
type hit struct {
	At      time.Duration // since start
	Phase   int           // index in traffic
	Allowed bool
	Count   int64 // Result.Count
}

// result is one algorithm's answers to the traffic.
type result struct {
	Algo algo
	Hits []hit
}

// simulate runs the traffic through each algorithm.
func simulate() ([]result, error) {
	rs := make([]result, 0, len(algos))
	for _, a := range algos {
		hits, err := simulate1(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.Name, err)
		}
		rs = append(rs, result{Algo: a, Hits: hits})
	}
	return rs, nil
}

// simulate1 runs the traffic through a, on a backend of its own, with one
// stepped clock for the backend (Redis TIME, key expiry) and the limiter
// (fix_window's now).
func simulate1(a algo) ([]hit, error) {
	now := start
	clock := func() time.Time { return now }
	b, err := memory.New(memory.Options{ExpiryMs: 60_000, CleanupInterval: -1, Clock: clock})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	l, err := hammer7.New(b, a.Policy)
	if err != nil {
		return nil, err
	}
	l = l.WithClock(clock)
	ctx := context.Background()
	var hits []hit
	for i, p := range traffic {
		for t := p.From; t < p.To; t += p.Every {
			now = start.Add(t)
			r, err := l.Hit(ctx, "client")
			if err != nil {
				return nil, fmt.Errorf("hit at %v: %w", t, err)
			}
			hits = append(hits, hit{At: t, Phase: i, Allowed: r.Allowed, Count: r.Count})
		}
	}
	return hits, nil
}

// allowed counts the allowed hits of hs for which keep is true.
func allowed(hs []hit, keep func(hit) bool) int {
	n := 0
	for _, h := range hs {
		if h.Allowed && keep(h) {
			n++
		}
	}
	return n
}

// table is a Markdown table of the allowed hits per algorithm and phase.
func table(rs []result) string {
	var b strings.Builder
	b.WriteString("| algorithm |")
	for _, p := range traffic {
		fmt.Fprintf(&b, " %s, %.4g–%.4g s |", p.Name, p.From.Seconds(), p.To.Seconds())
	}
	b.WriteString(" total |\n|---|")
	for range traffic {
		b.WriteString("---:|")
	}
	b.WriteString("---:|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s (%s) |", r.Algo.Name, r.Algo.Label)
		for i := range traffic {
			of := 0
			for _, h := range r.Hits {
				if h.Phase == i {
					of++
				}
			}
			fmt.Fprintf(&b, " %d of %d |", allowed(r.Hits, func(h hit) bool { return h.Phase == i }), of)
		}
		fmt.Fprintf(&b, " %d of %d |\n", allowed(r.Hits, func(hit) bool { return true }), len(r.Hits))
	}
	return b.String()
}
