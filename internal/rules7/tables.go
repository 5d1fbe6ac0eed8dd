package rules7

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hammer-go/hammerredis/hammer7"
	"github.com/hammer-go/hammerredis/protocol"
)

// outcome is what a call should answer: a hit's decision, or the count of
// inc, set and get (count only).
type outcome struct {
	allowed bool
	count   int64
	retry   time.Duration
	never   bool
}

func (o outcome) String() string {
	switch {
	case o.allowed:
		return fmt.Sprintf("allow %d", o.count)
	case o.never:
		return fmt.Sprintf("deny %d never", o.count)
	default:
		return fmt.Sprintf("deny %d retry %v", o.count, o.retry)
	}
}

func allow(count int64) outcome { return outcome{allowed: true, count: count} }

func deny(count int64, retryMs int64) outcome {
	return outcome{count: count, retry: time.Duration(retryMs) * time.Millisecond}
}

func never(count int64) outcome { return outcome{count: count, never: true} }

// step is one call of a table, at a time given since base.
type step struct {
	at   time.Duration
	op   string // "hit", "inc", "set" or "get"
	n    int64  // the cost, n or count
	want outcome
	// expireAt, when not 0, is when the fix-window key of this call must
	// expire after it, since base (checked when Env.PExpireTime is set).
	expireAt time.Duration
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

func hit(at time.Duration, cost int64, want outcome) step {
	return step{at: at, op: "hit", n: cost, want: want}
}

func inc(at time.Duration, n, want int64) step {
	return step{at: at, op: "inc", n: n, want: outcome{count: want}}
}

func set(at time.Duration, n, want int64) step {
	return step{at: at, op: "set", n: n, want: outcome{count: want}}
}

func get(at time.Duration, want int64) step {
	return step{at: at, op: "get", want: outcome{count: want}}
}

// expires adds an expiry check to s.
func expires(s step, at time.Duration) step {
	s.expireAt = at
	return s
}

// table is a sequence of calls on one fresh key.
type table struct {
	name   string
	policy hammer7.Policy
	steps  []step
}

func (tc table) run(t *testing.T, e Env) {
	l := limiter(t, e, tc.policy)
	key := freshKey(t)
	ctx := context.Background()
	for _, s := range tc.steps {
		e.Clock.Set(base.Add(s.at))
		var (
			got  outcome
			err  error
			call = fmt.Sprintf("%s(%d)", s.op, s.n)
		)
		switch s.op {
		case "hit":
			var r hammer7.Result
			r, err = l.HitN(ctx, key, s.n)
			got = outcome{allowed: r.Allowed, count: r.Count, retry: r.RetryAfter, never: r.Never}
		case "inc":
			got.count, err = l.Inc(ctx, key, s.n)
		case "set":
			got.count, err = l.Set(ctx, key, s.n)
		case "get":
			call = "get"
			got.count, err = l.Get(ctx, key)
		default:
			panic("rules7: unknown op " + s.op)
		}
		if err != nil {
			t.Fatalf("%s at %s: %v", call, since(s.at), err)
		}
		if s.op != "hit" {
			if got.count != s.want.count {
				t.Errorf("%s at %s = %d, want %d", call, since(s.at), got.count, s.want.count)
			}
		} else if got != s.want {
			t.Errorf("%s at %s = %v, want %v", call, since(s.at), got, s.want)
		}
		if s.expireAt != 0 && e.PExpireTime != nil {
			p := tc.policy.(hammer7.FixWindow)
			pp := protocol.Policy{Algorithm: protocol.FixWindow, Prefix: p.Prefix, ScaleMs: p.Window.Milliseconds()}
			k := pp.Key(key, base.Add(s.at).UnixMilli())
			want := base.Add(s.expireAt).UnixMilli()
			if got, err := e.PExpireTime(k); err != nil || got != want {
				t.Errorf("after %s at %s: PEXPIRETIME %s = %d, %v; want %d (%s)", call, since(s.at), k, got, err, want, since(s.expireAt))
			}
		}
	}
}

// tables are the worked examples of HAMMER7.md §12, with the fixes of §9,
// and the cases around them. Times are since base (a whole second, the
// start of a minute); the expected values follow protocol/hammer7.go.
var tables = []table{
	{
		// §12 fix_window, 20.25 s into a minute: allow 1, allow 2, deny.
		name:   "fix_window/worked_example",
		policy: hammer7.FixWindow{Prefix: prefix(protocol.FixWindow), Window: time.Minute, Limit: 2},
		steps: []step{
			expires(hit(ms(20_250), 1, allow(1)), ms(60_000)),
			expires(hit(ms(25_250), 1, allow(2)), ms(60_000)),
			expires(hit(ms(30_250), 1, deny(3, 29_750)), ms(60_000)), // denied hits count
			hit(ms(59_999), 1, deny(4, 1)),
			get(ms(59_999), 4),
			expires(hit(ms(60_000), 1, allow(1)), ms(120_000)), // the next window
			get(ms(60_000), 1),
			get(ms(120_000), 0),
		},
	},
	{
		// §9.1: Elixir's EXPIREAT of whole seconds deletes the key of a
		// 500 ms window in the first half of a second: never limited.
		name:   "fix_window/scale_500",
		policy: hammer7.FixWindow{Prefix: prefix(protocol.FixWindow), Window: 500 * time.Millisecond, Limit: 2},
		steps: []step{
			expires(hit(ms(100), 1, allow(1)), ms(500)),
			hit(ms(200), 1, allow(2)),
			expires(hit(ms(300), 1, deny(3, 200)), ms(500)),
			hit(ms(499), 1, deny(4, 1)),
			get(ms(499), 4),
			expires(hit(ms(500), 1, allow(1)), ms(1000)),
			hit(ms(750), 1, allow(2)),
			hit(ms(999), 1, deny(3, 1)),
			expires(hit(ms(1000), 1, allow(1)), ms(1500)),
			hit(ms(1200), 2, deny(3, 300)),
		},
	},
	{
		// §9.1: with 1500 ms windows, Elixir leaves the last 500 ms of every
		// other window ([3 s, 4.5 s) here) unlimited.
		name:   "fix_window/scale_1500",
		policy: hammer7.FixWindow{Prefix: prefix(protocol.FixWindow), Window: 1500 * time.Millisecond, Limit: 1},
		steps: []step{
			expires(hit(ms(250), 1, allow(1)), ms(1500)),
			expires(hit(ms(1100), 1, deny(2, 400)), ms(1500)),
			hit(ms(1499), 1, deny(3, 1)),
			expires(hit(ms(1500), 1, allow(1)), ms(3000)),
			hit(ms(2900), 1, deny(2, 100)),
			expires(hit(ms(4100), 1, allow(1)), ms(4500)),
			expires(hit(ms(4200), 1, deny(2, 300)), ms(4500)),
			hit(ms(4499), 1, deny(3, 1)),
			get(ms(4499), 3),
			expires(hit(ms(4500), 1, allow(1)), ms(6000)),
			get(ms(4500), 1),
		},
	},
	{
		// A cost above the limit is Never, and counted as any denied hit.
		name:   "fix_window/never",
		policy: hammer7.FixWindow{Prefix: prefix(protocol.FixWindow), Window: time.Minute, Limit: 2},
		steps: []step{
			hit(ms(250), 3, never(3)),
			hit(ms(250), 1, deny(4, 59_750)),
			get(ms(250), 4),
			hit(ms(60_000), 2, allow(2)),
			hit(ms(60_000), 3, never(5)),
		},
	},
	{
		name:   "fix_window/limit_0",
		policy: hammer7.FixWindow{Prefix: prefix(protocol.FixWindow), Window: time.Minute, Limit: 0},
		steps: []step{
			hit(ms(250), 0, allow(0)),
			hit(ms(250), 1, never(1)),
			hit(ms(250), 0, deny(1, 59_750)), // the count is over the limit
		},
	},
	{
		name:   "fix_window/cost_0",
		policy: hammer7.FixWindow{Prefix: prefix(protocol.FixWindow), Window: time.Minute, Limit: 1},
		steps: []step{
			hit(ms(250), 0, allow(0)),
			get(ms(250), 0),
			hit(ms(250), 1, allow(1)),
			hit(ms(250), 0, allow(1)),
			hit(ms(1250), 1, deny(2, 58_750)),
			hit(ms(1250), 0, deny(2, 58_750)),
		},
	},
	{
		// Inc and Set ignore the limit; Set stores any count, 0 included;
		// both leave the key expiring at the window's end.
		name:   "fix_window/inc_set_get",
		policy: hammer7.FixWindow{Prefix: prefix(protocol.FixWindow), Window: time.Minute, Limit: 10},
		steps: []step{
			get(ms(250), 0),
			expires(inc(ms(250), 5, 5), ms(60_000)),
			inc(ms(1000), 2, 7),
			inc(ms(1000), 0, 7),
			get(ms(2000), 7),
			hit(ms(2000), 1, allow(8)),
			inc(ms(3000), 5, 13),
			hit(ms(3000), 1, deny(14, 57_000)),
			expires(set(ms(4000), 3, 3), ms(60_000)),
			get(ms(4000), 3),
			hit(ms(4000), 1, allow(4)),
			expires(set(ms(5000), 0, 0), ms(60_000)),
			get(ms(5000), 0),
			hit(ms(5000), 1, allow(1)),
			get(ms(60_000), 0),
			expires(set(ms(60_000), 12, 12), ms(120_000)),
			hit(ms(60_000), 1, deny(13, 60_000)),
			get(ms(60_500), 13),
		},
	},
	{
		// §12 sliding_window, window 10 s, limit 2. The deny waits for the
		// oldest member (second 0) to leave at second 10: 4.5 s, not
		// Elixir's 8 s (when the whole key expires).
		name:   "sliding_window/worked_example",
		policy: hammer7.SlidingWindow{Prefix: prefix(protocol.SlidingWindow), Window: 10 * time.Second, Limit: 2},
		steps: []step{
			hit(ms(250), 1, allow(1)),                         // {0}
			hit(ms(3000)+7*time.Microsecond, 1, allow(2)),     // {0, 3}
			hit(ms(5500), 1, deny(2, 4500)),                   // nothing written
			hit(ms(9999), 1, deny(2, 1)),                      //
			hit(ms(10_100), 1, allow(2)),                      // 0 ≤ 10−10 is dropped: {3, 10}
			hit(ms(10_100), 2, deny(2, 9900)),                 // k = 2: second 10 leaves at 20
			hit(ms(10_100), 3, never(2)),                      // more than the limit
			get(ms(10_100), 2),                                //
			get(ms(13_000), 1),                                // {10}
			hit(ms(13_000), 1, allow(2)),                      // {10, 13}
			get(ms(20_000), 1),                                // {13}
			get(ms(23_000), 0),                                //
			hit(ms(23_000)+999*time.Millisecond, 2, allow(2)), //
		},
	},
	{
		// A deny of cost n waits for the k-th oldest member, k = count +
		// n − limit.
		name:   "sliding_window/kth_oldest",
		policy: hammer7.SlidingWindow{Prefix: prefix(protocol.SlidingWindow), Window: 10 * time.Second, Limit: 5},
		steps: []step{
			hit(ms(250), 2, allow(2)),         // {0, 0}
			hit(ms(2500), 1, allow(3)),        // {0, 0, 2}
			hit(ms(4000), 2, allow(5)),        // {0, 0, 2, 4, 4}
			hit(ms(6000), 1, deny(5, 4000)),   // k = 1: second 0
			hit(ms(6000), 2, deny(5, 4000)),   // k = 2: second 0
			hit(ms(6000), 3, deny(5, 6000)),   // k = 3: second 2
			hit(ms(6000), 5, deny(5, 8000)),   // k = 5: second 4
			hit(ms(6000), 6, never(5)),        //
			hit(ms(10_000), 3, deny(3, 2000)), // {2, 4, 4}, k = 1: second 2
			hit(ms(10_000), 2, allow(5)),      // {2, 4, 4, 10, 10}
			get(ms(12_000), 4),                // {4, 4, 10, 10}
		},
	},
	{
		// A window of 1500 ms counts whole seconds: it acts as 1 s.
		name:   "sliding_window/whole_seconds",
		policy: hammer7.SlidingWindow{Prefix: prefix(protocol.SlidingWindow), Window: 1500 * time.Millisecond, Limit: 1},
		steps: []step{
			hit(ms(250), 1, allow(1)),
			hit(ms(999), 1, deny(1, 1)),
			hit(ms(1000), 1, allow(1)),
			hit(ms(1900), 1, deny(1, 100)),
			get(ms(1900), 1),
			get(ms(2000), 0),
		},
	},
	{
		name:   "sliding_window/cost_0",
		policy: hammer7.SlidingWindow{Prefix: prefix(protocol.SlidingWindow), Window: 10 * time.Second, Limit: 1},
		steps: []step{
			hit(ms(250), 0, allow(0)),
			get(ms(250), 0),
			hit(ms(250), 1, allow(1)),
			hit(ms(250), 0, allow(1)),
			hit(ms(250), 2, never(1)),
			get(ms(250), 1),
		},
	},
	{
		name:   "sliding_window/limit_0",
		policy: hammer7.SlidingWindow{Prefix: prefix(protocol.SlidingWindow), Window: 10 * time.Second, Limit: 0},
		steps: []step{
			hit(ms(250), 1, never(0)),
			hit(ms(250), 0, allow(0)),
			get(ms(250), 0),
		},
	},
	{
		// Inc, Set and Get use the hit's key and rules (§9.2): Inc drops
		// old members and adds n without a limit check, Set replaces the
		// members (0 deletes), Get counts the members in the window.
		name:   "sliding_window/inc_set_get",
		policy: hammer7.SlidingWindow{Prefix: prefix(protocol.SlidingWindow), Window: 10 * time.Second, Limit: 4},
		steps: []step{
			get(ms(250), 0),
			inc(ms(250), 2, 2),                // {0, 0}
			inc(ms(1000), 1, 3),               // {0, 0, 1}
			get(ms(1000), 3),                  //
			hit(ms(1000), 1, allow(4)),        // {0, 0, 1, 1}
			hit(ms(1000), 1, deny(4, 9000)),   // k = 1: second 0
			inc(ms(2000), 3, 7),               // {0, 0, 1, 1, 2, 2, 2}
			inc(ms(2000), 0, 7),               //
			get(ms(10_000), 5),                // {1, 1, 2, 2, 2}
			inc(ms(10_000), 0, 5),             //
			hit(ms(10_000), 1, deny(5, 1000)), // k = 2: second 1
			set(ms(10_000), 2, 2),             // {10, 10}
			get(ms(10_000), 2),                //
			hit(ms(10_000), 2, allow(4)),      // {10, 10, 10, 10}
			set(ms(10_000), 0, 0),             // no key
			get(ms(10_000), 0),                //
			hit(ms(10_000), 1, allow(1)),      // {10}
			get(ms(19_999), 1),                //
			get(ms(20_000), 0),                //
		},
	},
	{
		// §12 leaky_bucket (leak 1/s, capacity 3) without the overshoot:
		// the cost must fit (§9.4), and a deny waits until it does.
		name:   "leaky_bucket/worked_example",
		policy: hammer7.LeakyBucket{Prefix: prefix(protocol.LeakyBucket), LeakPerSecond: 1, Capacity: 3},
		steps: []step{
			hit(ms(250), 1, allow(1)),
			hit(ms(250), 1, allow(2)),
			hit(ms(250), 1, allow(3)),
			hit(ms(250), 1, deny(3, 750)), // fits at second 1
			hit(ms(999), 1, deny(3, 1)),
			hit(ms(1000), 1, allow(3)),     // 3 − 1 + 1; last_update 1
			hit(ms(3400), 3, deny(1, 600)), // 3 − 2 = 1, 1 + 3 > 3: fits at second 4
			hit(ms(3400), 5, never(1)),     // Elixir: allow 6
			hit(ms(4000), 3, allow(3)),     // 3 − 3 = 0
			get(ms(4000), 3),
			get(ms(5500), 2),
			get(ms(7000), 0),
			get(ms(100_000), 0),
		},
	},
	{
		// §9.4's overshoot: capacity 10, leak 3/s, cost 4: Elixir allows
		// 4, 8, 12; the port allows 4, 8 and denies until 4 more fit.
		name:   "leaky_bucket/no_overshoot",
		policy: hammer7.LeakyBucket{Prefix: prefix(protocol.LeakyBucket), LeakPerSecond: 3, Capacity: 10},
		steps: []step{
			hit(ms(250), 4, allow(4)),
			hit(ms(250), 4, allow(8)),
			hit(ms(250), 4, deny(8, 750)),     // ceil((8+4−10)/3) = 1 s after second 0
			hit(ms(1000), 4, allow(9)),        // 8 − 3 = 5, + 4
			hit(ms(1000), 4, deny(9, 1000)),   // ceil(3/3) = 1
			hit(ms(1000), 11, never(9)),       //
			hit(ms(2000), 4, allow(10)),       // 9 − 3 = 6, + 4
			hit(ms(2000), 1, deny(10, 1000)),  // ceil(1/3) = 1
			hit(ms(2500), 10, deny(10, 3500)), // ceil(10/3) = 4 s after second 2
			get(ms(2500), 10),
			get(ms(3000), 7),
			get(ms(6000), 0),
		},
	},
	{
		// Capacity 2, cost 5 on an empty bucket: Elixir allows 5.
		name:   "leaky_bucket/never_on_empty",
		policy: hammer7.LeakyBucket{Prefix: prefix(protocol.LeakyBucket), LeakPerSecond: 1, Capacity: 2},
		steps: []step{
			hit(ms(250), 5, never(0)),
			get(ms(250), 0),
			hit(ms(250), 2, allow(2)),
		},
	},
	{
		// Get applies the leak up to now and writes nothing.
		name:   "leaky_bucket/get",
		policy: hammer7.LeakyBucket{Prefix: prefix(protocol.LeakyBucket), LeakPerSecond: 2, Capacity: 10},
		steps: []step{
			get(ms(250), 0),
			hit(ms(250), 7, allow(7)),
			get(ms(999), 7),
			get(ms(1000), 5),
			get(ms(3999), 1),
			get(ms(4000), 0),
			hit(ms(4000), 10, allow(10)),
			hit(ms(4300), 3, deny(10, 1700)), // ceil(3/2) = 2 s after second 4
			get(ms(5000), 8),
			hit(ms(5000), 3, deny(8, 1000)),
			hit(ms(6000), 3, allow(9)),
		},
	},
	{
		name:   "leaky_bucket/cost_0",
		policy: hammer7.LeakyBucket{Prefix: prefix(protocol.LeakyBucket), LeakPerSecond: 1, Capacity: 1},
		steps: []step{
			hit(ms(250), 0, allow(0)),
			hit(ms(250), 1, allow(1)),
			hit(ms(250), 0, allow(1)),
			hit(ms(250), 1, deny(1, 750)),
			hit(ms(1250), 0, allow(0)),
			hit(ms(1250), 1, allow(1)),
		},
	},
	{
		// §12 token_bucket (refill 1/s, capacity 3) with the real waits
		// (§9.3) instead of a constant 1000 ms.
		name:   "token_bucket/worked_example",
		policy: hammer7.TokenBucket{Prefix: prefix(protocol.TokenBucket), RefillPerSecond: 1, Capacity: 3},
		steps: []step{
			hit(ms(250), 1, allow(2)),
			hit(ms(250), 1, allow(1)),
			hit(ms(250), 1, allow(0)),
			hit(ms(250), 1, deny(0, 750)),   // a token at second 1
			hit(ms(2000), 2, allow(0)),      // 0 + 2; last_update 2
			hit(ms(3000), 3, deny(1, 2000)), // 1 token: 3 at second 5
			hit(ms(3000), 4, never(1)),      // Elixir: deny 1000
			get(ms(3000), 1),
			get(ms(4999), 2),
			get(ms(5000), 3),
			hit(ms(5000), 3, allow(0)),
			get(ms(9000), 3), // min(3, 0 + 4)
		},
	},
	{
		// A rate of 3/s: waits are ceil((cost − level)/rate) seconds after
		// the last update.
		name:   "token_bucket/real_wait",
		policy: hammer7.TokenBucket{Prefix: prefix(protocol.TokenBucket), RefillPerSecond: 3, Capacity: 10},
		steps: []step{
			hit(ms(250), 10, allow(0)),
			hit(ms(250), 4, deny(0, 1750)), // ceil(4/3) = 2
			hit(ms(1000), 4, deny(3, 1000)),
			hit(ms(1999), 4, deny(3, 1)),
			hit(ms(2000), 4, allow(2)), // 6 − 4
			hit(ms(2000), 11, never(2)),
			hit(ms(2500), 10, deny(2, 2500)), // ceil(8/3) = 3 after second 2
			hit(ms(5000), 10, allow(0)),      // min(10, 2 + 9)
		},
	},
	{
		// Get applies the refill up to now; a bucket never hit is full.
		name:   "token_bucket/get",
		policy: hammer7.TokenBucket{Prefix: prefix(protocol.TokenBucket), RefillPerSecond: 1, Capacity: 5},
		steps: []step{
			get(ms(250), 5),
			hit(ms(250), 5, allow(0)),
			get(ms(250), 0),
			get(ms(1999), 1),
			get(ms(2000), 2),
			get(ms(10_000), 5),
			hit(ms(10_000), 6, never(5)),
			hit(ms(10_000), 5, allow(0)),
		},
	},
	{
		name:   "token_bucket/cost_0",
		policy: hammer7.TokenBucket{Prefix: prefix(protocol.TokenBucket), RefillPerSecond: 1, Capacity: 1},
		steps: []step{
			hit(ms(250), 0, allow(1)),
			hit(ms(250), 1, allow(0)),
			hit(ms(250), 0, allow(0)),
			hit(ms(250), 1, deny(0, 750)),
			hit(ms(1000), 1, allow(0)),
		},
	},
}
