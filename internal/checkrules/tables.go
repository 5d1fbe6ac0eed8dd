package checkrules

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hammer-go/hammerredis/protocol"
)

// The limits of the tables: cost 1, on the id suffix "a" (which run
// appends to the subtest's fresh key); cost, on and shadow change that.

// h6 is a Hammer 6 window of scaleMs and limit.
func h6(scaleMs, limit int64) protocol.CheckLimit {
	return protocol.CheckLimit{Hammer6: true, Policy: protocol.Policy{ScaleMs: scaleMs, Limit: limit}, ID: "a", Cost: 1}
}

func h7(a protocol.Algorithm, scaleMs, limit, rate int64) protocol.CheckLimit {
	return protocol.CheckLimit{Policy: protocol.Policy{Algorithm: a, Prefix: prefix(a), ScaleMs: scaleMs,
		Limit: limit, Rate: rate}, ID: "a", Cost: 1}
}

// prefix is the prefix of the tables' Hammer 7 policies: one per
// algorithm, so that no two algorithms share a key.
func prefix(a protocol.Algorithm) string { return "checkrules." + a.String() }

func fix(scaleMs, limit int64) protocol.CheckLimit {
	return h7(protocol.FixWindow, scaleMs, limit, 0)
}

func sliding(seconds, limit int64) protocol.CheckLimit {
	return h7(protocol.SlidingWindow, seconds*1000, limit, 0)
}

func leaky(rate, capacity int64) protocol.CheckLimit {
	return h7(protocol.LeakyBucket, 0, capacity, rate)
}

func token(rate, capacity int64) protocol.CheckLimit {
	return h7(protocol.TokenBucket, 0, capacity, rate)
}

func cost(l protocol.CheckLimit, n int64) protocol.CheckLimit { l.Cost = n; return l }

func on(l protocol.CheckLimit, id string) protocol.CheckLimit { l.ID = id; return l }

func shadow(l protocol.CheckLimit) protocol.CheckLimit { l.Shadow = true; return l }

func withRate(l protocol.CheckLimit) protocol.CheckLimit { l.Policy.Rate = 1; return l }

// name names a limit in messages: "h6", "fix_window", "shadow token_bucket"…
func name(l protocol.CheckLimit) string {
	n := l.Policy.Algorithm.String()
	if l.Hammer6 {
		n = "h6"
	}
	if l.Shadow {
		n = "shadow " + n
	}
	return n + "/" + l.ID[strings.LastIndexByte(l.ID, '/')+1:]
}

// The decisions the tables expect.

func allow(count int64) protocol.HitReply { return protocol.HitReply{Allowed: true, Count: count} }

func deny(count, retryMs int64) protocol.HitReply {
	return protocol.HitReply{Count: count, RetryAfterMs: retryMs}
}

func never(count int64) protocol.HitReply {
	return protocol.HitReply{Count: count, RetryAfterMs: protocol.Never}
}

// step is one check of every limit of a table (want: the decisions, in
// order), or a read of every limit's count (reads), at a time since base.
type step struct {
	at    time.Duration
	want  []protocol.HitReply
	reads []int64
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

func check(at time.Duration, want ...protocol.HitReply) step { return step{at: at, want: want} }

func reads(at time.Duration, counts ...int64) step { return step{at: at, reads: counts} }

// table is a sequence of checks of the same limits, on fresh ids.
type table struct {
	name   string
	all    bool // AllOrNothing
	limits []protocol.CheckLimit
	steps  []step
}

func (tc table) run(t *testing.T, e Env) {
	key := freshKey(t)
	limits := make([]protocol.CheckLimit, len(tc.limits))
	for i, l := range tc.limits {
		limits[i] = on(l, key+"/"+l.ID)
	}
	ctx := context.Background()
	for _, s := range tc.steps {
		e.Clock.Set(base.Add(s.at))
		nowMs := e.Clock.Now().UnixMilli()
		if s.want == nil {
			for i, l := range limits {
				n, err := read(ctx, e.Backend, l, nowMs)
				if err != nil {
					t.Fatalf("read %s at %s: %v", name(l), since(s.at), err)
				}
				if n != s.reads[i] {
					t.Errorf("read %s at %s = %d, want %d", name(l), since(s.at), n, s.reads[i])
				}
			}
			continue
		}
		rep, err := e.Backend.Check(ctx, protocol.Check{Now: nowMs, AllOrNothing: tc.all, Limits: limits})
		if err != nil {
			t.Fatalf("check at %s: %v", since(s.at), err)
		}
		if len(rep.Decisions) != len(limits) {
			t.Fatalf("check at %s: %d decisions for %d limits", since(s.at), len(rep.Decisions), len(limits))
		}
		for i, l := range limits {
			if got := rep.Decisions[i]; got != s.want[i] {
				t.Errorf("check at %s: %s = %s, want %s", since(s.at), name(l), show(got), show(s.want[i]))
			}
		}
	}
}

// allTables returns the hand-written tables and the narrow-beside-broad
// matrix.
func allTables() []table { return append(narrowMatrix(), tables...) }

// narrowMatrix returns, for each kind of limit, a table in which a narrow
// limit of that kind (limit or capacity 1, on id "n") denies the second of
// two checks beside a broad limit of every kind (100, on id "b"): without
// AllOrNothing the broad limits count it; with AllOrNothing they do not,
// unless the narrow limit is Shadow.
func narrowMatrix() []table {
	type narrow struct {
		limit                 protocol.CheckLimit
		first, second         protocol.HitReply
		counted, notCounted   int64 // the narrow limit's read after the checks
		windowCountsItsDenial bool
	}
	narrows := []narrow{
		{h6(60_000, 1), allow(1), deny(2, 59_750), 2, 1, true},
		{fix(60_000, 1), allow(1), deny(2, 59_750), 2, 1, true},
		{sliding(10, 1), allow(1), deny(1, 9750), 1, 1, false}, // member at +0s leaves at +10s
		{leaky(1, 1), allow(1), deny(1, 750), 1, 1, false},     // leaks at +1s
		{token(1, 1), allow(0), deny(0, 750), 0, 0, false},     // refills at +1s
	}
	broad := []protocol.CheckLimit{on(h6(60_000, 100), "b"), on(fix(60_000, 100), "b"),
		on(sliding(10, 100), "b"), on(leaky(1, 100), "b"), on(token(1, 100), "b")}
	var out []table
	for _, n := range narrows {
		for _, mode := range []struct {
			name           string
			all, shadow    bool
			broadIsCharged bool
		}{
			{"each", false, false, true},
			{"all_or_nothing", true, false, false},
			{"all_or_nothing_shadow", true, true, true},
		} {
			l := on(n.limit, "n")
			if mode.shadow {
				l = shadow(l)
			}
			nRead, b, tok := n.notCounted, int64(1), int64(99)
			if mode.broadIsCharged {
				nRead, b, tok = n.counted, 2, 98
			}
			out = append(out, table{
				name:   fmt.Sprintf("narrow/%s/%s", name(n.limit)[:strings.IndexByte(name(n.limit), '/')], mode.name),
				all:    mode.all,
				limits: append([]protocol.CheckLimit{l}, broad...),
				steps: []step{
					check(start, n.first, allow(1), allow(1), allow(1), allow(1), allow(99)),
					check(start, n.second, allow(2), allow(2), allow(2), allow(2), allow(98)),
					reads(start, nRead, b, b, b, b, tok),
				},
			})
		}
	}
	return out
}

// tables are the hand-written tables. Times are since base, a whole second
// and the start of a minute; the expected values follow protocol/check.go
// and protocol/hammer7.go.
var tables = []table{
	{
		// Without AllOrNothing, windows count denied hits (Hammer's rule),
		// buckets do not; the next window starts afresh.
		name:   "windows_count_denied_hits/each",
		limits: []protocol.CheckLimit{h6(60_000, 2), fix(60_000, 2), leaky(1, 5)},
		steps: []step{
			check(ms(250), allow(1), allow(1), allow(1)),
			check(ms(250), allow(2), allow(2), allow(2)),
			check(ms(250), deny(3, 59_750), deny(3, 59_750), allow(3)),
			check(ms(30_000), deny(4, 30_000), deny(4, 30_000), allow(1)), // leaked to 0 by +30s
			reads(ms(30_000), 4, 4, 1),
			check(ms(60_000), allow(1), allow(1), allow(1)),
			reads(ms(60_000), 1, 1, 1),
		},
	},
	{
		// With AllOrNothing, a denied check counts nothing, not even in
		// the windows that denied it; its decisions are those the limits
		// would make (the leaky bucket's would-be level 3).
		name:   "windows_count_denied_hits/all_or_nothing",
		all:    true,
		limits: []protocol.CheckLimit{h6(60_000, 2), fix(60_000, 2), leaky(1, 5)},
		steps: []step{
			check(ms(250), allow(1), allow(1), allow(1)),
			check(ms(250), allow(2), allow(2), allow(2)),
			check(ms(250), deny(3, 59_750), deny(3, 59_750), allow(3)),
			reads(ms(250), 2, 2, 2),
			check(ms(30_000), deny(3, 30_000), deny(3, 30_000), allow(1)),
			reads(ms(30_000), 2, 2, 0),
			check(ms(60_000), allow(1), allow(1), allow(1)),
			reads(ms(60_000), 1, 1, 1),
		},
	},
	{
		// RetryAfter of every kind at several instants: a window's end
		// (1.5 s windows), the oldest member leaving, the level leaked or
		// refilled enough, at whole seconds.
		name: "retry_after/every_kind",
		limits: []protocol.CheckLimit{h6(1500, 1), fix(1500, 1), sliding(10, 1),
			cost(leaky(1, 2), 2), cost(token(1, 3), 3)},
		steps: []step{
			check(ms(250), allow(1), allow(1), allow(1), allow(2), allow(0)),
			check(ms(1100), deny(2, 400), deny(2, 400), deny(1, 8900), deny(1, 900), deny(1, 1900)),
			check(ms(1499), deny(3, 1), deny(3, 1), deny(1, 8501), deny(1, 501), deny(1, 1501)),
			reads(ms(1499), 3, 3, 1, 1, 1),
			check(ms(2000), allow(1), allow(1), deny(1, 8000), allow(2), deny(2, 1000)),
			check(ms(3000), allow(1), allow(1), deny(1, 7000), deny(1, 1000), allow(0)),
			check(ms(4000), deny(2, 500), deny(2, 500), deny(1, 6000), allow(2), deny(1, 2000)),
			check(ms(10_000), allow(1), allow(1), allow(1), allow(2), allow(0)),
		},
	},
	{
		// A cost above the limit is Never for every kind; windows count it
		// as any denied hit.
		name: "never/each",
		limits: []protocol.CheckLimit{cost(h6(60_000, 2), 3), cost(fix(60_000, 2), 3), cost(sliding(10, 2), 3),
			cost(leaky(1, 2), 3), cost(token(1, 2), 3)},
		steps: []step{
			check(ms(250), never(3), never(3), never(0), never(0), never(2)),
			check(ms(250), never(6), never(6), never(0), never(0), never(2)),
			reads(ms(250), 6, 6, 0, 0, 2),
		},
	},
	{
		name: "never/all_or_nothing",
		all:  true,
		limits: []protocol.CheckLimit{cost(h6(60_000, 2), 3), cost(fix(60_000, 2), 3), cost(sliding(10, 2), 3),
			cost(leaky(1, 2), 3), cost(token(1, 2), 3)},
		steps: []step{
			check(ms(250), never(3), never(3), never(0), never(0), never(2)),
			check(ms(250), never(3), never(3), never(0), never(0), never(2)),
			reads(ms(250), 0, 0, 0, 0, 2),
		},
	},
	{
		// One limit that can never allow keeps an all-or-nothing check from
		// charging the others, every time.
		name:   "never/beside_an_allowing_limit/all_or_nothing",
		all:    true,
		limits: []protocol.CheckLimit{h6(60_000, 5), cost(token(1, 2), 3)},
		steps: []step{
			check(ms(250), allow(1), never(2)),
			check(ms(250), allow(1), never(2)),
			reads(ms(250), 0, 2),
		},
	},
	{
		name:   "never/beside_an_allowing_limit/each",
		limits: []protocol.CheckLimit{h6(60_000, 5), cost(token(1, 2), 3)},
		steps: []step{
			check(ms(250), allow(1), never(2)),
			check(ms(250), allow(2), never(2)),
			reads(ms(250), 2, 2),
		},
	},
	{
		// A Shadow limit that denies beside one that denies: nothing is
		// charged, the shadow window included.
		name:   "shadow/beside_a_denying_limit/all_or_nothing",
		all:    true,
		limits: []protocol.CheckLimit{shadow(h6(60_000, 1)), token(1, 1)},
		steps: []step{
			check(ms(250), allow(1), allow(0)),
			check(ms(250), deny(2, 59_750), deny(0, 750)),
			reads(ms(250), 1, 0),
			check(ms(1000), deny(2, 59_000), allow(0)), // charged: the shadow window counts its denial
			reads(ms(1000), 2, 0),
		},
	},
	{
		name:   "shadow/each",
		limits: []protocol.CheckLimit{shadow(h6(60_000, 1)), leaky(1, 2)},
		steps: []step{
			check(ms(250), allow(1), allow(1)),
			check(ms(250), deny(2, 59_750), allow(2)),
			check(ms(250), deny(3, 59_750), deny(2, 750)),
			reads(ms(250), 3, 2),
		},
	},
	{
		// A Shadow limit on the key of a real one: the real one sees the
		// shadow's (pending) hit.
		name:   "shadow/same_key_as_a_real_limit/all_or_nothing",
		all:    true,
		limits: []protocol.CheckLimit{shadow(fix(60_000, 1)), fix(60_000, 4)},
		steps: []step{
			check(ms(250), allow(1), allow(2)),
			check(ms(250), deny(3, 59_750), allow(4)),
			reads(ms(250), 4, 4),
			check(ms(250), deny(5, 59_750), deny(6, 59_750)),
			reads(ms(250), 4, 4),
		},
	},
	{
		// Two limits on one key: the later sees the earlier's hit.
		name:   "same_key/fix_window/each",
		limits: []protocol.CheckLimit{fix(60_000, 3), fix(60_000, 3)},
		steps: []step{
			check(ms(250), allow(1), allow(2)),
			check(ms(250), allow(3), deny(4, 59_750)),
			reads(ms(250), 4, 4),
		},
	},
	{
		// With AllOrNothing, the later sees the earlier's pending hit.
		name:   "same_key/fix_window/all_or_nothing",
		all:    true,
		limits: []protocol.CheckLimit{fix(60_000, 3), fix(60_000, 3)},
		steps: []step{
			check(ms(250), allow(1), allow(2)),
			check(ms(250), allow(3), deny(4, 59_750)),
			reads(ms(250), 2, 2),
			check(ms(250), allow(3), deny(4, 59_750)),
		},
	},
	{
		name:   "same_key/h6/each",
		limits: []protocol.CheckLimit{h6(60_000, 2), h6(60_000, 2)},
		steps: []step{
			check(ms(250), allow(1), allow(2)),
			check(ms(250), deny(3, 59_750), deny(4, 59_750)),
			reads(ms(250), 4, 4),
		},
	},
	{
		name:   "same_key/h6/all_or_nothing",
		all:    true,
		limits: []protocol.CheckLimit{h6(60_000, 2), h6(60_000, 2)},
		steps: []step{
			check(ms(250), allow(1), allow(2)),
			check(ms(250), deny(3, 59_750), deny(4, 59_750)),
			reads(ms(250), 2, 2),
		},
	},
	{
		// The second limit's wait is from the pending state: 0 tokens left
		// at second 0, one back at second 1.
		name:   "same_key/token_bucket/each",
		limits: []protocol.CheckLimit{token(1, 3), token(1, 3)},
		steps: []step{
			check(ms(250), allow(2), allow(1)),
			check(ms(250), allow(0), deny(0, 750)),
			reads(ms(250), 0, 0),
		},
	},
	{
		name:   "same_key/token_bucket/all_or_nothing",
		all:    true,
		limits: []protocol.CheckLimit{token(1, 3), token(1, 3)},
		steps: []step{
			check(ms(250), allow(2), allow(1)),
			check(ms(250), allow(0), deny(0, 750)),
			reads(ms(250), 1, 1),
			check(ms(1000), allow(1), allow(0)), // 1 + 1 refilled
			reads(ms(1000), 0, 0),
		},
	},
	{
		name:   "same_key/sliding_window/all_or_nothing",
		all:    true,
		limits: []protocol.CheckLimit{sliding(10, 3), sliding(10, 3)},
		steps: []step{
			check(ms(250), allow(1), allow(2)),
			check(ms(250), allow(3), deny(3, 9750)), // k = 1: a member of +0s
			reads(ms(250), 2, 2),
		},
	},
	{
		name:   "same_key/leaky_bucket/all_or_nothing",
		all:    true,
		limits: []protocol.CheckLimit{leaky(1, 3), leaky(1, 3)},
		steps: []step{
			check(ms(250), allow(1), allow(2)),
			check(ms(250), allow(3), deny(3, 750)),
			reads(ms(250), 2, 2),
			check(ms(1000), allow(2), allow(3)),
			reads(ms(1000), 3, 3),
		},
	},
}
