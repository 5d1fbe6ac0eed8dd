package main

import (
	"fmt"
	"strings"

	"github.com/hammer-go/hammerredis/protocol"
)

// find7 returns the result of one cell of the Hammer 7 section.
func (r *report) find7(key, wl string, callers int) (result, bool) {
	return findIn(r.results7, key, wl, callers)
}

// ceiling7 returns algorithm a's ceiling, the better of its pipelined
// redis-benchmark runs; 0 when unknown.
func (r *report) ceiling7(a protocol.Algorithm) float64 {
	if c := r.ceil7[a]; c != nil {
		return c.best()
	}
	return 0
}

// peers7 returns the peers of algorithm a's kind among the section's rows.
func (r *report) peers7(a protocol.Algorithm) []row7 {
	var out []row7
	for _, row := range r.cfg.rows7 {
		if row.peer && row.of(a) {
			out = append(out, row)
		}
	}
	return out
}

// fastestPeer7 returns the fastest peer of algorithm a's kind in one column
// of the Hammer 7 section.
func (r *report) fastestPeer7(a protocol.Algorithm, wl string, callers int) (result, bool) {
	var best result
	found := false
	for _, row := range r.peers7(a) {
		res, ok := r.find7(row.key, wl, callers)
		if ok && res.checks > 0 && (!found || res.rate() > best.rate()) {
			best, found = res, true
		}
	}
	return best, found
}

// hammerRows7 returns the section's hammerredis rows, one per algorithm.
func (r *report) hammerRows7() []row7 {
	var out []row7
	for _, row := range r.cfg.rows7 {
		if !row.peer {
			out = append(out, row)
		}
	}
	return out
}

// writeHammer7 writes the Hammer 7 section.
func (r *report) writeHammer7(p printer) {
	if len(r.cfg.rows7) == 0 {
		return
	}
	p("## Hammer 7 algorithms")
	p("")
	p("hammerredis's Hammer 7 limiters through the user-level API, `hammer7.New(backend, policy).Hit(ctx, id)`, one row "+
		"per algorithm, each on a backend with default settings (pool 1, pipelined), beside the Go limiters on Redis that "+
		"implement the same idea, and against redis-benchmark running that algorithm's own script: its ceiling. Same "+
		"method as the cells above: cells in the order workload, callers, row; a fresh limiter and key prefix per cell; "+
		"%v of warm-up, %v of measurement; FLUSHALL after each. Noise: a cell during which other processes kept more "+
		"than %.2f cores busy is measured again, up to %d more times and %d extra runs in all for this section, and the "+
		"quietest run is kept. Every check is allowed: windows of 1 minute with a limit of %d, buckets of capacity %d "+
		"leaking or refilling %d per second; what is measured is the Redis work of a check.",
		r.cfg.warmup, r.cfg.duration, noisyCores, noisyRetries, r.cfg.reruns7, limit, limit, rate7)
	p("")
	p("Peers of each kind: for **fix_window**, ulule/limiter's fixed window and rueidis running hammerredis's own " +
		"fix_window script; for **leaky_bucket** and **token_bucket**, go-redis/redis_rate's GCRA (a leaky bucket as a " +
		"meter, which admits what a token bucket of the same rate and burst admits); for **sliding_window**, none: no Go " +
		"sliding-window limiter on Redis is among the peers (no well-known one was found among the modules the Go module " +
		"proxy serves here), so sliding_window is compared with its ceiling only.")
	p("")

	versions := moduleVersions()
	p("### Rows and settings")
	p("")
	p("| row | kind | module | call per check | Redis work per check | client settings |")
	p("|---|---|---|---|---|---|")
	for _, row := range r.cfg.rows7 {
		var mods []string
		for _, m := range row.modules {
			v := versions[m]
			if v == "" {
				v = "(version unknown)"
			}
			if strings.HasPrefix(v, "this repository") {
				mods = append(mods, m+", "+v)
			} else {
				mods = append(mods, m+" "+v)
			}
		}
		p("| %s | %s | %s | `%s` | %s | %s |", row.name, row.kind, strings.Join(mods, "<br>"), row.api, row.work, row.settings)
	}
	p("")

	r.writeCeilings7(p)
	for _, wl := range r.cfg.workloads {
		r.writeWorkload7(p, wl)
	}
}

func (r *report) writeCeilings7(p printer) {
	p("### redis-benchmark: each algorithm's ceiling")
	p("")
	if len(r.ceil7) == 0 {
		p("Not measured (-ceiling=false).")
		p("")
		return
	}
	p("redis-benchmark runs each algorithm's script by EVALSHA, after SCRIPT LOAD, with the arguments hammerredis "+
		"sends for the checks above (the clocked scripts read Redis TIME), on random keys (`key:__rand_int__`, `-r %d`), "+
		"%d connections pipelined %d deep, before the cells and again after them; the ceiling is the better of the two. "+
		"The scripts are the library's own (hammerredis.FixWindowLua, SlidingWindowLua, LeakyBucketLua, TokenBucketLua).",
		numIDs, ceilingSpec7.clients, ceilingSpec7.pipeline)
	p("")
	p("| algorithm | ceiling | run | requests/s | p50 | p99 | command |")
	p("|---|---|---|---|---|---|---|")
	for _, row := range r.hammerRows7() {
		a := row.algos[0]
		c := r.ceil7[a]
		if c == nil {
			continue
		}
		best := "–"
		if b := c.best(); b > 0 {
			best = fmtRate(b) + "/s"
		}
		if len(c.runs) == 0 {
			p("| %s | %s | failed: %v | | | | |", a, best, c.err)
			continue
		}
		for i, run := range c.runs {
			name, top := "", ""
			if i == 0 {
				name, top = a.String(), best
			}
			if run.err != nil {
				p("| %s | %s | %s | failed: %v | | | `%s` |", name, top, run.label, run.err, run.command)
				continue
			}
			p("| %s | %s | %s | %s | %s | %s | `%s` |", name, top, run.label, fmtRate(run.rps), fmtDur(run.p50), fmtDur(run.p99), run.command)
		}
		if c.err != nil && len(c.runs) > 0 {
			p("| | | failed: %v | | | | |", c.err)
		}
	}
	p("")
	p("(redis-benchmark's latencies are of a whole pipeline of %d.)", ceilingSpec7.pipeline)
	p("")
}

// comparison7 is a hammerredis row's figure against the fastest peer of its
// kind and its own ceiling, in one cell: "1.62× (rueidis-fix), 93%".
func (r *report) comparison7(a protocol.Algorithm, res result, wl string, n int) string {
	vs, pct := "–", "–"
	if len(r.peers7(a)) == 0 {
		vs = "no peer"
	} else if f, ok := r.fastestPeer7(a, wl, n); ok {
		vs = fmt.Sprintf("%.2f× (%s)", res.rate()/f.rate(), f.driver.key)
	}
	if c := r.ceiling7(a); c > 0 {
		pct = fmt.Sprintf("%.0f%%", 100*res.rate()/c)
	}
	return vs + ", " + pct
}

func (r *report) writeWorkload7(p printer, wl workload) {
	p("### Hammer 7, workload %q: %s", wl.name, wl.desc)
	p("")
	header := func(title string, kind bool) {
		p("#### %s", title)
		p("")
		var cols, rule strings.Builder
		for _, n := range r.cfg.callers7 {
			fmt.Fprintf(&cols, " %d caller%s |", n, plural(n))
			rule.WriteString("---|")
		}
		if kind {
			p("| row | kind |%s", cols.String())
			p("|---|---|%s", rule.String())
		} else {
			p("| row |%s", cols.String())
			p("|---|%s", rule.String())
		}
	}
	row := func(first string, cell func(n int) string) {
		var b strings.Builder
		for _, n := range r.cfg.callers7 {
			fmt.Fprintf(&b, " %s |", cell(n))
		}
		p("| %s |%s", first, b.String())
	}
	each := func(key string, cell func(res result) string) func(n int) string {
		return func(n int) string {
			res, ok := r.find7(key, wl.name, n)
			return cellText(res, ok, cell)
		}
	}

	header("checks/s", true)
	for _, rw := range r.cfg.rows7 {
		row(rw.name+" | "+rw.kind, each(rw.key, func(res result) string { return fmtRate(res.rate()) }))
	}
	for _, rw := range r.hammerRows7() {
		a := rw.algos[0]
		row(fmt.Sprintf("*%s: vs fastest peer of its kind, %% of its ceiling* | ", a), each(rw.key, func(res result) string {
			return r.comparison7(a, res, wl.name, res.callers)
		}))
	}
	p("")

	tables := []struct {
		title string
		cell  func(res result) string
	}{
		{"latency p50 / p99", func(res result) string { return fmtDur(res.p50) + " / " + fmtDur(res.p99) }},
		{"allocations per check", func(res result) string { return fmt.Sprintf("%.1f", res.allocs) }},
		{"checks per Redis socket read (1 = one round trip per check; more = pipelined)", func(res result) string {
			if res.reads <= 0 {
				return "?"
			}
			return fmt.Sprintf("%.1f", res.checksPerRead())
		}},
		{"Redis script runs per check (1 = one EVALSHA per check; less = checks merged)", func(res result) string {
			if res.scripts <= 0 {
				return "?"
			}
			return fmt.Sprintf("%.2f", res.scriptsPerCheck())
		}},
		{"Redis connections", func(res result) string {
			if res.conns < 0 {
				return "?"
			}
			return fmt.Sprint(res.conns)
		}},
	}
	for _, t := range tables {
		header(t.title, false)
		for _, rw := range r.cfg.rows7 {
			row(rw.name, each(rw.key, t.cell))
		}
		p("")
	}

	writeProblems(p, r.results7, wl.name)
}
