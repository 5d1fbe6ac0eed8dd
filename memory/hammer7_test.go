package memory

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/protocol"
)

// s0 is the second the Hammer 7 tests start at, that of HAMMER7.md §12.
const s0 = 1_700_000_000

// set moves the clock to t.
func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// held is what a test expects a Redis key to hold.
type held struct {
	kind     kind7
	n, last  int64 // string: n; hash: n (level) and last
	runs     []run7
	expireMs int64
}

// rawEntry returns the entry stored as key, expired or not, nil if none.
func (b *Backend) rawEntry(key string) *entry7 {
	s := b.t.h7.shard(b.t.seed, []byte(key))
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[key]
}

// stored7 returns the number of Hammer 7 entries held, expired or not.
func (b *Backend) stored7() int {
	n := 0
	for i := range b.t.h7.shards {
		s := &b.t.h7.shards[i]
		s.mu.Lock()
		n += len(s.keys)
		s.mu.Unlock()
	}
	return n
}

// The steps of a Hammer 7 table test, run with runSteps.

// at sets the clock to second s and microsecond us, as Redis TIME reads.
type at struct{ s, us int64 }

func (a at) run(_ *testing.T, _ *Backend, clk *fakeClock) { clk.set(time.Unix(a.s, a.us*1000)) }

// callNow is a request's Now: now if set, else the clock's ms.
func callNow(now int64, clk *fakeClock) int64 {
	if now != 0 {
		return now
	}
	return clk.Now().UnixMilli()
}

// hit7 calls Hit and wants want.
type hit7 struct {
	p    protocol.Policy
	id   string
	cost int64
	now  int64 // fix_window's Now; 0: the clock's ms
	want protocol.HitReply
}

func (a hit7) run(t *testing.T, b *Backend, clk *fakeClock) {
	t.Helper()
	r := protocol.Hit{Policy: a.p, ID: a.id, Cost: a.cost, Now: callNow(a.now, clk)}
	got, err := b.Hit(context.Background(), r)
	if err != nil || got != a.want {
		t.Fatalf("at %v: Hit(%+v) = %+v, %v, want %+v, nil", clk.Now().UnixMicro(), r, got, err, a.want)
	}
}

// inc7 calls Inc and wants want.
type inc7 struct {
	p      protocol.Policy
	id     string
	n, now int64
	want   int64
}

func (a inc7) run(t *testing.T, b *Backend, clk *fakeClock) {
	t.Helper()
	r := protocol.Inc{Policy: a.p, ID: a.id, N: a.n, Now: callNow(a.now, clk)}
	if got, err := b.Inc(context.Background(), r); err != nil || got != a.want {
		t.Fatalf("at %v: Inc(%+v) = %d, %v, want %d, nil", clk.Now().UnixMicro(), r, got, err, a.want)
	}
}

// set7 calls Set and wants its count back.
type set7 struct {
	p          protocol.Policy
	id         string
	count, now int64
}

func (a set7) run(t *testing.T, b *Backend, clk *fakeClock) {
	t.Helper()
	r := protocol.Set{Policy: a.p, ID: a.id, Count: a.count, Now: callNow(a.now, clk)}
	if got, err := b.Set(context.Background(), r); err != nil || got != a.count {
		t.Fatalf("at %v: Set(%+v) = %d, %v, want %d, nil", clk.Now().UnixMicro(), r, got, err, a.count)
	}
}

// get7 calls Get and wants want.
type get7 struct {
	p    protocol.Policy
	id   string
	now  int64
	want int64
}

func (a get7) run(t *testing.T, b *Backend, clk *fakeClock) {
	t.Helper()
	r := protocol.Get{Policy: a.p, ID: a.id, Now: callNow(a.now, clk)}
	if got, err := b.Get(context.Background(), r); err != nil || got != a.want {
		t.Fatalf("at %v: Get(%+v) = %d, %v, want %d, nil", clk.Now().UnixMicro(), r, got, err, a.want)
	}
}

// fails7 runs call and wants an error matching want.
type fails7 struct {
	name string
	call func(context.Context, *Backend, int64) error // the int64 is the clock's ms
	want error
}

func (a fails7) run(t *testing.T, b *Backend, clk *fakeClock) {
	t.Helper()
	if err := a.call(context.Background(), b, clk.Now().UnixMilli()); !errors.Is(err, a.want) {
		t.Fatalf("%s = %v, want an error matching %v", a.name, err, a.want)
	}
}

// key7 wants the Redis key named key to hold want, expired or not; nil:
// nothing stored.
type key7 struct {
	key  string
	want *held
}

func (a key7) run(t *testing.T, b *Backend, _ *fakeClock) {
	t.Helper()
	e := b.rawEntry(a.key)
	switch {
	case e == nil && a.want == nil:
		return
	case e == nil:
		t.Fatalf("key %q: nothing stored, want %+v", a.key, *a.want)
	case a.want == nil:
		t.Fatalf("key %q holds %+v, want nothing", a.key, *e)
	}
	got := held{kind: e.kind, n: e.n, last: e.last, runs: e.runs, expireMs: e.expireMs}
	if len(got.runs) == 0 {
		got.runs = nil
	}
	w := *a.want
	if got.kind != w.kind || got.n != w.n || got.last != w.last || got.expireMs != w.expireMs || !slices.Equal(got.runs, w.runs) {
		t.Fatalf("key %q holds %+v, want %+v", a.key, got, w)
	}
	if got.kind == kindZSet {
		var total int64
		for _, r := range got.runs {
			total += r.count
		}
		if total != e.total {
			t.Fatalf("key %q: total %d, but its runs hold %d", a.key, e.total, total)
		}
	}
}

// stored7Is wants that many Hammer 7 entries held, expired or not.
type stored7Is int

func (a stored7Is) run(t *testing.T, b *Backend, _ *fakeClock) {
	t.Helper()
	if got := b.stored7(); got != int(a) {
		t.Fatalf("stored7() = %d, want %d", got, int(a))
	}
}

// sweep runs one sweep.
type sweep struct{}

func (sweep) run(_ *testing.T, b *Backend, _ *fakeClock) { b.t.sweepOnce() }

func allow(count int64) protocol.HitReply { return protocol.HitReply{Allowed: true, Count: count} }

func deny(count, retryMs int64) protocol.HitReply {
	return protocol.HitReply{Count: count, RetryAfterMs: retryMs}
}

func never(count int64) protocol.HitReply {
	return protocol.HitReply{Count: count, RetryAfterMs: protocol.Never}
}

func fixW(prefix string, scaleMs, limit int64) protocol.Policy {
	return protocol.Policy{Algorithm: protocol.FixWindow, Prefix: prefix, ScaleMs: scaleMs, Limit: limit}
}

func slidingW(prefix string, scaleMs, limit int64) protocol.Policy {
	return protocol.Policy{Algorithm: protocol.SlidingWindow, Prefix: prefix, ScaleMs: scaleMs, Limit: limit}
}

func leaky(prefix string, rate, capacity int64) protocol.Policy {
	return protocol.Policy{Algorithm: protocol.LeakyBucket, Prefix: prefix, Rate: rate, Limit: capacity}
}

func token(prefix string, rate, capacity int64) protocol.Policy {
	return protocol.Policy{Algorithm: protocol.TokenBucket, Prefix: prefix, Rate: rate, Limit: capacity}
}

func str(n, expireMs int64) *held { return &held{kind: kindString, n: n, expireMs: expireMs} }

func zset(expireMs int64, runs ...run7) *held {
	return &held{kind: kindZSet, runs: runs, expireMs: expireMs}
}

func hash(level, last, expireMs int64) *held {
	return &held{kind: kindHash, n: level, last: last, expireMs: expireMs}
}

// ms returns second s as ms.
func ms(s int64) int64 { return s * 1000 }

func runTable(t *testing.T, tests []struct {
	name  string
	steps []action
}) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, tc.steps) })
	}
}

// TestHammer7WorkedExamples replays HAMMER7.md §12 with the fixes of §9,
// the rules of protocol/hammer7.go: the replies and what each key holds.
func TestHammer7WorkedExamples(t *testing.T) {
	const id = "user:42"
	fw := fixW("MyApp.RateLimit", 60_000, 2)
	fw1500 := fixW("MyApp.RateLimit", 1500, 2)
	sw := slidingW("MyApp.SW", 10_000, 2)
	lb := leaky("MyApp.LB", 1, 3)
	lb3 := leaky("MyApp.LB", 3, 10)
	tb := token("MyApp.TB", 1, 3)
	const fk, fk2 = "MyApp.RateLimit:user:42:28333333", "MyApp.RateLimit:user:42:28333334"
	const sk, lk, tk = "MyApp.SW:user:42:10000", "MyApp.LB:user:42", "MyApp.TB:user:42"
	t0 := ms(s0)

	runTable(t, []struct {
		name  string
		steps []action
	}{
		{"fix_window", []action{
			at{s0, 0},
			hit7{fw, id, 1, t0, allow(1)},
			key7{fk, str(1, 1_700_000_040_000)},
			at{s0 + 5, 0},
			hit7{fw, id, 1, t0 + 5000, allow(2)},
			at{s0 + 10, 0},
			hit7{fw, id, 1, t0 + 10_000, deny(3, 30_000)}, // the denied hit counts
			key7{fk, str(3, 1_700_000_040_000)},
			at{s0 + 20, 123_456},
			hit7{fw, id, 1, t0 + 20_123, deny(4, 19_877)}, // the caller's ms
			at{s0 + 40, 0},
			hit7{fw, id, 1, t0 + 40_000, allow(1)},
			key7{fk2, str(1, 1_700_000_100_000)},
			get7{fw, id, t0, 4}, // the old window lives up to its last ms
			at{s0 + 40, 1000},
			get7{fw, id, t0, 0},
			key7{fk, nil}, // dropped on access, as Redis does
		}},
		{"fix_window of 1500 ms lives to its end (§9.1)", []action{
			at{s0 + 2, 200_000}, // the window of 1700000001500 ends at …002500
			hit7{fw1500, id, 1, 0, allow(1)},
			hit7{fw1500, id, 1, 0, allow(2)},
			hit7{fw1500, id, 1, 0, deny(3, 300)},
			key7{"MyApp.RateLimit:user:42:1133333334", str(3, 1_700_000_002_500)},
		}},
		{"sliding_window (§9: retry when the oldest member leaves)", []action{
			at{s0, 250_000},
			hit7{sw, id, 1, 0, allow(1)},
			key7{sk, zset(ms(s0+10), run7{s0, 1})},
			at{s0 + 3, 7},
			hit7{sw, id, 1, 0, allow(2)},
			key7{sk, zset(ms(s0+13), run7{s0, 1}, run7{s0 + 3, 1})},
			at{s0 + 5, 500_000},
			hit7{sw, id, 1, 0, deny(2, 4500)}, // the member of s0 leaves at s0+10
			key7{sk, zset(ms(s0+13), run7{s0, 1}, run7{s0 + 3, 1})},
			at{s0 + 10, 100_000},
			hit7{sw, id, 1, 0, allow(2)}, // the member of s0 was dropped
			key7{sk, zset(ms(s0+20), run7{s0 + 3, 1}, run7{s0 + 10, 1})},
			get7{sw, id, 0, 2},
			at{s0 + 13, 0},
			get7{sw, id, 0, 1},
			key7{sk, zset(ms(s0+20), run7{s0 + 3, 1}, run7{s0 + 10, 1})}, // Get writes nothing
			at{s0 + 20, 0},
			get7{sw, id, 0, 0},
		}},
		{"leaky_bucket (§9.4: no overshoot, true wait)", []action{
			at{s0, 0},
			hit7{lb, id, 1, 0, allow(1)},
			key7{lk, hash(1, s0, ms(s0+61))},
			hit7{lb, id, 1, 0, allow(2)},
			key7{lk, hash(2, s0, ms(s0+62))},
			hit7{lb, id, 1, 0, allow(3)},
			key7{lk, hash(3, s0, ms(s0+63))},
			hit7{lb, id, 1, 0, deny(3, 1000)},
			at{s0, 400_000},
			hit7{lb, id, 1, 0, deny(3, 600)},
			at{s0 + 1, 0},
			hit7{lb, id, 1, 0, allow(3)},
			key7{lk, hash(3, s0+1, ms(s0+1+63))},
			at{s0 + 3, 0},
			hit7{lb, id, 5, 0, never(1)}, // Elixir allows 6
			key7{lk, hash(3, s0+1, ms(s0+1+63))},
			hit7{lb, id, 2, 0, allow(3)},
			key7{lk, hash(3, s0+3, ms(s0+3+63))},
			at{s0 + 4, 0},
			get7{lb, id, 0, 2},
			key7{lk, hash(3, s0+3, ms(s0+3+63))},
			at{s0 + 60, 0},
			get7{lb, id, 0, 0},
		}},
		{"leaky_bucket, capacity 10, rate 3, cost 4 (§9.4)", []action{
			at{s0, 0},
			hit7{lb3, id, 4, 0, allow(4)},
			hit7{lb3, id, 4, 0, allow(8)},
			hit7{lb3, id, 4, 0, deny(8, 1000)}, // Elixir allows 12
			key7{lk, hash(8, s0, ms(s0+3+60))}, // ceil(8/3) + 60
			at{s0 + 1, 0},
			hit7{lb3, id, 4, 0, allow(9)}, // 8 − 3 + 4
			hit7{lb3, id, 4, 0, deny(9, 1000)},
			at{s0 + 1, 999_999},
			hit7{lb3, id, 4, 0, deny(9, 1)}, // fits at s0+2: ceil((9+4−10)/3) = 1
		}},
		{"token_bucket (§9.3: the real wait)", []action{
			at{s0, 0},
			get7{tb, id, 0, 3}, // a bucket without a key is full
			hit7{tb, id, 1, 0, allow(2)},
			key7{tk, hash(2, s0, ms(s0+61))},
			hit7{tb, id, 1, 0, allow(1)},
			key7{tk, hash(1, s0, ms(s0+62))},
			hit7{tb, id, 1, 0, allow(0)},
			key7{tk, hash(0, s0, ms(s0+63))},
			hit7{tb, id, 1, 0, deny(0, 1000)},
			at{s0 + 2, 0},
			hit7{tb, id, 2, 0, allow(0)},
			key7{tk, hash(0, s0+2, ms(s0+2+63))},
			at{s0 + 3, 0},
			hit7{tb, id, 3, 0, deny(1, 2000)}, // Elixir says 1000
			at{s0 + 3, 250_000},
			hit7{tb, id, 3, 0, deny(1, 1750)},
			hit7{tb, id, 4, 0, never(1)},
			key7{tk, hash(0, s0+2, ms(s0+2+63))},
			get7{tb, id, 0, 1},
			at{s0 + 100, 0},
			get7{tb, id, 0, 3},
		}},
	})
}

// TestHammer7Algorithms covers the rules beyond the worked examples: Never,
// zero costs and limits, deny times, Inc, Set and Get.
func TestHammer7Algorithms(t *testing.T) {
	const id = "u"
	fw := fixW("P", 60_000, 2)
	fw0 := fixW("P", 60_000, 0)
	sw := slidingW("P", 10_000, 5)
	sw0 := slidingW("P", 10_000, 0)
	sw1500 := slidingW("P", 1500, 1) // counts whole seconds: a 1 s window
	lb := leaky("P", 1, 2)
	tb := token("P", 1, 2)
	const fk, sk, sk1500, bk = "P:u:28333333", "P:u:10000", "P:u:1500", "P:u"
	t0 := ms(s0)
	end := int64(1_700_000_040_000)

	runTable(t, []struct {
		name  string
		steps []action
	}{
		{"Never when the cost exceeds the limit", []action{
			at{s0, 0},
			hit7{fw, id, 3, t0, never(3)},
			key7{fk, str(3, end)}, // fix_window counts it anyway
			hit7{fw0, "z", 1, t0, never(1)},
			hit7{sw, id, 6, 0, never(0)},
			hit7{sw0, "z", 1, 0, never(0)},
			hit7{lb, id, 3, 0, never(0)},
			hit7{tb, "t", 3, 0, never(2)},
			key7{sk, nil},
			key7{bk, nil},
			key7{"P:t", nil},
			hit7{sw, id, 5, 0, allow(5)},
			hit7{sw, id, 6, 0, never(5)},
			hit7{lb, id, 2, 0, allow(2)},
			hit7{lb, id, 3, 0, never(2)},
			hit7{tb, "t", 2, 0, allow(0)},
			hit7{tb, "t", 3, 0, never(0)},
		}},
		{"cost 0", []action{
			at{s0, 500_000},
			hit7{fw, id, 0, 0, allow(0)},
			key7{fk, str(0, end)}, // INCRBY 0 creates the key
			hit7{sw, id, 0, 0, allow(0)},
			key7{sk, nil}, // nothing added: EXPIRE on no key is a no-op
			hit7{lb, id, 0, 0, allow(0)},
			key7{bk, hash(0, s0, ms(s0+60))},
			hit7{tb, "t", 0, 0, allow(2)},
			key7{"P:t", hash(2, s0, ms(s0+60))},
			hit7{fw, id, 2, 0, allow(2)},
			hit7{fw, id, 1, 0, deny(3, end-t0-500)},
			hit7{fw, id, 0, 0, deny(3, end-t0-500)},
			hit7{sw, id, 5, 0, allow(5)},
			hit7{sw, id, 0, 0, allow(5)},
			at{s0 + 4, 0},
			hit7{sw, id, 0, 0, allow(5)},
			key7{sk, zset(ms(s0+14), run7{s0, 5})}, // EXPIRE w even so
		}},
		{"limit 0", []action{
			at{s0, 0},
			hit7{fw0, id, 0, 0, allow(0)},
			inc7{fw0, id, 1, 0, 1},
			hit7{fw0, id, 0, 0, deny(1, end-t0)},
			hit7{sw0, id, 0, 0, allow(0)},
			inc7{sw0, id, 2, 0, 2},
			at{s0 + 3, 0},
			hit7{sw0, id, 0, 0, deny(2, 7000)}, // k = 2: the last member leaves
		}},
		{"sliding_window waits for the k-th oldest member", []action{
			at{s0, 0},
			hit7{sw, id, 2, 0, allow(2)},
			at{s0 + 3, 0},
			hit7{sw, id, 2, 0, allow(4)},
			at{s0 + 5, 0},
			hit7{sw, id, 1, 0, allow(5)},
			at{s0 + 6, 300_000},
			hit7{sw, id, 1, 0, deny(5, 3700)}, // k=1: s0
			hit7{sw, id, 2, 0, deny(5, 3700)}, // k=2: s0
			hit7{sw, id, 3, 0, deny(5, 6700)}, // k=3: s0+3
			hit7{sw, id, 5, 0, deny(5, 8700)}, // k=5: s0+5
			key7{sk, zset(ms(s0+15), run7{s0, 2}, run7{s0 + 3, 2}, run7{s0 + 5, 1})},
			at{s0 + 9, 999_999},
			hit7{sw, id, 1, 0, deny(5, 1)},
			at{s0 + 10, 0},
			hit7{sw, id, 2, 0, allow(5)},
			key7{sk, zset(ms(s0+20), run7{s0 + 3, 2}, run7{s0 + 5, 1}, run7{s0 + 10, 2})},
		}},
		{"sliding_window of 1500 ms counts 1 s", []action{
			at{s0, 0},
			hit7{sw1500, id, 1, 0, allow(1)},
			at{s0, 999_999},
			hit7{sw1500, id, 1, 0, deny(1, 1)},
			key7{sk1500, zset(ms(s0+1), run7{s0, 1})},
			at{s0 + 1, 0},
			hit7{sw1500, id, 1, 0, allow(1)},
		}},
		{"sliding_window Inc, Set and Get use the hit's key", []action{
			at{s0, 0},
			inc7{sw, id, 0, 0, 0},
			key7{sk, nil},
			inc7{sw, id, 3, 0, 3},
			key7{sk, zset(ms(s0+10), run7{s0, 3})},
			at{s0 + 4, 0},
			inc7{sw, id, 4, 0, 7}, // no limit
			key7{sk, zset(ms(s0+14), run7{s0, 3}, run7{s0 + 4, 4})},
			hit7{sw, id, 1, 0, deny(7, 6000)},
			get7{sw, id, 0, 7},
			at{s0 + 10, 0},
			get7{sw, id, 0, 4},
			inc7{sw, id, 0, 0, 4}, // trims
			key7{sk, zset(ms(s0+20), run7{s0 + 4, 4})},
			set7{sw, id, 2, 0},
			key7{sk, zset(ms(s0+20), run7{s0 + 10, 2})},
			hit7{sw, id, 3, 0, allow(5)},
			set7{sw, id, 0, 0},
			key7{sk, nil},
			get7{sw, id, 0, 0},
		}},
		{"fix_window Inc, Set and Get", []action{
			at{s0, 0},
			get7{fw, id, 0, 0},
			key7{fk, nil},
			inc7{fw, id, 5, 0, 5}, // no limit
			key7{fk, str(5, end)},
			hit7{fw, id, 1, 0, deny(6, end-t0)},
			get7{fw, id, 0, 6},
			set7{fw, id, 0, 0},
			key7{fk, str(0, end)},
			get7{fw, id, 0, 0},
			hit7{fw, id, 1, 0, allow(1)},
			inc7{fw, id, 0, 0, 1},
			get7{fw, id, t0 + 60_000, 0}, // the next window
			set7{fw, id, 7, t0 + 60_000},
			get7{fw, id, t0 + 60_000, 7},
			key7{"P:u:28333334", str(7, end+60_000)},
		}},
		{"fix_window count overflow fails as INCRBY", []action{
			at{s0, 0},
			set7{fw, id, protocol.MaxLevel, 0},
			incMany{fw, id, protocol.MaxLevel, 8190}, // 8191×2^50 = 2^63 − 2^50
			fails7{"Inc(2^50)", func(ctx context.Context, b *Backend, now int64) error {
				_, err := b.Inc(ctx, protocol.Inc{Policy: fw, ID: id, N: protocol.MaxLevel, Now: now})
				return err
			}, hammerredis.ErrRedis},
			fails7{"Hit(2^50)", func(ctx context.Context, b *Backend, now int64) error {
				_, err := b.Hit(ctx, protocol.Hit{Policy: fw, ID: id, Cost: protocol.MaxLevel, Now: now})
				return err
			}, hammerredis.ErrRedis},
			get7{fw, id, 0, 8191 * protocol.MaxLevel},
		}},
		{"fix_window at the end of int64", []action{
			// Two scales name one key; the deny time of the one whose
			// window's end overflows int64 still comes out right.
			at{s0, 0},
			inc7{fixW("P", 1, 5), id, 5, 1<<62 - 1, 5},
			key7{"P:u:4611686018427387903", str(5, 1<<62)},
			hit7{fixW("P", 2, 5), id, 1, math.MaxInt64 - 1, deny(6, 2)},
		}},
		{"leaky_bucket Get leaks, writes nothing", []action{
			at{s0, 0},
			get7{lb, id, 0, 0},
			key7{bk, nil},
			hit7{lb, id, 2, 0, allow(2)},
			at{s0 + 1, 999_000},
			get7{lb, id, 0, 1},
			hit7{lb, id, 2, 0, deny(1, 1)},
			key7{bk, hash(2, s0, ms(s0+62))},
		}},
		{"token_bucket refills to its capacity", []action{
			at{s0, 0},
			hit7{token("P", 3, 10), id, 10, 0, allow(0)},
			key7{bk, hash(0, s0, ms(s0+4+60))}, // ceil(10/3) + 60
			hit7{token("P", 3, 10), id, 7, 0, deny(0, 3000)},
			at{s0 + 2, 0},
			get7{token("P", 3, 10), id, 0, 6},
			hit7{token("P", 3, 10), id, 7, 0, deny(6, 1000)},
			at{s0 + 4, 0},
			get7{token("P", 3, 10), id, 0, 10},
			hit7{token("P", 3, 10), id, 1, 0, allow(9)},
			key7{bk, hash(9, s0+4, ms(s0+4+1+60))},
		}},
		{"a clock that goes back", []action{
			at{s0 + 5, 0},
			inc7{sw, id, 1, 0, 1},
			at{s0 + 2, 0},
			inc7{sw, id, 2, 0, 3}, // kept in score order
			at{s0 + 3, 0},
			inc7{sw, id, 1, 0, 4},
			key7{sk, zset(ms(s0+13), run7{s0 + 2, 2}, run7{s0 + 3, 1}, run7{s0 + 5, 1})},
			hit7{sw, id, 3, 0, deny(4, 9000)}, // k=2: s0+2
			// The buckets count no time while the clock is behind their
			// last_update: nothing leaks or refills, nothing goes back.
			at{s0 + 5, 0},
			hit7{leaky("P", 2, 4), "l", 1, 0, allow(1)},
			hit7{token("P", 2, 4), "t", 1, 0, allow(3)},
			at{s0 + 3, 0},
			get7{leaky("P", 2, 4), "l", 0, 1},
			hit7{leaky("P", 2, 4), "l", 3, 0, allow(4)},
			hit7{leaky("P", 2, 4), "l", 1, 0, deny(4, 1000)}, // fits at s0+4: 4 − 2 + 1
			get7{token("P", 2, 4), "t", 0, 3},
			hit7{token("P", 2, 4), "t", 3, 0, allow(0)},
			hit7{token("P", 2, 4), "t", 1, 0, deny(0, 1000)}, // s0+4: 0 + 2
		}},
	})
}

// incMany calls Inc n times.
type incMany struct {
	p    protocol.Policy
	id   string
	n    int64
	reps int
}

func (a incMany) run(t *testing.T, b *Backend, clk *fakeClock) {
	t.Helper()
	for range a.reps {
		r := protocol.Inc{Policy: a.p, ID: a.id, N: a.n, Now: clk.Now().UnixMilli()}
		if _, err := b.Inc(context.Background(), r); err != nil {
			t.Fatalf("Inc(%+v) = %v", r, err)
		}
	}
}

// TestHammer7Expiry: every key goes at the expiry its rule sets, on the
// backend's clock, and stops counting then, before any sweep; the sweeper
// reclaims it.
func TestHammer7Expiry(t *testing.T) {
	const id = "u"
	fw := fixW("P", 60_000, 1)
	sw := slidingW("P", 10_000, 5)
	lb := leaky("P", 2, 9)
	tb := token("P", 2, 9)
	t0 := ms(s0)
	end := int64(1_700_000_040_000)

	runTable(t, []struct {
		name  string
		steps []action
	}{
		{"fix_window at its end", []action{
			at{s0, 0},
			hit7{fw, id, 1, 0, allow(1)},
			at{s0 + 40, 0},
			get7{fw, id, t0, 1}, // Redis: gone once the clock is past it
			hit7{fw, id, 1, end - 1, deny(2, 1)},
			// A new key whose end is the clock's now: PEXPIREAT deletes it.
			hit7{fw, "w", 1, end - 1, allow(1)},
			hit7{fw, "w", 1, end - 1, allow(1)},
			key7{"P:w:28333333", nil},
			at{s0 + 40, 1000},
			stored7Is(1),
			get7{fw, id, t0, 0},
			hit7{fw, id, 1, t0, allow(1)}, // the window's key is gone: PEXPIREAT deletes it at once
			stored7Is(0),
		}},
		{"fix_window behind the backend's clock", []action{
			// The caller's window ended on the backend's clock: PEXPIREAT
			// deletes the key on arrival, as on Redis.
			at{s0 + 200, 0},
			hit7{fw, id, 1, t0, allow(1)},
			hit7{fw, id, 1, t0, allow(1)},
			set7{fw, id, 5, t0},
			get7{fw, id, t0, 0},
			stored7Is(0),
		}},
		{"sliding_window, EXPIRE w", []action{
			at{s0, 900_000},
			hit7{sw, id, 2, 0, allow(2)},
			key7{"P:u:10000", zset(ms(s0+10), run7{s0, 2})},
			at{s0 + 10, 0},
			stored7Is(1),
			get7{sw, id, 0, 0},
			at{s0 + 10, 1000},
			stored7Is(1),
			sweep{},
			stored7Is(0),
		}},
		{"sliding_window left empty by its trim is deleted", []action{
			at{s0, 0},
			inc7{sw, id, 1, 0, 1},
			hit7{sw, "v", 1, 0, allow(1)},
			at{s0 + 10, 0},
			hit7{sw, id, 9, 0, never(0)},
			inc7{sw, "v", 0, 0, 0},
			stored7Is(0),
		}},
		{"leaky_bucket, ceil(level/rate) + 60", []action{
			at{s0, 0},
			hit7{lb, id, 5, 0, allow(5)},
			key7{"P:u", hash(5, s0, ms(s0+3+60))},
			at{s0 + 63, 0},
			get7{lb, id, 0, 0},
			stored7Is(1),
			at{s0 + 63, 1000},
			sweep{},
			stored7Is(0),
			get7{lb, id, 0, 0},
		}},
		{"token_bucket, ceil((capacity − level)/rate) + 60", []action{
			at{s0, 0},
			hit7{tb, id, 5, 0, allow(4)},
			key7{"P:u", hash(4, s0, ms(s0+3+60))},
			at{s0 + 63, 1000},
			stored7Is(1),
			get7{tb, id, 0, 9},
			stored7Is(0), // dropped on access
		}},
		{"an expired key starts afresh", []action{
			at{s0, 0},
			set7{fixW("P", 1000, 5), id, 4, 0},
			key7{"P:u:1700000000", str(4, ms(s0+1))},
			at{s0 + 1, 1000},
			stored7Is(1),
			inc7{fixW("P", 1000, 5), id, 1, t0, 1},
			stored7Is(0),
		}},
	})
}

// TestHammer7RetryIsExact checks every deny time on random histories: a
// hit of the same cost is still denied 1 ms before it, and allowed at it.
func TestHammer7RetryIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	ctx := context.Background()
	denies := 0
	for trial := range 3000 {
		clk := newFakeClock()
		clk.set(time.Unix(s0, rng.Int64N(1e6)*1000))
		b := newTestBackend(t, clk)
		limit := 1 + rng.Int64N(6)
		var p protocol.Policy
		switch rng.IntN(4) {
		case 0:
			p = fixW("P", []int64{7, 1000, 1500, 10_000}[rng.IntN(4)], limit)
		case 1:
			p = slidingW("P", []int64{1000, 2500, 10_000}[rng.IntN(3)], limit)
		case 2:
			p = leaky("P", 1+rng.Int64N(3), limit)
		default:
			p = token("P", 1+rng.Int64N(3), limit)
		}
		hit := func(cost int64) protocol.HitReply {
			t.Helper()
			r, err := b.Hit(ctx, protocol.Hit{Policy: p, ID: "a", Cost: cost, Now: clk.Now().UnixMilli()})
			if err != nil {
				t.Fatalf("trial %d: Hit = %v", trial, err)
			}
			return r
		}
		for range rng.IntN(16) {
			clk.Advance(time.Duration(rng.Int64N(1_500_000)) * time.Microsecond)
			if p.Algorithm.IsWindow() && rng.IntN(5) == 0 {
				b.Inc(ctx, protocol.Inc{Policy: p, ID: "a", N: rng.Int64N(3), Now: clk.Now().UnixMilli()})
				continue
			}
			hit(rng.Int64N(limit + 1))
		}
		cost := 1 + rng.Int64N(limit)
		r := hit(cost)
		if r.Allowed {
			continue
		}
		denies++
		nowMs := clk.Now().UnixMilli()
		if r.RetryAfterMs < 1 {
			t.Fatalf("trial %d: %+v, cost %d: denied with RetryAfterMs %d", trial, p, cost, r.RetryAfterMs)
		}
		clk.set(time.UnixMilli(nowMs + r.RetryAfterMs - 1))
		if again := hit(cost); again.Allowed {
			t.Fatalf("trial %d: %+v, cost %d: denied with RetryAfterMs %d, allowed 1 ms before it", trial, p, cost, r.RetryAfterMs)
		}
		clk.set(time.UnixMilli(nowMs + r.RetryAfterMs))
		if again := hit(cost); !again.Allowed {
			t.Fatalf("trial %d: %+v, cost %d: denied with RetryAfterMs %d, denied again then: %+v", trial, p, cost, r.RetryAfterMs, again)
		}
	}
	if denies < 500 {
		t.Errorf("only %d of the trials ended denied", denies)
	}
}

// TestHammer7Sweeper: the sweeper goroutine reclaims expired entries and
// keeps the live ones.
func TestHammer7Sweeper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b, err := New(Options{ExpiryMs: 1000, CleanupInterval: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		start := time.Now()
		now := start.UnixMilli()
		for i := range 100 {
			id := strconv.Itoa(i)
			for _, p := range []protocol.Policy{fixW("F", 5000, 9), slidingW("S", 5000, 9), leaky("L", 1, 3), token("T", 1, 3)} {
				if _, err := b.Hit(ctx, protocol.Hit{Policy: p, ID: id, Cost: 1, Now: now}); err != nil {
					t.Fatal(err)
				}
			}
		}
		// Lives ceil(100/1) + 60 = 160 s.
		b.Hit(ctx, protocol.Hit{Policy: token("T", 1, 100), ID: "kept", Cost: 100})
		if got := b.stored7(); got != 401 {
			t.Fatalf("stored7() = %d, want 401", got)
		}
		// Sweeps every 10 s: the windows expire at 5 s, the buckets at
		// 61 s, the kept one at 160 s.
		for _, step := range []struct {
			after time.Duration
			want  int
		}{
			{9 * time.Second, 401},
			{15 * time.Second, 201},
			{65 * time.Second, 201},
			{75 * time.Second, 1},
			{165 * time.Second, 1},
			{175 * time.Second, 0},
		} {
			time.Sleep(time.Until(start.Add(step.after)))
			synctest.Wait() // let a sweep due now finish
			if got := b.stored7(); got != step.want {
				t.Errorf("after %v: stored7() = %d, want %d", step.after, got, step.want)
			}
		}
	})
}

// TestHammer7SweepShrinks: a shard's map that held many keys and now holds
// few is replaced, since Go maps never shrink.
func TestHammer7SweepShrinks(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	b := newTestBackend(t, clk)
	const n = 4 * numShards * shrinkMin
	p := slidingW("P", 1000, 9)
	for i := range n {
		b.Inc(ctx, protocol.Inc{Policy: p, ID: strconv.Itoa(i), N: 1})
	}
	clk.Advance(time.Second / 2)
	kept := protocol.Policy{Algorithm: protocol.TokenBucket, Prefix: "P", Rate: 1, Limit: 9}
	for i := range n / 8 {
		b.Hit(ctx, protocol.Hit{Policy: kept, ID: strconv.Itoa(i), Cost: 9})
	}
	before := make(map[*shard7]map[string]*entry7)
	for i := range b.t.h7.shards {
		before[&b.t.h7.shards[i]] = b.t.h7.shards[i].keys
	}
	clk.Advance(time.Second)
	b.t.sweepOnce()
	for s, old := range before {
		if len(s.keys) != s.peak || fmt.Sprintf("%p", s.keys) == fmt.Sprintf("%p", old) {
			t.Errorf("shard of %d keys (peak %d): the map was not replaced", len(s.keys), s.peak)
		}
	}
	if got := b.stored7(); got != n/8 {
		t.Errorf("stored7() = %d, want %d", got, n/8)
	}
	if got, err := b.Get(ctx, protocol.Get{Policy: kept, ID: "0"}); got != 1 || err != nil {
		t.Errorf("Get after the shrink = %d, %v, want 1, nil", got, err)
	}
}

// TestHammer7Concurrent: 64 goroutines on one key: exactly the limit is
// allowed, and no hit is lost. Run with -race.
func TestHammer7Concurrent(t *testing.T) {
	const goroutines, hits, limit = 64, 50, 1000
	ctx := context.Background()
	clk := newFakeClock()
	b := newTestBackend(t, clk)
	for _, tc := range []struct {
		p        protocol.Policy
		wantLast int64 // Get afterwards
	}{
		{fixW("P", 60_000, limit), goroutines * hits}, // denied hits count
		{slidingW("P", 60_000, limit), limit},
		{leaky("L", 1, limit), limit},
		{token("T", 1, limit), 0},
	} {
		t.Run(tc.p.Algorithm.String(), func(t *testing.T) {
			var allowed atomic.Int64
			var wg sync.WaitGroup
			for range goroutines {
				wg.Go(func() {
					for range hits {
						r, err := b.Hit(ctx, protocol.Hit{Policy: tc.p, ID: "hot", Cost: 1, Now: ms(s0)})
						if err != nil {
							t.Error(err)
							return
						}
						if r.Allowed {
							allowed.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if got := allowed.Load(); got != limit {
				t.Errorf("%d hits allowed, want %d", got, limit)
			}
			got, err := b.Get(ctx, protocol.Get{Policy: tc.p, ID: "hot", Now: ms(s0)})
			if err != nil || got != tc.wantLast {
				t.Errorf("Get = %d, %v, want %d, nil", got, err, tc.wantLast)
			}
		})
	}
	t.Run("Inc", func(t *testing.T) {
		var wg sync.WaitGroup
		for _, p := range []protocol.Policy{fixW("I", 60_000, 1), slidingW("I", 60_000, 1)} {
			for range goroutines {
				wg.Go(func() {
					for range hits {
						if _, err := b.Inc(ctx, protocol.Inc{Policy: p, ID: "hot", N: 2, Now: ms(s0)}); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
		}
		wg.Wait()
		for _, p := range []protocol.Policy{fixW("I", 60_000, 1), slidingW("I", 60_000, 1)} {
			got, err := b.Get(ctx, protocol.Get{Policy: p, ID: "hot", Now: ms(s0)})
			if err != nil || got != 2*goroutines*hits {
				t.Errorf("%s: Get = %d, %v, want %d, nil", p.Algorithm, got, err, 2*goroutines*hits)
			}
		}
	})
}

// TestHammer7SharedKeys: keys are Redis's, so policies that name the same
// key share it, and a key of another type fails as WRONGTYPE.
func TestHammer7SharedKeys(t *testing.T) {
	wrongType := func(name string, call func(context.Context, *Backend, int64) error) action {
		return fails7{name, call, hammerredis.ErrRedis}
	}
	// The fix_window key of "a" at s0 with a scale of 1 s is the bucket key
	// of "a:1700000000".
	fw := fixW("P", 1000, 5)
	const bid = "a:1700000000"
	// A window of 170000000 ms is window 10000 at s0: the key of a 10 s
	// sliding window.
	fwBig := fixW("P", 170_000_000, 5)

	runTable(t, []struct {
		name  string
		steps []action
	}{
		{"sliding windows of one scale share a key", []action{
			at{s0, 0},
			hit7{slidingW("P", 10_000, 3), "a", 2, 0, allow(2)},
			hit7{slidingW("P", 10_000, 2), "a", 1, 0, deny(2, 10_000)},
			hit7{slidingW("P", 10_500, 2), "a", 1, 0, allow(1)}, // another key: P:a:10500
		}},
		{"leaky and token buckets corrupt each other", []action{
			at{s0, 0},
			hit7{leaky("P", 1, 5), "a", 4, 0, allow(4)},
			get7{token("P", 1, 5), "a", 0, 4}, // the level read as tokens
			hit7{token("P", 1, 5), "a", 4, 0, allow(0)},
			get7{leaky("P", 1, 5), "a", 0, 0},
			hit7{leaky("P", 1, 5), "a", 5, 0, allow(5)},
		}},
		{"fix_window against a hash", []action{
			at{s0, 0},
			hit7{leaky("P", 1, 5), bid, 1, 0, allow(1)},
			wrongType("Hit(fix_window)", func(ctx context.Context, b *Backend, now int64) error {
				_, err := b.Hit(ctx, protocol.Hit{Policy: fw, ID: "a", Cost: 1, Now: now})
				return err
			}),
			wrongType("Inc(fix_window)", func(ctx context.Context, b *Backend, now int64) error {
				_, err := b.Inc(ctx, protocol.Inc{Policy: fw, ID: "a", N: 1, Now: now})
				return err
			}),
			wrongType("Get(fix_window)", func(ctx context.Context, b *Backend, now int64) error {
				_, err := b.Get(ctx, protocol.Get{Policy: fw, ID: "a", Now: now})
				return err
			}),
			wrongType("Set(fix_window)", func(ctx context.Context, b *Backend, now int64) error {
				_, err := b.Set(ctx, protocol.Set{Policy: fw, ID: "a", Count: 3, Now: now})
				return err
			}),
			key7{"P:" + bid, hash(1, s0, ms(s0+61))}, // untouched
		}},
		{"buckets against a string", []action{
			at{s0, 0},
			inc7{fw, "a", 3, 0, 3},
			wrongType("Hit(leaky_bucket)", func(ctx context.Context, b *Backend, now int64) error {
				_, err := b.Hit(ctx, protocol.Hit{Policy: leaky("P", 1, 5), ID: bid, Cost: 1})
				return err
			}),
			wrongType("Hit(token_bucket)", func(ctx context.Context, b *Backend, now int64) error {
				_, err := b.Hit(ctx, protocol.Hit{Policy: token("P", 1, 5), ID: bid, Cost: 1})
				return err
			}),
			wrongType("Get(token_bucket)", func(ctx context.Context, b *Backend, now int64) error {
				_, err := b.Get(ctx, protocol.Get{Policy: token("P", 1, 5), ID: bid})
				return err
			}),
			get7{fw, "a", 0, 3},
		}},
		{"sliding_window against a string", []action{
			at{s0, 0},
			inc7{fwBig, "a", 2, 0, 2},
			key7{"P:a:10000", str(2, 1_700_170_000_000)},
			wrongType("Hit(sliding_window)", func(ctx context.Context, b *Backend, now int64) error {
				_, err := b.Hit(ctx, protocol.Hit{Policy: slidingW("P", 10_000, 5), ID: "a", Cost: 1})
				return err
			}),
			wrongType("Inc(sliding_window)", func(ctx context.Context, b *Backend, now int64) error {
				_, err := b.Inc(ctx, protocol.Inc{Policy: slidingW("P", 10_000, 5), ID: "a", N: 1})
				return err
			}),
			wrongType("Get(sliding_window)", func(ctx context.Context, b *Backend, now int64) error {
				_, err := b.Get(ctx, protocol.Get{Policy: slidingW("P", 10_000, 5), ID: "a"})
				return err
			}),
			wrongType("Set(sliding_window)", func(ctx context.Context, b *Backend, now int64) error {
				_, err := b.Set(ctx, protocol.Set{Policy: slidingW("P", 10_000, 5), ID: "a", Count: 1})
				return err
			}),
			key7{"P:a:10000", str(2, 1_700_170_000_000)}, // untouched
		}},
		{"fix_window against a sorted set", []action{
			at{s0, 0},
			hit7{slidingW("P", 10_000, 5), "a", 1, 0, allow(1)},
			wrongType("Set(fix_window)", func(ctx context.Context, b *Backend, now int64) error {
				_, err := b.Set(ctx, protocol.Set{Policy: fwBig, ID: "a", Count: 1, Now: now})
				return err
			}),
			wrongType("Hit(fix_window)", func(ctx context.Context, b *Backend, now int64) error {
				_, err := b.Hit(ctx, protocol.Hit{Policy: fwBig, ID: "a", Cost: 1, Now: now})
				return err
			}),
		}},
		{"Hammer 6 buckets are apart", []action{
			at{s0, 0},
			hit{key(1700000000, "a"), ms(s0), 3, 3},
			get7{fw, "a", 0, 0},
			hit7{fw, "a", 1, 0, allow(1)},
			length(1),
			del{"a", 1},
			get7{fw, "a", 0, 1},
		}},
	})
}

// TestHammer7SlidingIsCompact: a sorted set holds one run per second, not
// one object per unit.
func TestHammer7SlidingIsCompact(t *testing.T) {
	runSteps(t, []action{
		at{s0, 0},
		hit7{slidingW("P", 60_000, protocol.MaxLevel), "a", protocol.MaxSlidingAdd, 0, allow(protocol.MaxSlidingAdd)},
		hit7{slidingW("P", 60_000, protocol.MaxLevel), "a", 1, 0, allow(protocol.MaxSlidingAdd + 1)},
		inc7{slidingW("P", 60_000, 1), "a", protocol.MaxSlidingAdd, 0, 2*protocol.MaxSlidingAdd + 1},
		key7{"P:a:60000", zset(ms(s0+60), run7{s0, 2*protocol.MaxSlidingAdd + 1})},
		at{s0 + 1, 0},
		hit7{slidingW("P", 60_000, protocol.MaxLevel), "a", 3, 0, allow(2*protocol.MaxSlidingAdd + 4)},
		key7{"P:a:60000", zset(ms(s0+61), run7{s0, 2*protocol.MaxSlidingAdd + 1}, run7{s0 + 1, 3})},
	})
}

// TestHammer7Invalid: invalid requests fail with ErrInvalid and change
// nothing; so do done contexts and a closed backend, with their errors.
func TestHammer7Invalid(t *testing.T) {
	ctx := context.Background()
	good := fixW("P", 1000, 5)
	long := strings.Repeat("x", protocol.MaxIDBytes+1)
	hits := map[string]protocol.Hit{
		"no algorithm":          {Policy: protocol.Policy{Prefix: "P", ScaleMs: 1000, Limit: 1}, ID: "a", Cost: 1},
		"no prefix":             {Policy: fixW("", 1000, 5), ID: "a", Cost: 1},
		"negative limit":        {Policy: fixW("P", 1000, -1), ID: "a", Cost: 1},
		"scale 0":               {Policy: fixW("P", 0, 5), ID: "a", Cost: 1},
		"sliding scale 999":     {Policy: slidingW("P", 999, 5), ID: "a", Cost: 1},
		"window with a rate":    {Policy: protocol.Policy{Algorithm: protocol.FixWindow, Prefix: "P", ScaleMs: 1000, Limit: 1, Rate: 1}, ID: "a", Cost: 1},
		"bucket without rate":   {Policy: leaky("P", 0, 5), ID: "a", Cost: 1},
		"bucket of capacity 0":  {Policy: token("P", 1, 0), ID: "a", Cost: 1},
		"bucket with a scale":   {Policy: protocol.Policy{Algorithm: protocol.LeakyBucket, Prefix: "P", ScaleMs: 1000, Limit: 1, Rate: 1}, ID: "a", Cost: 1},
		"negative cost":         {Policy: good, ID: "a", Cost: -1},
		"cost past MaxLevel":    {Policy: good, ID: "a", Cost: protocol.MaxLevel + 1},
		"sliding cost past max": {Policy: slidingW("P", 1000, 5), ID: "a", Cost: protocol.MaxSlidingAdd + 1},
		"id too long":           {Policy: good, ID: long, Cost: 1},
	}
	b := newTestBackend(t, newFakeClock())
	for name, r := range hits {
		if got, err := b.Hit(ctx, r); got != (protocol.HitReply{}) || !errors.Is(err, hammerredis.ErrInvalid) {
			t.Errorf("%s: Hit = %+v, %v, want zero, ErrInvalid", name, got, err)
		}
		if _, err := b.Get(ctx, protocol.Get{Policy: r.Policy, ID: r.ID}); r.Cost >= 0 && r.Cost <= 1 && !errors.Is(err, hammerredis.ErrInvalid) {
			t.Errorf("%s: Get = _, %v, want ErrInvalid", name, err)
		}
	}
	for name, err := range map[string]error{
		"Inc -1": func() error {
			_, err := b.Inc(ctx, protocol.Inc{Policy: good, ID: "a", N: -1})
			return err
		}(),
		"Set -1": func() error {
			_, err := b.Set(ctx, protocol.Set{Policy: good, ID: "a", Count: -1})
			return err
		}(),
		"Inc of a bucket": func() error {
			_, err := b.Inc(ctx, protocol.Inc{Policy: leaky("P", 1, 5), ID: "a", N: 1})
			return err
		}(),
		"Set of a bucket": func() error {
			_, err := b.Set(ctx, protocol.Set{Policy: token("P", 1, 5), ID: "a", Count: 1})
			return err
		}(),
		"Set of a sliding window past max": func() error {
			_, err := b.Set(ctx, protocol.Set{Policy: slidingW("P", 1000, 5), ID: "a", Count: protocol.MaxSlidingAdd + 1})
			return err
		}(),
	} {
		if !errors.Is(err, hammerredis.ErrInvalid) {
			t.Errorf("%s = %v, want ErrInvalid", name, err)
		}
	}
	if n := b.stored7(); n != 0 {
		t.Errorf("stored7() = %d after invalid calls, want 0", n)
	}

	// Validate comes first, then the context, then Close.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	expired, cancel2 := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel2()
	calls := func(ctx context.Context, p protocol.Policy) map[string]error {
		_, hitErr := b.Hit(ctx, protocol.Hit{Policy: p, ID: "a", Cost: 1})
		_, incErr := b.Inc(ctx, protocol.Inc{Policy: p, ID: "a", N: 1})
		_, setErr := b.Set(ctx, protocol.Set{Policy: p, ID: "a", Count: 1})
		_, getErr := b.Get(ctx, protocol.Get{Policy: p, ID: "a"})
		return map[string]error{"Hit": hitErr, "Inc": incErr, "Set": setErr, "Get": getErr}
	}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		p    protocol.Policy
		want []error
	}{
		{"cancelled", cancelled, slidingW("P", 1000, 5), []error{context.Canceled}},
		{"deadline passed", expired, slidingW("P", 1000, 5), []error{context.DeadlineExceeded, hammerredis.ErrTimeout}},
		{"cancelled, invalid", cancelled, slidingW("P", 1, 5), []error{hammerredis.ErrInvalid}},
	} {
		for call, err := range calls(tc.ctx, tc.p) {
			for _, want := range tc.want {
				if !errors.Is(err, want) {
					t.Errorf("%s: %s = %v, want an error matching %v", tc.name, call, err, want)
				}
			}
		}
	}
	if n := b.stored7(); n != 0 {
		t.Errorf("stored7() = %d after calls on done contexts, want 0", n)
	}
	b.Close()
	for call, err := range calls(ctx, slidingW("P", 1000, 5)) {
		if !errors.Is(err, hammerredis.ErrStopped) {
			t.Errorf("%s after Close = %v, want ErrStopped", call, err)
		}
	}
}

// TestShard7Size: a shard7 fills a cache line, as its padding means to.
func TestShard7Size(t *testing.T) {
	if got := unsafe.Sizeof(shard7{}); got != 64 {
		t.Errorf("unsafe.Sizeof(shard7{}) = %d, want 64", got)
	}
}

// BenchmarkHit measures Hit on one hot key per algorithm.
func BenchmarkHit(b *testing.B) {
	ctx := context.Background()
	for _, p := range []protocol.Policy{
		fixW("P", 60_000, 1<<40), slidingW("P", 60_000, 1<<40), leaky("P", 1, 1<<40), token("P", 1, 1<<40),
	} {
		b.Run(p.Algorithm.String(), func(b *testing.B) {
			be, err := New(Options{ExpiryMs: 60_000})
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := be.Hit(ctx, protocol.Hit{Policy: p, ID: "user:42", Cost: 1, Now: time.Now().UnixMilli()}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
