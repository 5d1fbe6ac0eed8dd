package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/internal/latency"
)

// What each check of bench asks: one hit for an id in a window of
// benchWindow, under a limit no run reaches, so every check is allowed and
// costs the same.
const (
	benchWindow = 10 * time.Second
	benchLimit  = math.MaxInt64
	// benchIDCount is how many distinct ids the workloads draw from.
	benchIDCount = 100_000
	// The hot workload sends hotShare of its checks to the first hotIDs ids.
	hotIDs   = 10
	hotShare = 0.9
)

// benchIDs are the ids "user:0" to "user:99999", built once so that picking
// one allocates nothing.
var benchIDs = sync.OnceValue(func() []string {
	ids := make([]string, benchIDCount)
	for i := range ids {
		ids[i] = "user:" + strconv.Itoa(i)
	}
	return ids
})

// benchWorkload picks the id of each check, as an index in benchIDs.
type benchWorkload struct {
	name string // the --workload value
	desc string // how ids are picked, for the report
	next func(r *rand.Rand) int
}

var benchWorkloads = []benchWorkload{
	{
		name: "random",
		desc: fmt.Sprintf("ids uniform over %d", benchIDCount),
		next: func(r *rand.Rand) int { return r.IntN(benchIDCount) },
	},
	{
		name: "hot",
		desc: fmt.Sprintf("%.0f%% of checks on %d ids, the rest uniform over %d", hotShare*100, hotIDs, benchIDCount),
		next: func(r *rand.Rand) int {
			if r.Float64() < hotShare {
				return r.IntN(hotIDs)
			}
			return r.IntN(benchIDCount)
		},
	},
}

// cellResult is what one cell (one number of callers) measured.
type cellResult struct {
	callers int
	// checks counts the checks that succeeded during the measurement;
	// firstErr is the first failure, "" if none. The failures are counted
	// by kind in stats.
	checks   int64
	firstErr string
	elapsed  time.Duration
	// p50 and p99 are latency percentiles of the successful checks.
	p50, p99 time.Duration
	// allocs is the process's heap allocations (Mallocs) per check.
	allocs float64
	// stats is the cell's backend's counters at the end, for its errors by
	// kind.
	stats hammerredis.Stats
}

// rate returns the successful checks per second.
func (r cellResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.checks) / r.elapsed.Seconds()
}

// caller is the record of one caller goroutine, which alone writes it
// until the cell ends; checks is also read by the progress bar.
type caller struct {
	lat      latency.Histogram
	checks   atomic.Int64
	firstErr error
}

// measure runs callers goroutines that check ids of w back to back through
// lim for d, or until ctx is done, and returns what they did; it draws the
// progress bar meanwhile. Only checks that end before the measurement does
// count. The callers look at ctx only when a check fails: ctx.Err may lock.
func measure(ctx context.Context, lim *hammer.Limiter, w benchWorkload, callers int, d time.Duration, p *progress) cellResult {
	ids := benchIDs()
	recs := make([]*caller, callers)
	begin := make(chan struct{})
	var stop atomic.Bool
	var wg sync.WaitGroup
	seed := rand.Uint64()
	for i := range recs {
		rec, r := new(caller), rand.New(rand.NewPCG(seed, uint64(i)))
		recs[i] = rec
		wg.Go(func() {
			<-begin
			for !stop.Load() {
				id := ids[w.next(r)]
				t0 := time.Now()
				_, err := lim.CheckRate(ctx, id, benchWindow, benchLimit)
				lat := time.Since(t0)
				switch {
				case stop.Load():
					return // ended after the measurement
				case err != nil:
					if rec.firstErr == nil && ctx.Err() == nil {
						rec.firstErr = err
					}
				default:
					rec.lat.Record(lat)
					rec.checks.Add(1)
				}
			}
		})
	}

	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	close(begin)
	waitAndDraw(ctx, start, d, func(elapsed time.Duration) {
		var n int64
		for _, rec := range recs {
			n += rec.checks.Load()
		}
		rate := 0.0
		if elapsed > 0 {
			rate = float64(n) / elapsed.Seconds()
		}
		p.draw(progressLine(callers, float64(elapsed)/float64(d), progressWidth, d-elapsed, rate))
	})
	stop.Store(true)
	res := cellResult{callers: callers, elapsed: time.Since(start)}
	runtime.ReadMemStats(&m1)
	wg.Wait()

	var all latency.Histogram
	for _, rec := range recs {
		res.checks += rec.checks.Load()
		if rec.firstErr != nil && res.firstErr == "" {
			res.firstErr = rec.firstErr.Error()
		}
		all.Merge(&rec.lat)
	}
	res.p50, res.p99 = all.Quantile(0.50), all.Quantile(0.99)
	if res.checks > 0 {
		res.allocs = float64(m1.Mallocs-m0.Mallocs) / float64(res.checks)
	}
	return res
}

// waitAndDraw waits d from start, or until ctx is done, calling draw with
// the time elapsed at once and then every progressEvery.
func waitAndDraw(ctx context.Context, start time.Time, d time.Duration, draw func(elapsed time.Duration)) {
	end := time.NewTimer(d - time.Since(start))
	defer end.Stop()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	draw(time.Since(start))
	for {
		select {
		case <-ctx.Done():
			return
		case <-end.C:
			return
		case <-tick.C:
			draw(time.Since(start))
		}
	}
}

// runCell starts a backend with opts, waits for its connection within
// timeout, measures callers goroutines on it for d, and stops it.
func runCell(ctx context.Context, opts hammerredis.Options, timeout time.Duration, w benchWorkload, callers int, d time.Duration, p *progress) (cellResult, error) {
	b, err := hammerredis.Start(opts)
	if err != nil {
		return cellResult{}, err
	}
	defer hammerredis.Stop(b)
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := b.WaitConnected(wctx); err != nil {
		if ctx.Err() != nil {
			return cellResult{}, ctx.Err()
		}
		return cellResult{}, notConnected(b, timeout, err)
	}
	res := measure(ctx, hammer.New(b), w, callers, d, p)
	res.stats = b.Stats()
	return res, ctx.Err()
}

// notConnected explains a failed WaitConnected: with the backend's last
// connection error when there is one.
func notConnected(b *hammerredis.Backend, timeout time.Duration, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		// A call while disconnected fails at once with ErrClosed, which
		// wraps the last connection error.
		probe, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, perr := b.GetBucket(probe, hammerredis.BucketKey{}); errors.Is(perr, hammerredis.ErrClosed) {
			err = perr
		}
	}
	return fmt.Errorf("no connection within %v: %w", timeout, err)
}
