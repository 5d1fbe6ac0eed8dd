package main

import (
	"fmt"
	"strings"
)

// The targets for hammerredis on this machine.
const (
	targetVsPeer      = 1.2  // from targetFromCallers up: at least 1.2x the fastest peer's checks/s
	targetVsPeerOne   = 1.0  // at 1 caller: at least the fastest peer's checks/s
	targetFromCallers = 4    // the smallest column targetVsPeer holds for
	targetP50VsRedigo = 1.05 // p50 at 1 caller within 5% of a bare redigo round trip
	targetAllocs      = 2    // allocations per CountHit in go test -bench -benchmem
)

// targetOfCeiling is the share of the pipelined redis-benchmark figure a
// column must reach on random ids, for the columns that have a target.
var targetOfCeiling = map[int]float64{64: 0.70, 256: 0.90}

// targetRow is one line of the targets table.
type targetRow struct {
	target, workload string
	callers          int
	// def is the default hammerredis row's figure, best the best hammerredis
	// row's figure and name.
	def, best string
	verdict   string
}

// verdict says whether the default configuration met a target, or only
// another one, or none.
func verdict(defOK, bestOK bool, bestName string) string {
	switch {
	case defOK:
		return "**met**"
	case bestOK:
		return "met by " + bestName + " only"
	default:
		return "**not met**"
	}
}

// The Hammer 7 issue's targets, at target7Callers callers: each
// algorithm's checks/s at least target7VsPeer[workload] times the fastest
// peer of its kind's, and on random ids at least target7OfCeiling of its
// own ceiling.
var (
	target7VsPeer    = map[string]float64{"random": 1.5, "hot": 3}
	target7Callers   = []int{64, 256}
	target7OfCeiling = 0.90
)

// targets evaluates the targets on the results: the main section's,
// then the Hammer 7 section's.
func (r *report) targets() []targetRow {
	return append(r.targetsMain(), r.targets7()...)
}

// targets7 evaluates the Hammer 7 section's targets. The default figure is
// the algorithm's hammerredis row, the only one of its kind.
func (r *report) targets7() []targetRow {
	var rows []targetRow
	for _, hr := range r.hammerRows7() {
		a := hr.algos[0]
		if len(r.peers7(a)) == 0 {
			rows = append(rows, targetRow{target: fmt.Sprintf("%s: ≥ %.1f× (random ids), ≥ %.0f× (hot ids) the fastest peer of its kind",
				a, target7VsPeer["random"], target7VsPeer["hot"]), workload: "–", def: "–", best: "–", verdict: "n/a: no peer of its kind"})
		}
		for _, wl := range r.cfg.workloads {
			want, ok := target7VsPeer[wl.name]
			if !ok {
				continue
			}
			for _, n := range target7Callers {
				if !containsInt(r.cfg.callers7, n) {
					continue
				}
				res, ok := r.find7(hr.key, wl.name, n)
				ok = ok && res.checks > 0
				if peer, pok := r.fastestPeer7(a, wl.name, n); pok {
					score := res.rate() / peer.rate()
					row := targetRow{target: fmt.Sprintf("%s: ≥ %.1f× the fastest peer of its kind (%s, %s)", a, want, peer.driver.key, fmtRate(peer.rate())),
						workload: wl.name, callers: n, def: "–", best: "–", verdict: "n/a"}
					if ok {
						row.def = fmt.Sprintf("%.2f×", score)
						row.verdict = verdict(score >= want, false, "")
					}
					rows = append(rows, row)
				}
				if c := r.ceiling7(a); c > 0 && wl.name == "random" {
					score := res.rate() / c
					row := targetRow{target: fmt.Sprintf("%s: ≥ %.0f%% of its own redis-benchmark ceiling (%s)", a, 100*target7OfCeiling, fmtRate(c)),
						workload: wl.name, callers: n, def: "–", best: "–", verdict: "n/a"}
					if ok {
						row.def = fmt.Sprintf("%.0f%%", 100*score)
						row.verdict = verdict(score >= target7OfCeiling, false, "")
					}
					rows = append(rows, row)
				}
			}
		}
	}
	return rows
}

// containsInt reports whether list holds n.
func containsInt(list []int, n int) bool {
	for _, x := range list {
		if x == n {
			return true
		}
	}
	return false
}

// targetsMain evaluates the main section's targets.
func (r *report) targetsMain() []targetRow {
	var rows []targetRow
	var hammers []driver
	for _, d := range r.drivers() {
		if !d.peer && !d.cluster { // the targets are about one server
			hammers = append(hammers, d)
		}
	}
	if len(hammers) == 0 {
		return nil
	}
	// best returns the hammerredis row with the highest score.
	best := func(wl string, n int, score func(result) float64) (result, bool) {
		var b result
		found := false
		for _, d := range hammers {
			if res, ok := r.find(d.key, wl, n); ok && res.checks > 0 && (!found || score(res) > score(b)) {
				b, found = res, true
			}
		}
		return b, found
	}
	for _, wl := range r.cfg.workloads {
		for _, n := range r.cfg.callers {
			if n > 1 && n < targetFromCallers {
				continue
			}
			want := targetVsPeer
			if n == 1 {
				want = targetVsPeerOne
			}
			def, defOK := r.find(defaultHammer, wl.name, n)
			defOK = defOK && def.checks > 0
			if peer, ok := r.fastest(true, wl.name, n); ok {
				score := func(res result) float64 { return res.rate() / peer.rate() }
				row := targetRow{target: fmt.Sprintf("≥ %.1f× the fastest peer's checks/s (%s, %s)", want, peer.driver.key, fmtRate(peer.rate())),
					workload: wl.name, callers: n, def: "–", best: "–", verdict: "n/a"}
				b, bok := best(wl.name, n, score)
				if defOK {
					row.def = fmt.Sprintf("%.2f×", score(def))
				}
				if bok {
					row.best = fmt.Sprintf("%.2f× (%s)", score(b), b.driver.key)
					row.verdict = verdict(defOK && score(def) >= want, score(b) >= want, b.driver.key)
				}
				rows = append(rows, row)
			}
			share, ok := targetOfCeiling[n]
			if c := r.ceiling(); ok && c > 0 && wl.name == "random" {
				score := func(res result) float64 { return res.rate() / c }
				row := targetRow{target: fmt.Sprintf("≥ %.0f%% of the redis-benchmark ceiling (%s)", 100*share, fmtRate(c)),
					workload: wl.name, callers: n, def: "–", best: "–", verdict: "n/a"}
				b, bok := best(wl.name, n, score)
				if defOK {
					row.def = fmt.Sprintf("%.0f%%", 100*score(def))
				}
				if bok {
					row.best = fmt.Sprintf("%.0f%% (%s)", 100*score(b), b.driver.key)
					row.verdict = verdict(defOK && score(def) >= share, score(b) >= share, b.driver.key)
				}
				rows = append(rows, row)
			}
		}
		if base, ok := r.find(redigoDriver.key, wl.name, 1); ok && base.checks > 0 {
			score := func(res result) float64 { return -float64(res.p50) / float64(base.p50) } // higher is better
			row := targetRow{target: fmt.Sprintf("p50 within %.0f%% of a bare redigo round trip (%s)", 100*(targetP50VsRedigo-1), fmtDur(base.p50)),
				workload: wl.name, callers: 1, def: "–", best: "–", verdict: "n/a"}
			def, defOK := r.find(defaultHammer, wl.name, 1)
			defOK = defOK && def.checks > 0
			b, bok := best(wl.name, 1, score)
			if defOK {
				row.def = fmt.Sprintf("%s (%.2f×)", fmtDur(def.p50), -score(def))
			}
			if bok {
				row.best = fmt.Sprintf("%s (%.2f×, %s)", fmtDur(b.p50), -score(b), b.driver.key)
				row.verdict = verdict(defOK && -score(def) <= targetP50VsRedigo, -score(b) <= targetP50VsRedigo, b.driver.key)
			}
			rows = append(rows, row)
		}
	}
	if gb := r.goBench; gb != nil {
		row := targetRow{target: fmt.Sprintf("≤ %d allocations per CountHit (go test -bench -benchmem)", targetAllocs),
			workload: "–", def: "–", best: "–", verdict: "n/a"}
		var worst goBenchLine
		n := 0
		for _, l := range gb.lines {
			if strings.Contains(strings.ToLower(l.name), "backend") && l.hasAllocsCol {
				if n == 0 || l.allocsPerOp > worst.allocsPerOp {
					worst = l
				}
				n++
			}
		}
		if n > 0 {
			row.def = fmt.Sprintf("at most %.0f allocs/op over %d backend benchmark%s (most: %s)",
				worst.allocsPerOp, n, plural(n), strings.TrimPrefix(worst.name, "Benchmark"))
			row.verdict = verdict(worst.allocsPerOp <= targetAllocs, false, "")
		} else if gb.err != nil {
			row.def = "benchmark failed (see below)"
		}
		rows = append(rows, row)
	}
	return rows
}

func (r *report) writeTargets(p printer) {
	rows := r.targets()
	if len(rows) == 0 {
		return
	}
	p("## Targets")
	p("")
	if len(r.targetsMain()) > 0 {
		p("The issue's targets for this machine. \"default\" is hammerredis with default settings (%s); \"best\" is the best "+
			"hammerredis row of the cell.", defaultHammer)
	} else {
		p("The issue's targets for this machine.")
	}
	if len(r.targets7()) > 0 {
		p("The Hammer 7 targets (rows starting with an algorithm's name) are of the section \"Hammer 7 algorithms\" below: " +
			"\"default\" is that algorithm's hammerredis row (pool 1, defaults), the only one of its kind.")
	}
	p("")
	p("| target | workload | callers | default | best | verdict |")
	p("|---|---|---|---|---|---|")
	for _, t := range rows {
		callers := "–"
		if t.callers > 0 {
			callers = fmt.Sprint(t.callers)
		}
		p("| %s | %s | %s | %s | %s | %s |", t.target, t.workload, callers, t.def, t.best, t.verdict)
	}
	p("")
}
