// Package rules7 is the behaviour every Hammer 7 backend must have, as one
// table of subtests that runs on any [hammer7.Backend]: the rules of
// protocol/hammer7.go, checked through a [hammer7.Limiter].
//
// A backend's tests call [Run] with a function that returns a fresh
// [Env]: the backend, and the [Clock] it reads its time from (Redis TIME
// in the scripts, or the memory backend's clock). Run sets that clock, and
// the limiter's (fix_window's Now), before every call, so every expected
// value is exact: the tables are HAMMER7.md §12's worked examples with the
// fixes of §9 applied, fix windows of 500 ms and 1500 ms, inc/set/get,
// property checks on seeded random sequences compared with a model of the
// rules, and 64 goroutines on one key.
//
// Run starts its clock in the year 2100 (4102444800.250 s): a fix-window key
// expires at its window's end on the backend's own clock (PEXPIREAT), which
// for Redis is the real one, so a clock in the past would count nothing.
// Every subtest uses keys of its own, so one Redis may serve them all; the
// keys it leaves are small and expire (fix windows, in 2100).
package rules7

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hammer-go/hammerredis/hammer7"
	"github.com/hammer-go/hammerredis/protocol"
)

// Clock is a settable fake clock, safe for concurrent use. Its zero value
// reads the Unix epoch.
type Clock struct {
	ns atomic.Int64
}

// NewClock returns a clock that reads t.
func NewClock(t time.Time) *Clock {
	c := &Clock{}
	c.Set(t)
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// Env is one backend under test.
type Env struct {
	// Backend is the backend under test, fresh or shared: Run uses keys
	// no other subtest uses.
	Backend hammer7.Backend
	// Clock is the clock Backend reads for sliding windows and buckets (in
	// place of Redis TIME). Run sets it before every call, and gives it to
	// the limiter for fix_window.
	Clock *Clock
	// PExpireTime, if not nil, returns what Redis PEXPIRETIME would for the
	// key: its expiry in ms since the Unix epoch, −1 when it has none, −2
	// when there is no key. Run then checks that fix-window keys expire at
	// their window's end to the millisecond (HAMMER7.md §9.1), which their
	// counts cannot show when the backend expires keys on a real clock.
	PExpireTime func(key string) (int64, error)
}

// base is the whole second at which every table starts: 2100-01-01
// 00:00:00 UTC, a multiple of 60, 3600 and 1.5 s (S×1000 is divisible by
// 1500), so that windows of those lengths start there.
var base = time.Unix(4_102_444_800, 0)

// start is the usual time of a table's first call: a second plus a
// fraction, so that sub-second arithmetic is exercised.
const start = 250 * time.Millisecond

// run tells this process's keys from those of other runs against the same
// Redis.
var run = strconv.FormatInt(time.Now().UnixNano(), 36)

var seq atomic.Int64

// freshKey returns a key that no other subtest, nor any other run, uses.
func freshKey(t *testing.T) string {
	return fmt.Sprintf("%s/%s/%d", run, t.Name(), seq.Add(1))
}

// Run runs every rule on the backends newEnv returns, one Env per
// subtest. Subtests run one at a time: the clock may be shared.
func Run(t *testing.T, newEnv func(t *testing.T) Env) {
	env := func(t *testing.T) Env {
		t.Helper()
		e := newEnv(t)
		if e.Backend == nil || e.Clock == nil {
			t.Fatalf("rules7: newEnv returned %+v: Backend and Clock are required", e)
		}
		e.Clock.Set(base.Add(start))
		return e
	}
	for _, tc := range tables {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, env(t)) })
	}
	for _, tc := range properties {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, env(t)) })
	}
	for _, tc := range concurrency {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, env(t)) })
	}
	t.Run("canceled_context", func(t *testing.T) { canceled(t, env(t)) })
}

// limiter returns a limiter of p on e's backend, reading e's clock.
func limiter(t *testing.T, e Env, p hammer7.Policy) *hammer7.Limiter {
	t.Helper()
	l, err := hammer7.New(e.Backend, p)
	if err != nil {
		t.Fatalf("hammer7.New(%+v): %v", p, err)
	}
	return l.WithClock(e.Clock.Now)
}

// prefix is the prefix of the tables' policies: one per algorithm, so that
// no two algorithms share a key.
func prefix(a protocol.Algorithm) string { return "rules7." + a.String() }

// since formats the time of a call as an offset from base.
func since(at time.Duration) string {
	return "+" + strconv.FormatFloat(at.Seconds(), 'f', -1, 64) + "s"
}

// canceled checks that a call whose context is done fails.
func canceled(t *testing.T, e Env) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, p := range []hammer7.Policy{
		hammer7.FixWindow{Prefix: prefix(protocol.FixWindow), Window: time.Minute, Limit: 1},
		hammer7.SlidingWindow{Prefix: prefix(protocol.SlidingWindow), Window: time.Minute, Limit: 1},
		hammer7.LeakyBucket{Prefix: prefix(protocol.LeakyBucket), LeakPerSecond: 1, Capacity: 1},
		hammer7.TokenBucket{Prefix: prefix(protocol.TokenBucket), RefillPerSecond: 1, Capacity: 1},
	} {
		l := limiter(t, e, p)
		key := freshKey(t)
		if r, err := l.Hit(ctx, key); err == nil {
			t.Errorf("%T: Hit with a canceled context = %+v, want an error", p, r)
		}
		if n, err := l.Get(ctx, key); err == nil {
			t.Errorf("%T: Get with a canceled context = %d, want an error", p, n)
		}
	}
}
