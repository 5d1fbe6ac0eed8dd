package checkrules

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hammer-go/hammerredis/internal/rules7"
	"github.com/hammer-go/hammerredis/protocol"
)

// model is protocol/check.go's rules over every key, computed the plain
// way: Hammer 6 buckets as counts, Hammer 7 keys as rules7 models. A check
// works on copies of its keys, which replace the originals when charged.
type model struct {
	h6 map[protocol.BucketKey]int64
	h7 map[key7]*rules7.Model
}

// key7 names a Hammer 7 key, whatever its window (a rules7 model holds
// every window of a fix-window key).
type key7 struct {
	alg         protocol.Algorithm
	prefix, id  string
	slidingSize int64
}

func newModel() *model {
	return &model{h6: map[protocol.BucketKey]int64{}, h7: map[key7]*rules7.Model{}}
}

func keyOf(l protocol.CheckLimit) key7 {
	k := key7{alg: l.Policy.Algorithm, prefix: l.Policy.Prefix, id: l.ID}
	if k.alg == protocol.SlidingWindow {
		k.slidingSize = l.Policy.ScaleMs
	}
	return k
}

func bucketOf(l protocol.CheckLimit, nowMs int64) protocol.BucketKey {
	b, _ := l.Bucket6(nowMs)
	return protocol.BucketKey{ID: l.ID, Bucket: b}
}

// model7 returns the model of l's key, a fresh one when it has none.
func (m *model) model7(l protocol.CheckLimit) *rules7.Model {
	if mm := m.h7[keyOf(l)]; mm != nil {
		return mm
	}
	return rules7.NewModel(l.Policy)
}

// check returns the decisions of c, and applies its hits when charged.
func (m *model) check(c protocol.Check) []protocol.HitReply {
	pending := &model{h6: map[protocol.BucketKey]int64{}, h7: map[key7]*rules7.Model{}}
	d := make([]protocol.HitReply, len(c.Limits))
	for i, l := range c.Limits {
		if !l.Hammer6 {
			k := keyOf(l)
			if pending.h7[k] == nil {
				pending.h7[k] = m.model7(l).Clone()
			}
			d[i] = pending.h7[k].Hit(c.Now, l.Cost)
			continue
		}
		k := bucketOf(l, c.Now)
		n, ok := pending.h6[k]
		if !ok {
			n = m.h6[k]
		}
		n += l.Cost
		pending.h6[k] = n
		_, toNext := l.Bucket6(c.Now)
		d[i] = protocol.HitReply{Allowed: n <= l.Policy.Limit, Count: n}
		if !d[i].Allowed {
			d[i].RetryAfterMs = toNext
			if l.Cost > l.Policy.Limit {
				d[i].RetryAfterMs = protocol.Never
			}
		}
	}
	if c.Charged(d) {
		for k, n := range pending.h6 {
			m.h6[k] = n
		}
		for k, mm := range pending.h7 {
			m.h7[k] = mm
		}
	}
	return d
}

// read is what read answers for l at nowMs.
func (m *model) read(l protocol.CheckLimit, nowMs int64) int64 {
	if l.Hammer6 {
		return m.h6[bucketOf(l, nowMs)]
	}
	return m.model7(l).Get(nowMs)
}

// property drives a pool of limits on two ids through a seeded random log
// of checks: each of one to four limits drawn from the pool (the same key
// twice now and then), some Shadow, of random costs (sometimes above the
// limit), all or nothing as mode says.
type property struct {
	name string
	seed uint64
	// mode returns the check's AllOrNothing.
	mode func(r *rand.Rand) bool
}

// pool is the limits of the properties: one of each kind, ids set later.
var pool = []protocol.CheckLimit{h6(2000, 6), fix(1500, 5), sliding(10, 8), leaky(2, 10), token(3, 12)}

// checks is the length of each random log.
const checks = 500

var properties = []property{
	{name: "property/mixed_modes", seed: 1, mode: func(r *rand.Rand) bool { return r.IntN(2) == 0 }},
	{name: "property/all_or_nothing", seed: 2, mode: func(*rand.Rand) bool { return true }},
	{name: "property/each", seed: 3, mode: func(*rand.Rand) bool { return false }},
}

// passed is one limit's decision in the log: the units it let through
// (its cost, when it allowed and the check was charged) at nowMs.
type passed struct {
	nowMs, units int64
}

func (tc property) run(t *testing.T, e Env) {
	key := freshKey(t)
	ids := []string{key + "/x", key + "/y"}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(11, tc.seed))
	m := newModel()
	windows := map[protocol.BucketKey]int64{} // Hammer 6 buckets and fix windows (by key): charged units
	through := map[string][]passed{}          // by limit and id
	const maxErrors = 5
	errs, diverged := 0, false
	errorf := func(format string, args ...any) {
		t.Helper()
		if errs++; errs <= maxErrors {
			t.Errorf(format, args...)
		}
	}
	readAll := func(c protocol.Check) []int64 {
		t.Helper()
		n := make([]int64, len(c.Limits))
		for i, l := range c.Limits {
			var err error
			if n[i], err = read(ctx, e.Backend, l, c.Now); err != nil {
				t.Fatalf("read %s: %v", name(l), err)
			}
		}
		return n
	}
	var allowed, denied, uncharged int
	for i := range checks {
		e.Clock.Add(clockStep(rng))
		at := e.Clock.Now().Sub(base)
		c := randomCheck(rng, ids, e.Clock.Now().UnixMilli(), tc.mode(rng))
		before := readAll(c)
		rep, err := e.Backend.Check(ctx, c)
		if err != nil {
			t.Fatalf("check %d at %s: %v", i, since(at), err)
		}
		if len(rep.Decisions) != len(c.Limits) {
			t.Fatalf("check %d at %s: %d decisions for %d limits", i, since(at), len(rep.Decisions), len(c.Limits))
		}
		after := readAll(c)
		want := m.check(c)
		desc := describe(c)
		for j, l := range c.Limits {
			got := rep.Decisions[j]
			if !diverged && got != want[j] {
				// The model follows the rules; past a difference its state
				// is not the backend's, so only the properties are checked.
				errorf("check %d at %s %s: %s = %s, want %s (the rules' model; later checks are not compared)",
					i, since(at), desc, name(l), show(got), show(want[j]))
				diverged = true
			}
			if w := m.read(l, c.Now); !diverged && after[j] != w {
				errorf("check %d at %s %s: %s reads %d after it, want %d (the rules' model; later checks are not compared)",
					i, since(at), desc, name(l), after[j], w)
				diverged = true
			}
			if got.Allowed == (got.RetryAfterMs != 0) || got.RetryAfterMs < protocol.Never {
				errorf("check %d at %s %s: %s = %s: a deny waits at least 1 ms or Never, an allow not at all", i, since(at), desc, name(l), show(got))
			}
			if (got.RetryAfterMs == protocol.Never) != (l.Cost > l.Policy.Limit) {
				errorf("check %d at %s %s: %s = %s: Never iff the cost exceeds the limit", i, since(at), desc, name(l), show(got))
			}
		}
		ok, charged := c.Allowed(rep.Decisions), c.Charged(rep.Decisions)
		switch {
		case ok:
			allowed++
		case charged:
			denied++
		default:
			uncharged++
			if !slices.Equal(before, after) {
				errorf("check %d at %s %s: denied all or nothing, yet the counts went from %v to %v", i, since(at), desc, before, after)
			}
		}
		for j, l := range c.Limits {
			if w, ok := windowOf(l, c.Now); ok && charged {
				windows[w] += l.Cost
			}
			if charged && rep.Decisions[j].Allowed {
				through[throughKey(l)] = append(through[throughKey(l)], passed{c.Now, l.Cost})
			}
		}
		for j, l := range c.Limits {
			if w, ok := windowOf(l, c.Now); ok && after[j] != windows[w] {
				errorf("check %d at %s %s: %s reads %d, yet the charged checks' costs there add up to %d",
					i, since(at), desc, name(l), after[j], windows[w])
			}
		}
	}
	t.Logf("%d checks over %s: %d allowed, %d denied and charged, %d denied and not charged",
		checks, e.Clock.Now().Sub(base.Add(start)).Round(time.Second), allowed, denied, uncharged)
	for _, l := range pool {
		for _, id := range ids {
			l.ID = id
			checkBound(t, l, through[throughKey(l)])
		}
	}
}

// windowOf names the window a Hammer 6 or fix-window limit counts in at
// nowMs; ok is false for the other limits.
func windowOf(l protocol.CheckLimit, nowMs int64) (w protocol.BucketKey, ok bool) {
	switch {
	case l.Hammer6:
		return protocol.BucketKey{ID: "h6:" + l.ID, Bucket: bucketOf(l, nowMs).Bucket}, true
	case l.Policy.Algorithm == protocol.FixWindow:
		n, _ := l.Policy.Window(nowMs)
		return protocol.BucketKey{ID: l.Policy.Key(l.ID, 0), Bucket: n}, true
	}
	return protocol.BucketKey{}, false
}

// throughKey names the key a limit counts in, for the log of what passed.
func throughKey(l protocol.CheckLimit) string { return fmt.Sprint(l.Hammer6, keyOf(l)) }

// clockStep returns the next clock step: mostly under 700 ms, sometimes up
// to 6 s, so that windows end and buckets leak and refill.
func clockStep(r *rand.Rand) time.Duration {
	if r.IntN(10) == 0 {
		return time.Duration(r.Int64N(int64(6 * time.Second)))
	}
	return time.Duration(r.Int64N(int64(700 * time.Millisecond)))
}

// randomCheck returns a check at nowMs of one to four limits drawn from
// the pool on ids, with random costs (mostly 1 to 3, sometimes above some
// limits or all) and one in six Shadow.
func randomCheck(r *rand.Rand, ids []string, nowMs int64, all bool) protocol.Check {
	c := protocol.Check{Now: nowMs, AllOrNothing: all, Limits: make([]protocol.CheckLimit, 1+r.IntN(4))}
	for i := range c.Limits {
		l := pool[r.IntN(len(pool))]
		l.ID = ids[r.IntN(len(ids))]
		l.Shadow = r.IntN(6) == 0
		switch n := r.IntN(20); {
		case n < 17:
			l.Cost = 1 + r.Int64N(3)
		case n < 19:
			l.Cost = 4 + r.Int64N(6)
		default:
			l.Cost = 13 // above every limit of the pool
		}
		c.Limits[i] = l
	}
	return c
}

// describe formats a check for messages.
func describe(c protocol.Check) string {
	s := "each"
	if c.AllOrNothing {
		s = "all-or-nothing"
	}
	s += " ["
	for i, l := range c.Limits {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s cost %d", name(l), l.Cost)
	}
	return s + "]"
}

// checkBound checks that l let through no more than it allows: a window's
// limit per window (a Hammer 6 bucket, a fix window) or per span of w
// whole seconds (a sliding window); a bucket's capacity plus its rate
// times the whole seconds between any two of its hits.
func checkBound(t *testing.T, l protocol.CheckLimit, log []passed) {
	t.Helper()
	p := l.Policy
	switch {
	case l.Hammer6 || p.Algorithm == protocol.FixWindow:
		sum := map[protocol.BucketKey]int64{}
		for _, d := range log {
			w, _ := windowOf(l, d.nowMs)
			if sum[w] += d.units; sum[w] > p.Limit {
				t.Errorf("%s: window %d let %d units through, more than its limit %d", name(l), w.Bucket, sum[w], p.Limit)
				return
			}
		}
	case p.Algorithm == protocol.SlidingWindow:
		w := p.WindowSeconds()
		for i, d := range log {
			sum := int64(0)
			for _, e := range log[i:] {
				if e.nowMs/1000 > d.nowMs/1000+w-1 {
					break
				}
				sum += e.units
			}
			if sum > p.Limit {
				t.Errorf("%s: %d s from %s let %d units through, more than its limit %d", name(l), w, since(time.UnixMilli(d.nowMs).Sub(base)), sum, p.Limit)
				return
			}
		}
	default:
		for i, d := range log {
			sum := int64(0)
			for _, e := range log[i:] {
				sum += e.units
				if bound := p.Limit + p.Rate*(e.nowMs/1000-d.nowMs/1000); sum > bound {
					t.Errorf("%s: from %s to %s let %d units through, more than capacity + rate × seconds = %d",
						name(l), since(time.UnixMilli(d.nowMs).Sub(base)), since(time.UnixMilli(e.nowMs).Sub(base)), sum, bound)
					return
				}
			}
		}
	}
}

// concurrent checks one set of limits from 64 goroutines at one instant,
// all or nothing, then each by its own rules: each check is decided and
// counted whole, so exactly the sliding window's limit is allowed, with
// distinct counts, and the other limits count exactly the charged checks.
func concurrent(t *testing.T, e Env) {
	const goroutines, perG = 64, 2
	for _, all := range []bool{true, false} {
		key := freshKey(t)
		limits := []protocol.CheckLimit{on(h6(60_000, 1000), key), on(sliding(10, 40), key),
			on(token(1, 1000), key), on(fix(60_000, 1000), key)}
		c := protocol.Check{Now: e.Clock.Now().UnixMilli(), AllOrNothing: all, Limits: limits}
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			counts = make([][]int64, len(limits)) // the allowed checks' counts, per limit
			startC = make(chan struct{})
		)
		for range goroutines {
			wg.Go(func() {
				<-startC
				for range perG {
					rep, err := e.Backend.Check(context.Background(), c)
					if err != nil {
						t.Errorf("check: %v", err)
						return
					}
					if !c.Allowed(rep.Decisions) {
						continue
					}
					mu.Lock()
					for i, d := range rep.Decisions {
						counts[i] = append(counts[i], d.Count)
					}
					mu.Unlock()
				}
			})
		}
		close(startC)
		wg.Wait()
		if t.Failed() {
			return
		}
		total := int64(goroutines * perG)
		charged := total // each by its own rules: every check counts in the windows
		if all {
			charged = 40
		}
		want := [][]int64{seqOf(1, 40), seqOf(1, 40), seqOf(1000-40, 999), seqOf(1, 40)}
		if !all {
			// The windows count the denied checks too, in any order; the
			// token bucket allows every check.
			want[0], want[2], want[3] = nil, nil, nil
		}
		for i, l := range limits {
			slices.Sort(counts[i])
			if want[i] != nil && !slices.Equal(counts[i], want[i]) {
				t.Errorf("all or nothing %t: %s: the allowed checks' counts are %v, want %v", all, name(l), counts[i], want[i])
			}
		}
		reads := []int64{charged, 40, 1000 - charged, charged}
		if !all {
			reads[2] = 1000 - total
		}
		for i, l := range limits {
			if n, err := read(context.Background(), e.Backend, l, c.Now); err != nil || n != reads[i] {
				t.Errorf("all or nothing %t: %s reads %d, %v after %d checks; want %d", all, name(l), n, err, total, reads[i])
			}
		}
	}
}

// seqOf returns from, from+1, …, to.
func seqOf(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}
