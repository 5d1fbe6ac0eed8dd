package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hammer-go/hammerredis/internal/latency"
)

// cell is one measurement: one driver, one workload, one number of callers.
type cell struct {
	driver   driver
	workload workload
	callers  int
	// section is "" for the main cells, section7 for the Hammer 7 ones.
	section string
}

// result is what one cell measured.
type result struct {
	cell
	// checks is how many decisions completed while measuring.
	checks int64
	// denied counts the decisions that were not allowed (expected: 0).
	denied int64
	// errors counts failed checks, not included in checks.
	errors int64
	// firstErr is the first failure, "" when none.
	firstErr string
	// elapsed is the measuring time.
	elapsed time.Duration
	// p50 and p99 are latency percentiles of one check.
	p50, p99 time.Duration
	// allocs is the process's heap allocations per check while measuring.
	allocs float64
	// conns is how many client connections Redis had in the middle of the
	// measurement, the harness's own not counted.
	conns int
	// otherCPU is how many cores other processes (not this one, not
	// redis-server) kept busy during the measurement; -1 when unknown.
	otherCPU float64
	// reruns is how many times the cell was measured again because other
	// processes were busy; the result is the quietest run.
	reruns int
	// scripts is how many scripts Redis ran during the measurement, 0
	// when unknown.
	scripts int64
	// reads is how many socket reads Redis made during the measurement
	// (INFO stats total_reads_processed), 0 when unknown.
	reads int64
	// took is the wall time of the cell, reruns, opening and closing
	// included (and the cluster's start for the cell that started it).
	took time.Duration
}

// scriptsPerCheck returns how many Lua scripts Redis ran per check: 1 for a
// client that runs one per check, less for one that merges checks; 0 when
// unknown.
func (r result) scriptsPerCheck() float64 {
	if r.scripts <= 0 || r.checks == 0 {
		return 0
	}
	return float64(r.scripts) / float64(r.checks)
}

// checksPerRead returns how many checks one Redis socket read carried on
// average: about 1 without pipelining; 0 when unknown.
func (r result) checksPerRead() float64 {
	if r.reads <= 0 {
		return 0
	}
	return float64(r.checks) / float64(r.reads)
}

// rate returns the checks per second.
func (r result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.checks) / r.elapsed.Seconds()
}

// Phases of a cell, in order.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// callerStats is one caller's record, owned by it until the cell ends.
type callerStats struct {
	hist           latency.Histogram
	checks, denied int64
	errors         int64
	firstErr       error
}

// runCell opens the driver, runs c.callers goroutines that check ids of the
// workload back to back for warmup and then duration, and closes the
// checker. Only the checks that complete during the measurement count.
// Recording a check allocates nothing, so allocs are the driver's own
// (client goroutines included).
func runCell(ctx context.Context, srv *target, c cell, prefix string, warmup, duration time.Duration) (result, error) {
	res := result{cell: c}
	chk, err := c.driver.open(ctx, cellEnv{addr: srv.addr, seeds: srv.seeds, prefix: prefix, callers: c.callers})
	if err != nil {
		return res, fmt.Errorf("%s: open: %w", c.driver.name, err)
	}
	defer chk.close()

	stats := make([]*callerStats, c.callers)
	for i := range stats {
		stats[i] = new(callerStats)
	}
	var phase atomic.Int32
	var wg sync.WaitGroup
	seed := uint64(time.Now().UnixNano())
	for g := range c.callers {
		wg.Add(1)
		go func(st *callerStats, r *rand.Rand) {
			defer wg.Done()
			for {
				ph := phase.Load()
				if ph == phaseStop {
					return
				}
				id := c.workload.next(r)
				t0 := time.Now()
				allowed, err := chk.check(ctx, id)
				lat := time.Since(t0)
				if phase.Load() != phaseMeasure {
					continue
				}
				switch {
				case err != nil:
					st.errors++
					if st.firstErr == nil {
						st.firstErr = err
					}
				case !allowed:
					st.denied++
					fallthrough
				default:
					st.checks++
					st.hist.Record(lat)
				}
			}
		}(stats[g], rand.New(rand.NewPCG(seed, uint64(g))))
	}

	sleep(ctx, warmup)
	reads0, rerr := srv.readsProcessed()
	scripts0, serr := srv.scriptRuns()
	cpu0 := sampleCPU(srv.pids)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	phase.Store(phaseMeasure)
	sleep(ctx, duration/2)
	res.conns, err = srv.connectedClients()
	if err != nil {
		res.conns = -1
	}
	sleep(ctx, duration-time.Since(start))
	res.elapsed = time.Since(start)
	runtime.ReadMemStats(&m1)
	reads1, rerr1 := srv.readsProcessed()
	scripts1, serr1 := srv.scriptRuns()
	res.otherCPU = cpu0.othersCores(sampleCPU(srv.pids), runtime.NumCPU())
	phase.Store(phaseStop)
	if rerr == nil && rerr1 == nil {
		res.reads = reads1 - reads0
	}
	if serr == nil && serr1 == nil {
		res.scripts = scripts1 - scripts0
	}
	wg.Wait()

	var all latency.Histogram
	for _, st := range stats {
		res.checks += st.checks
		res.denied += st.denied
		res.errors += st.errors
		if st.firstErr != nil && res.firstErr == "" {
			res.firstErr = st.firstErr.Error()
		}
		all.Merge(&st.hist)
	}
	res.p50, res.p99 = all.Quantile(0.50), all.Quantile(0.99)
	if res.checks > 0 {
		res.allocs = float64(m1.Mallocs-m0.Mallocs) / float64(res.checks)
	}
	return res, ctx.Err()
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// gomaxprocs returns the current GOMAXPROCS.
func gomaxprocs() int { return runtime.GOMAXPROCS(0) }
