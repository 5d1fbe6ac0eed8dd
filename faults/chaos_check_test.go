package faults_test

// Checks under chaos: chaosCheckCallers of the chaos tests' callers run
// Backend.Check of two or three limits (a Hammer 6 window and a Hammer 7 fix
// window on one id, at times a shadow Hammer 6 limit on the same id too),
// each mode or all-or-nothing, on hot and random ids, while the faults
// strike. The checkLedger accounts for them Redis key by Redis key, as the
// faultLedger does for the hits.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/protocol"
)

const (
	// chaosCheckCallers of chaosCallers run checks; the others hit.
	chaosCheckCallers = 16
	chaosHitCallers   = chaosCallers - chaosCheckCallers
	// chaosCheckRandom is how many random ids the checks pick from.
	chaosCheckRandom = 200

	// checkScaleMs is the checks' Hammer 6 window and fix window: at h7Now
	// one bucket and one window for the whole test.
	checkScaleMs = 60_000
	// checkHigh is a limit that no check reaches; checkLow one that the hot
	// ids reach within a few hundred checks, so that all-or-nothing checks
	// are denied from then on; checkShadowLimit the shadow limit's.
	checkHigh        = 1 << 40
	checkLow         = 40
	checkShadowLimit = 5
)

// checkRights are the ACL rights a backend's user needs for checks besides
// those of Hammer 6 and of h7Rights: GET, which reads a fix window's count.
var checkRights = []string{"+get"}

// checkID is an id of the checks and its limits: lim6 the Hammer 6
// window's, lim7 the fix window's. The ids of allOnly are checked all or
// nothing only.
type checkID struct {
	id         string
	lim6, lim7 int64
	allOnly    bool
}

// chaosCheckIDs are the ids of the checks: four hot ids of high limits, in
// the slots of chaosIDs's hot ids (so that slot migrations move them), two
// of low limits, all-or-nothing only (one denied by its Hammer 6 window, the
// other by its fix window), and chaosCheckRandom random ids; every id is
// its own hash tag, so that each check is one slot.
func chaosCheckIDs() (hot, random []checkID) {
	for i := range 4 {
		hot = append(hot, checkID{id: fmt.Sprintf("{hot%d}check", i), lim6: checkHigh, lim7: checkHigh})
	}
	hot = append(hot,
		checkID{id: "{hot0}low6", lim6: checkLow, lim7: checkHigh, allOnly: true},
		checkID{id: "{hot2}low7", lim6: checkHigh, lim7: checkLow, allOnly: true})
	for i := range chaosCheckRandom {
		random = append(random, checkID{id: fmt.Sprintf("{check%d}", i), lim6: checkHigh, lim7: checkHigh})
	}
	return hot, random
}

// check returns a check of id at h7Now: its Hammer 6 window (cost 1-2) and
// fix window (cost 1-3) in either order, a third of the time after a shadow
// Hammer 6 limit of checkShadowLimit on the window's key (so that the key's
// limits see each other's hits, and the shadow limit denies soon but never
// the check); all-or-nothing for allOnly ids, else half of the time.
func (c checkID) check(rng *rand.Rand) protocol.Check {
	six := protocol.CheckLimit{Hammer6: true, Policy: protocol.Policy{ScaleMs: checkScaleMs, Limit: c.lim6}, ID: c.id,
		Cost: 1 + rng.Int64N(2)}
	fix := h7Policy
	fix.ScaleMs, fix.Limit = checkScaleMs, c.lim7
	limits := []protocol.CheckLimit{six, {Policy: fix, ID: c.id, Cost: 1 + rng.Int64N(3)}}
	if rng.IntN(2) == 0 {
		limits[0], limits[1] = limits[1], limits[0]
	}
	if rng.IntN(3) == 0 {
		shadow := six
		shadow.Policy.Limit, shadow.Cost, shadow.Shadow = checkShadowLimit, 1, true
		limits = append([]protocol.CheckLimit{shadow}, limits...)
	}
	return protocol.Check{Now: h7Now, AllOrNothing: c.allOnly || rng.IntN(2) == 0, Limits: limits}
}

// checkLedger accounts for every check of a test, Redis key by Redis key:
// the counts claimed by the acknowledged checks that charged (each limit's
// count is its key's count after the check's hits on it so far, all on one
// snapshot, so a charged check claims the counts (base, base+its cost on
// the key]), the costs of the checks of unknown outcome, the counts seen by
// acknowledged all-or-nothing denials, which charge nothing. Its error
// classes are the faultLedger's; a check that fails with ErrRedis "can't
// run" while an ACL right is taken away (EXPIRE: the script's writes failed
// at a Hammer 6 key's EXPIRE, after its HINCRBY) counted the keys written
// until then, in the order of first appearance, that key included.
type checkLedger struct {
	hits    *faultLedger // its scheduling lag and its mark of the faults that make Redis refuse commands
	key6    func(id string, bucket int64) string
	hot     []checkID
	random  []checkID
	tallies map[string]*checkTally // by Redis key; fixed once the load starts

	checks, limits, acked, charged, allDenied, limitsDenied, shadowDenied atomic.Int64
	countedErr, unknown, redisUnknown, noPerm, neverSent                  atomic.Int64
	unexpected, overruns, maxTook, maxOverrun                             atomic.Int64

	mu      sync.Mutex
	samples []string // the first unexpected errors and decisions
}

// checkTally is one key's account.
type checkTally struct {
	six bool  // a Hammer 6 bucket, else a fix window
	cap int64 // when not 0, a bound of the final count: see newCheckLedger

	mu                         sync.Mutex
	acked, countedErr, unknown int64       // costs
	spans                      []checkSpan // claimed by acknowledged charged checks
	seen                       []int64     // the counts before acknowledged checks that charged nothing
}

// checkSpan is the counts (base, end] claimed by a charged check on a key.
type checkSpan struct{ base, end int64 }

// newCheckLedger returns a ledger for chaosCheckIDs's checks, beside hits;
// key6 returns the Redis key of a Hammer 6 bucket. The keys of the low ids'
// low limits are capped: every check that charges them is all-or-nothing
// and decides them last by that limit, which allows only while the key's
// count after the check stays within it.
func newCheckLedger(hits *faultLedger, key6 func(id string, bucket int64) string) *checkLedger {
	l := &checkLedger{hits: hits, key6: key6, tallies: map[string]*checkTally{}}
	l.maxOverrun.Store(-int64(time.Hour))
	l.hot, l.random = chaosCheckIDs()
	for _, c := range append(slices.Clone(l.hot), l.random...) {
		for _, lim := range c.check(rand.New(rand.NewPCG(0, 0))).Limits {
			k := l.key(h7Now, lim)
			if l.tallies[k] != nil {
				continue // the shadow limit's key is the window's
			}
			ta := &checkTally{six: lim.Hammer6}
			if c.allOnly && (lim.Hammer6 && c.lim6 == checkLow || !lim.Hammer6 && c.lim7 == checkLow) {
				ta.cap = checkLow
			}
			l.tallies[k] = ta
		}
	}
	return l
}

// key returns the Redis key of a check's limit at now.
func (l *checkLedger) key(now int64, lim protocol.CheckLimit) string {
	if lim.Hammer6 {
		return l.key6(lim.ID, now/lim.Policy.ScaleMs)
	}
	return lim.Policy.Key(lim.ID, now)
}

// checkGroup is a check's limits on one key, in order.
type checkGroup struct {
	key    string
	limits []int
	cost   int64
}

// groups returns c's limits by key, in the order of first appearance, as
// the check script writes them.
func (l *checkLedger) groups(c protocol.Check) []checkGroup {
	var gs []checkGroup
	for i, lim := range c.Limits {
		k := l.key(c.Now, lim)
		g := slices.IndexFunc(gs, func(g checkGroup) bool { return g.key == k })
		if g < 0 {
			g = len(gs)
			gs = append(gs, checkGroup{key: k})
		}
		gs[g].limits = append(gs[g].limits, i)
		gs[g].cost += lim.Cost
	}
	return gs
}

// run runs c within deadline, records its outcome and returns its error.
func (l *checkLedger) run(b *hammerredis.Backend, c protocol.Check, deadline time.Duration) error {
	redisFaults := l.hits.redisFaults.Load()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	begin := time.Now()
	rep, err := b.Check(ctx, c)
	took := time.Since(begin)
	redisFault := redisFaults%2 == 1 || l.hits.redisFaults.Load() != redisFaults
	l.record(c, rep.Decisions, err, took, deadline, redisFault)
	return err
}

// record accounts for check c that returned d, err after took; redisFault
// says whether it overlapped a fault that makes Redis refuse commands.
func (l *checkLedger) record(c protocol.Check, d []protocol.HitReply, err error, took, deadline time.Duration, redisFault bool) {
	l.checks.Add(1)
	l.limits.Add(int64(len(c.Limits)))
	storeMax(&l.maxTook, int64(took))
	storeMax(&l.maxOverrun, int64(took-deadline))
	if took > deadline+faultMargin {
		l.overruns.Add(1) // checked against the lag at the end
	}
	gs := l.groups(c)
	closed := errors.Is(err, hammerredis.ErrClosed)
	unknown := errors.Is(err, hammerredis.ErrDisconnected) || errors.Is(err, hammerredis.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
	redisErr := errors.Is(err, hammerredis.ErrRedis)
	switch {
	case err == nil:
		if bad := l.decided(c, d, gs); bad != "" {
			l.unexpectedf(c, took, "%s", bad)
			l.unknownOf(gs) // conservative
		}
	case closed && !unknown:
		l.neverSent.Add(1)
	case redisErr && redisFault && strings.Contains(err.Error(), "NOPERM"):
		l.noPerm.Add(1) // EVALSHA refused: nothing ran
	case redisErr && redisFault && strings.Contains(err.Error(), "can't run this command"):
		l.countedErr.Add(1)
		for _, g := range gs {
			ta := l.tallies[g.key]
			ta.mu.Lock()
			ta.countedErr += g.cost
			ta.mu.Unlock()
			if ta.six {
				break // its EXPIRE failed: the keys after it were not written
			}
		}
	default:
		// Unknown outcome; an unexpected error counts as one too, so the
		// accounting stays conservative, and fails the test.
		l.unknown.Add(1)
		l.unknownOf(gs)
		switch {
		case redisErr && redisFault:
			l.redisUnknown.Add(1)
		case !unknown || closed:
			l.unexpectedf(c, took, "%v", err)
		}
	}
}

// unknownOf adds the costs of a check of unknown outcome to its keys.
func (l *checkLedger) unknownOf(gs []checkGroup) {
	for _, g := range gs {
		ta := l.tallies[g.key]
		ta.mu.Lock()
		ta.unknown += g.cost
		ta.mu.Unlock()
	}
}

// decided checks the decisions d of an acknowledged check c, whose limits
// by key are gs, and accounts for them; it returns what is wrong with them.
// Each limit allows exactly when its count is within its limit, waits until
// its window ends when not (never when its cost is past its limit); the
// counts on one key follow from one count before the check; the check
// charged every key unless all-or-nothing and denied.
func (l *checkLedger) decided(c protocol.Check, d []protocol.HitReply, gs []checkGroup) string {
	if len(d) != len(c.Limits) {
		return fmt.Sprintf("%d decisions for %d limits", len(d), len(c.Limits))
	}
	allowed := true
	for i, lim := range c.Limits {
		retry := int64(0)
		switch {
		case d[i].Count <= lim.Policy.Limit:
		case lim.Cost > lim.Policy.Limit:
			retry = protocol.Never
		default:
			retry = (c.Now/lim.Policy.ScaleMs+1)*lim.Policy.ScaleMs - c.Now // both windows end there
		}
		if d[i].Allowed != (retry == 0) || d[i].RetryAfterMs != retry {
			return fmt.Sprintf("limit %d (limit %d, cost %d): %+v, want allowed %v, retry after %d ms",
				i, lim.Policy.Limit, lim.Cost, d[i], retry == 0, retry)
		}
		if !d[i].Allowed {
			l.limitsDenied.Add(1)
			if lim.Shadow {
				l.shadowDenied.Add(1)
			} else {
				allowed = false
			}
		}
	}
	bases := make([]int64, len(gs))
	for k, g := range gs {
		bases[k] = d[g.limits[0]].Count - c.Limits[g.limits[0]].Cost
		n := bases[k]
		for _, i := range g.limits {
			n += c.Limits[i].Cost
			if d[i].Count != n || bases[k] < 0 {
				return fmt.Sprintf("limit %d on %q: count %d, want %d: the key's count before the check (%d) plus its limits' costs up to it",
					i, g.key, d[i].Count, n, bases[k])
			}
		}
	}
	charged := !c.AllOrNothing || allowed
	l.acked.Add(1)
	switch {
	case charged:
		l.charged.Add(1)
	default:
		l.allDenied.Add(1)
	}
	for k, g := range gs {
		ta := l.tallies[g.key]
		ta.mu.Lock()
		if charged {
			ta.acked += g.cost
			ta.spans = append(ta.spans, checkSpan{bases[k], bases[k] + g.cost})
		} else {
			ta.seen = append(ta.seen, bases[k])
		}
		ta.mu.Unlock()
	}
	return ""
}

// unexpectedf counts a check that failed or decided as it should not, and
// keeps the first few.
func (l *checkLedger) unexpectedf(c protocol.Check, took time.Duration, format string, a ...any) {
	l.unexpected.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.samples) < 5 {
		l.samples = append(l.samples, fmt.Sprintf("%+v after %v: %s", c, took, fmt.Sprintf(format, a...)))
	}
}

// verify returns what is wrong with a key whose final count is final:
// the acknowledged charged checks' costs, plus those that counted with an
// error, at most final, and final at most that plus the costs of the checks
// of unknown outcome; no count claimed by two charged checks, none past
// final; the counts seen by checks that charged nothing at most final; final
// within the key's cap.
func (ta *checkTally) verify(key string, final int64) []string {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	var bad []string
	counted := ta.acked + ta.countedErr
	if final < counted || final > counted+ta.unknown {
		bad = append(bad, fmt.Sprintf("key %q: final count %d, charged by acknowledged checks %d, counted with an error %d, "+
			"unknown outcome %d; want acked+counted <= final <= acked+counted+unknown", key, final, ta.acked, ta.countedErr, ta.unknown))
	}
	spans := slices.SortedFunc(slices.Values(ta.spans), func(a, b checkSpan) int { return cmp.Compare(a.base, b.base) })
	for i := 1; i < len(spans); i++ {
		if spans[i].base < spans[i-1].end {
			bad = append(bad, fmt.Sprintf("key %q: the counts (%d, %d] and (%d, %d] of two charged checks overlap: a count returned twice",
				key, spans[i-1].base, spans[i-1].end, spans[i].base, spans[i].end))
			break
		}
	}
	if n := len(spans); n > 0 && spans[n-1].end > final {
		bad = append(bad, fmt.Sprintf("key %q: a charged check was told the count %d, and the final count is %d: hits were lost",
			key, spans[n-1].end, final))
	}
	if n := len(ta.seen); n > 0 && slices.Max(ta.seen) > final {
		bad = append(bad, fmt.Sprintf("key %q: a check that charged nothing saw the count %d, and the final count is %d",
			key, slices.Max(ta.seen), final))
	}
	if ta.cap != 0 && final > ta.cap {
		bad = append(bad, fmt.Sprintf("key %q: final count %d past %d, which only all-or-nothing checks charge while it allows",
			key, final, ta.cap))
	}
	return bad
}

// check reads every key's final count and checks the ledger: each key
// verified, every check back by its deadline plus faultMargin plus the
// scheduling lag, no unexpected error or decision.
func (l *checkLedger) check(t *testing.T, do keyDo) {
	t.Helper()
	keys := make([]string, 0, len(l.tallies))
	for k := range l.tallies {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ta := l.tallies[k]
		var final int64
		var err error
		if ta.six {
			final, err = redis.Int64(do("HGET", k, "count"))
		} else {
			final, err = redis.Int64(do("GET", k))
		}
		if errors.Is(err, redis.ErrNil) {
			final, err = 0, nil
		}
		if !assert.NoError(t, err, "the count of %q", k) {
			continue
		}
		for _, bad := range ta.verify(k, final) {
			assert.Fail(t, bad)
		}
	}
	late := time.Duration(l.maxOverrun.Load())
	assert.LessOrEqual(t, late, faultMargin+l.hits.lag.max(),
		"%d checks returned more than %v after their deadline, the latest by %v, while the scheduling lag was at most %v",
		l.overruns.Load(), faultMargin, late, l.hits.lag.max())
	assert.Zero(t, l.unexpected.Load(),
		"checks that returned an error other than ErrClosed, ErrDisconnected, ErrTimeout or the context's "+
			"(or ErrRedis while an ACL right was taken away), or decisions that break the rules; first: %q", l.samples)
}

// summary describes the ledger's figures.
func (l *checkLedger) summary() string {
	var counted, unknown, refused string
	if n := l.countedErr.Load(); n > 0 {
		counted = fmt.Sprintf(", counted but failed (ErrRedis after HINCRBY) %d", n)
	}
	if n := l.redisUnknown.Load(); n > 0 {
		unknown = fmt.Sprintf(" (%d of them ErrRedis)", n)
	}
	if n := l.noPerm.Load(); n > 0 {
		refused = fmt.Sprintf(", refused (NOPERM) %d", n)
	}
	return fmt.Sprintf("checks %d of %d limits: acknowledged %d (charged %d, all-or-nothing denied %d; limits denied %d, "+
		"%d of them shadow)%s, unknown outcome %d%s%s, never sent %d; slowest check %v, latest past its deadline by %v, "+
		"%d past it by more than the margin",
		l.checks.Load(), l.limits.Load(), l.acked.Load(), l.charged.Load(), l.allDenied.Load(), l.limitsDenied.Load(),
		l.shadowDenied.Load(), counted, l.unknown.Load(), unknown, refused, l.neverSent.Load(),
		time.Duration(l.maxTook.Load()).Round(time.Millisecond),
		max(0, time.Duration(l.maxOverrun.Load())).Round(time.Millisecond), l.overruns.Load())
}

// startCheckLoad starts callers goroutines that check until stopped; on its
// j-th call caller i checks a hot id when j is even (each caller in turn
// through them, so that many check one at once), else a random one, within
// deadline(i). Each caller draws from a generator of its own, seeded with
// seed.
func startCheckLoad(b *hammerredis.Backend, l *checkLedger, callers int, seed uint64,
	deadline func(i int) time.Duration) *faultLoad {
	ld := &faultLoad{stop: make(chan struct{})}
	for i := range callers {
		ld.wg.Add(1)
		go func() {
			defer ld.wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(i)+1))
			for j := 0; ; j++ {
				select {
				case <-ld.stop:
					return
				default:
				}
				c := l.random[rng.IntN(len(l.random))]
				if j%2 == 0 {
					c = l.hot[(i+j/2)%len(l.hot)]
				}
				if errors.Is(l.run(b, c.check(rng), deadline(i)), hammerredis.ErrClosed) {
					time.Sleep(closedCallWait) // not connected: do not spin
				}
			}
		}()
	}
	return ld
}

// TestCheckLedgerVerify: the ledger finds a count claimed twice, a count
// lost, a count past what the checks may have charged, and a capped key
// past its cap; and takes a key whose counts add up.
func TestCheckLedgerVerify(t *testing.T) {
	good := func() *checkTally {
		return &checkTally{six: true, cap: 10, acked: 5, unknown: 2, countedErr: 1,
			spans: []checkSpan{{3, 5}, {0, 2}, {6, 7}}, seen: []int64{7}}
	}
	assert.Empty(t, good().verify("k", 7), "one count of unknown outcome charged, or counted with an error")
	assert.Empty(t, good().verify("k", 8), "all charged")
	for final, want := range map[int64]string{5: "want acked+counted <= final", 9: "want acked+counted <= final", 6: "hits were lost"} {
		assert.Contains(t, strings.Join(good().verify("k", final), "\n"), want, "final %d", final)
	}
	twice := good()
	twice.spans[1].end = 4
	assert.Contains(t, strings.Join(twice.verify("k", 8), "\n"), "overlap")
	seen := good()
	seen.seen = append(seen.seen, 9)
	assert.Contains(t, strings.Join(seen.verify("k", 8), "\n"), "charged nothing saw the count 9")
	capped := good()
	capped.cap = 7
	assert.Contains(t, strings.Join(capped.verify("k", 8), "\n"), "past 7")
}

// TestCheckLedgerDecisions: the ledger refuses the decisions of a check
// that break the rules (counts on one key that do not follow from one
// count, an allow past the limit, a wrong wait) and accounts for those that
// keep them: an all-or-nothing denial charges nothing.
func TestCheckLedgerDecisions(t *testing.T) {
	l := newCheckLedger(newFaultLedger(nil), func(id string, bucket int64) string { return fmt.Sprint(id, ":", bucket) })
	c := checkID{id: "{hot0}low6", lim6: checkLow, lim7: checkHigh, allOnly: true}
	var chk protocol.Check
	for rng := rand.New(rand.NewPCG(1, 2)); len(chk.Limits) != 3 || !chk.Limits[1].Hammer6; {
		chk = c.check(rng) // shadow Hammer 6, Hammer 6, fix window
	}
	six, fix := l.tallies[l.key(h7Now, chk.Limits[1])], l.tallies[l.key(h7Now, chk.Limits[2])]
	c6, c7 := chk.Limits[1].Cost, chk.Limits[2].Cost
	retry := int64(checkScaleMs) // h7Now is a multiple of it
	allowed := []protocol.HitReply{{Allowed: false, Count: 10 + 1, RetryAfterMs: retry}, {Allowed: true, Count: 11 + c6},
		{Allowed: true, Count: 3 + c7}}
	assert.Empty(t, l.decided(chk, allowed, l.groups(chk)))
	assert.Equal(t, []checkSpan{{10, 11 + c6}}, six.spans, "the shadow limit's hit and the window's, claimed")
	assert.Equal(t, []checkSpan{{3, 3 + c7}}, fix.spans)

	denied := []protocol.HitReply{{Allowed: false, Count: 40 + 1, RetryAfterMs: retry},
		{Allowed: false, Count: 41 + c6, RetryAfterMs: retry}, {Allowed: true, Count: 9 + c7}}
	assert.Empty(t, l.decided(chk, denied, l.groups(chk)))
	assert.Equal(t, []int64{40}, six.seen, "denied all or nothing: nothing charged")
	assert.Equal(t, []int64{9}, fix.seen)
	assert.EqualValues(t, 1, l.allDenied.Load())

	for what, d := range map[string][]protocol.HitReply{
		"not one count":   {{Allowed: false, Count: 11, RetryAfterMs: retry}, {Allowed: true, Count: 12 + c6}, {Allowed: true, Count: 3 + c7}},
		"allowed past":    {{Allowed: false, Count: 41, RetryAfterMs: retry}, {Allowed: true, Count: 41 + c6}, {Allowed: true, Count: 3 + c7}},
		"a wrong wait":    {{Allowed: false, Count: 41, RetryAfterMs: 1}, {Allowed: false, Count: 41 + c6, RetryAfterMs: retry}, {Allowed: true, Count: 3 + c7}},
		"too few replies": allowed[:2],
	} {
		assert.NotEmpty(t, l.decided(chk, d, l.groups(chk)), what)
	}
}
