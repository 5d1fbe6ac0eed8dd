package rules7

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hammer-go/hammerredis/hammer7"
	"github.com/hammer-go/hammerredis/protocol"
)

// decision is one hit of a random sequence, as the backend answered it.
type decision struct {
	nowMs int64
	cost  int64
	r     hammer7.Result
}

func (d decision) second() int64 { return d.nowMs / 1000 }

// secs formats a second as an offset from base.
func secs(s int64) string { return fmt.Sprintf("+%ds", s-base.Unix()) }

// property drives one key through a seeded random sequence of hits, gets
// and clock steps; every answer must equal the model's, and the log of
// decisions must satisfy check.
type property struct {
	name   string
	policy hammer7.Policy
	pp     protocol.Policy // the same policy, for the model
	seed   uint64
	// step returns the next clock step.
	step func(r *rand.Rand) time.Duration
	// check reports what is wrong with a log of decisions.
	check func(t *testing.T, p protocol.Policy, log []decision)
}

// steps is the length of each random sequence.
const steps = 600

func (tc property) run(t *testing.T, e Env) {
	l := limiter(t, e, tc.policy)
	key := freshKey(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, tc.seed))
	m := newModel(tc.pp)
	var log []decision
	diverged := false
	// At most maxErrors messages: past a bug, most steps would report it.
	const maxErrors = 5
	errs := 0
	errorf := func(format string, args ...any) {
		t.Helper()
		if errs++; errs <= maxErrors {
			t.Errorf(format, args...)
		}
	}
	gets := 0
	for i := range steps {
		e.Clock.Add(tc.step(rng))
		now := e.Clock.Now()
		nowMs := now.UnixMilli()
		at := now.Sub(base)

		if rng.IntN(8) == 0 {
			got, err := l.Get(ctx, key)
			if err != nil {
				t.Fatalf("step %d: get at %s: %v", i, since(at), err)
			}
			gets++
			if want := m.get(nowMs); !diverged && got != want {
				errorf("step %d: get at %s = %d, want %d (the rules' model; later steps are not compared)", i, since(at), got, want)
				diverged = true
			}
			if tc.pp.Algorithm == protocol.LeakyBucket && got > tc.pp.Limit {
				errorf("step %d: get at %s = %d, over the capacity %d", i, since(at), got, tc.pp.Limit)
			}
			continue
		}

		var cost int64
		switch n := rng.IntN(20); {
		case n < 16:
			cost = 1 + rng.Int64N(3)
		case n < 19:
			cost = rng.Int64N(tc.pp.Limit + 1)
		default:
			cost = tc.pp.Limit + 1
		}
		r, err := l.HitN(ctx, key, cost)
		if err != nil {
			t.Fatalf("step %d: hit(%d) at %s: %v", i, cost, since(at), err)
		}
		log = append(log, decision{nowMs: nowMs, cost: cost, r: r})
		got := outcome{allowed: r.Allowed, count: r.Count, retry: r.RetryAfter, never: r.Never}
		want := m.hit(nowMs, cost)
		w := outcome{allowed: want.Allowed, count: want.Count}
		if want.RetryAfterMs == protocol.Never {
			w.never = true
		} else {
			w.retry = time.Duration(want.RetryAfterMs) * time.Millisecond
		}
		if !diverged && got != w {
			// The model follows the rules; past a difference its state
			// is not the backend's, so only the properties are checked.
			errorf("step %d: hit(%d) at %s = %v, want %v (the rules' model; later steps are not compared)", i, cost, since(at), got, w)
			diverged = true
		}
		if r.Never != (cost > tc.pp.Limit) || r.Never && r.Allowed {
			errorf("step %d: hit(%d) at %s = %v: Never must be set iff the cost exceeds %d", i, cost, since(at), got, tc.pp.Limit)
		}
		if !r.Allowed && !r.Never && r.RetryAfter < time.Millisecond {
			errorf("step %d: hit(%d) at %s = %v: a deny must wait at least 1ms", i, cost, since(at), got)
		}
	}
	var allowed, denied, never int
	for _, d := range log {
		switch {
		case d.r.Allowed:
			allowed++
		case d.r.Never:
			never++
		default:
			denied++
		}
	}
	t.Logf("%d steps over %s: %d hits allowed, %d denied, %d never; %d gets", steps, e.Clock.Now().Sub(base.Add(start)).Round(time.Second), allowed, denied, never, gets)
	tc.check(t, tc.pp, log)
}

// uniformSteps returns a step function: mostly up to short, sometimes up
// to long.
func uniformSteps(short, long time.Duration) func(r *rand.Rand) time.Duration {
	return func(r *rand.Rand) time.Duration {
		if r.IntN(10) == 0 {
			return time.Duration(r.Int64N(int64(long)))
		}
		return time.Duration(r.Int64N(int64(short)))
	}
}

// checkWindows: no fixed window allows more than Limit units.
func checkWindows(t *testing.T, p protocol.Policy, log []decision) {
	allowed := map[int64]int64{}
	for _, d := range log {
		if d.r.Allowed {
			w, _ := p.Window(d.nowMs)
			allowed[w] += d.cost
			if allowed[w] > p.Limit {
				t.Errorf("window %d (at %s) allowed %d units, more than the limit %d", w, since(time.UnixMilli(d.nowMs).Sub(base)), allowed[w], p.Limit)
				return
			}
		}
	}
}

// checkSliding: no span of w whole seconds allows more than Limit units.
func checkSliding(t *testing.T, p protocol.Policy, log []decision) {
	w := p.WindowSeconds()
	for i, d := range log {
		if !d.r.Allowed {
			continue
		}
		// The busiest spans start at an allowed hit's second.
		a, sum := d.second(), int64(0)
		for _, e := range log[i:] {
			if e.second() > a+w-1 {
				break
			}
			if e.r.Allowed {
				sum += e.cost
			}
		}
		if sum > p.Limit {
			t.Errorf("seconds %s to %s (%d s) allowed %d units, more than the limit %d", secs(a), secs(a+w-1), w, sum, p.Limit)
			return
		}
	}
}

// checkBucket: between any two hits, no more than Capacity + Rate × the
// whole seconds between them are allowed; a leaky bucket's level never
// exceeds its capacity.
func checkBucket(t *testing.T, p protocol.Policy, log []decision) {
	for i, d := range log {
		if p.Algorithm == protocol.LeakyBucket && d.r.Allowed && d.r.Count > p.Limit {
			t.Errorf("hit %d (at %s) allowed with level %d, over the capacity %d", i, since(time.UnixMilli(d.nowMs).Sub(base)), d.r.Count, p.Limit)
			return
		}
		sum := int64(0)
		for _, e := range log[i:] {
			if e.r.Allowed {
				sum += e.cost
			}
			if bound := p.Limit + p.Rate*(e.second()-d.second()); sum > bound {
				t.Errorf("seconds %s to %s allowed %d units, more than capacity + rate × %d s = %d",
					secs(d.second()), secs(e.second()), sum, e.second()-d.second(), bound)
				return
			}
		}
	}
}

var properties = []property{
	{
		name:   "property/fix_window",
		policy: hammer7.FixWindow{Prefix: prefix(protocol.FixWindow), Window: 1500 * time.Millisecond, Limit: 5},
		pp:     protocol.Policy{Algorithm: protocol.FixWindow, Prefix: prefix(protocol.FixWindow), ScaleMs: 1500, Limit: 5},
		seed:   1,
		step:   uniformSteps(400*time.Millisecond, 4*time.Second),
		check:  checkWindows,
	},
	{
		name:   "property/sliding_window",
		policy: hammer7.SlidingWindow{Prefix: prefix(protocol.SlidingWindow), Window: 10 * time.Second, Limit: 8},
		pp:     protocol.Policy{Algorithm: protocol.SlidingWindow, Prefix: prefix(protocol.SlidingWindow), ScaleMs: 10_000, Limit: 8},
		seed:   2,
		step:   uniformSteps(1500*time.Millisecond, 12*time.Second),
		check:  checkSliding,
	},
	{
		name:   "property/leaky_bucket",
		policy: hammer7.LeakyBucket{Prefix: prefix(protocol.LeakyBucket), LeakPerSecond: 2, Capacity: 10},
		pp:     protocol.Policy{Algorithm: protocol.LeakyBucket, Prefix: prefix(protocol.LeakyBucket), Rate: 2, Limit: 10},
		seed:   3,
		step:   uniformSteps(700*time.Millisecond, 6*time.Second),
		check:  checkBucket,
	},
	{
		name:   "property/token_bucket",
		policy: hammer7.TokenBucket{Prefix: prefix(protocol.TokenBucket), RefillPerSecond: 3, Capacity: 12},
		pp:     protocol.Policy{Algorithm: protocol.TokenBucket, Prefix: prefix(protocol.TokenBucket), Rate: 3, Limit: 12},
		seed:   4,
		step:   uniformSteps(700*time.Millisecond, 6*time.Second),
		check:  checkBucket,
	},
}

// concurrent hits one key from 64 goroutines at one instant: exactly
// allowed hits are let through, with distinct counts, and every denied hit
// gets the same answer.
type concurrent struct {
	name    string
	policy  hammer7.Policy
	perG    int
	allowed []int64 // the counts of the allowed hits, in order
	denied  outcome // the answer to every denied hit
	// deniedCounts, if not nil, are the counts of the denied hits, in
	// order; denied.count is then ignored.
	deniedCounts []int64
	get          int64 // Get afterwards
}

const goroutines = 64

func (tc concurrent) run(t *testing.T, e Env) {
	l := limiter(t, e, tc.policy)
	key := freshKey(t)
	ctx := context.Background()

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results []hammer7.Result
		startC  = make(chan struct{})
	)
	for range goroutines {
		wg.Go(func() {
			<-startC
			for range tc.perG {
				r, err := l.Hit(ctx, key)
				if err != nil {
					t.Errorf("hit: %v", err)
					return
				}
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		})
	}
	close(startC)
	wg.Wait()
	if t.Failed() {
		return
	}

	var counts, denied []int64
	for _, r := range results {
		got := outcome{allowed: r.Allowed, count: r.Count, retry: r.RetryAfter, never: r.Never}
		if r.Allowed {
			counts = append(counts, r.Count)
			continue
		}
		want := tc.denied
		if tc.deniedCounts != nil {
			denied = append(denied, r.Count)
			want.count = r.Count
		}
		if got != want {
			t.Errorf("a denied hit = %v, want %v", got, want)
		}
	}
	slices.Sort(counts)
	if !slices.Equal(counts, tc.allowed) {
		t.Errorf("%d hits from %d goroutines: allowed counts %v, want %v", len(results), goroutines, brief(counts), brief(tc.allowed))
	}
	slices.Sort(denied)
	if tc.deniedCounts != nil && !slices.Equal(denied, tc.deniedCounts) {
		t.Errorf("%d hits from %d goroutines: denied counts %v, want %v", len(results), goroutines, brief(denied), brief(tc.deniedCounts))
	}
	if n, err := l.Get(ctx, key); err != nil || n != tc.get {
		t.Errorf("get after the hits = %d, %v; want %d", n, err, tc.get)
	}
}

// brief formats a long sorted list by its ends.
func brief(s []int64) string {
	if len(s) <= 8 {
		return fmt.Sprint(s)
	}
	return fmt.Sprintf("%d values %v…%v", len(s), s[:3], s[len(s)-3:])
}

// seqOf returns from, from+1, …, to.
func seqOf(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

var concurrency = []concurrent{
	{
		// Denied hits count too: every count from 1 to 320 is seen once.
		name:         "concurrency/fix_window",
		policy:       hammer7.FixWindow{Prefix: prefix(protocol.FixWindow), Window: time.Minute, Limit: 100},
		perG:         5,
		allowed:      seqOf(1, 100),
		denied:       deny(0, 59_750),
		deniedCounts: seqOf(101, goroutines*5),
		get:          goroutines * 5,
	},
	{
		name:    "concurrency/sliding_window",
		policy:  hammer7.SlidingWindow{Prefix: prefix(protocol.SlidingWindow), Window: 10 * time.Second, Limit: 50},
		perG:    2,
		allowed: seqOf(1, 50),
		denied:  deny(50, 9750),
		get:     50,
	},
	{
		name:    "concurrency/leaky_bucket",
		policy:  hammer7.LeakyBucket{Prefix: prefix(protocol.LeakyBucket), LeakPerSecond: 1, Capacity: 50},
		perG:    2,
		allowed: seqOf(1, 50),
		denied:  deny(50, 750),
		get:     50,
	},
	{
		// No refill while the clock stands still: exactly Capacity.
		name:    "concurrency/token_bucket",
		policy:  hammer7.TokenBucket{Prefix: prefix(protocol.TokenBucket), RefillPerSecond: 1, Capacity: 50},
		perG:    2,
		allowed: seqOf(0, 49),
		denied:  deny(0, 750),
		get:     0,
	},
}
