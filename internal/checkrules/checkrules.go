// Package checkrules is the behaviour every backend's Check must have (the
// rules of protocol/check.go), as one table of subtests that runs on any
// backend: the same checks give the same decisions, and leave the same
// counts, in memory and on Redis.
//
// # Running it
//
// A backend's tests call [Run] with a function that returns a fresh
// [Env]: the backend, and the [rules7.Clock] it reads its time from (Redis
// TIME in the scripts, or the memory backend's clock). Run sets that clock
// before every call and passes its time as Check.Now, so every expected
// value is exact. On Redis, as the root package runs internal/rules7:
//
//	func TestCheckRules(t *testing.T) {
//		clk := &rules7.Clock{} // Run sets it
//		f := testenv.Start(t, shared, hammerredis.WithScriptClock(hammerredis.Options{}, clk.Now))
//		checkrules.Run(t, func(t *testing.T) checkrules.Env {
//			return checkrules.Env{Backend: f.B, Clock: clk}
//		})
//	}
//
// The memory backend runs it in memory/check_test.go.
//
// # What it checks
//
//   - tables of checks at given times, with every decision (allowed,
//     count, RetryAfterMs or Never) and the counts left afterwards (read
//     back with GetBucket and Get): a narrow limit of each kind denying
//     beside broad limits of every kind (Hammer 6 and the four Hammer 7
//     algorithms), with and without AllOrNothing and as a Shadow limit;
//     windows counting denied hits without AllOrNothing; Shadow limits;
//     two limits on one key; Never; RetryAfter at several instants;
//   - a property check over a seeded random log of checks, compared with
//     a model of the rules: every decision and count equals the model's,
//     a denied all-or-nothing check changes no count, a window's count is
//     the cost of the checks that charged it, and no limit lets through
//     more than it allows;
//   - 64 goroutines checking one set of keys at one instant, all or
//     nothing: exactly the allowed checks are counted;
//   - invalid checks (protocol.ErrInvalid), a canceled context, and a
//     check that fails on a key of another type (protocol.ErrRedis,
//     WRONGTYPE), which counts nothing, in either mode.
//
// # Keys and time
//
// Every subtest uses ids of its own (run, subtest and sequence number), so
// one Redis may serve them all. Hammer 7 limits use the prefixes
// "checkrules.<algorithm>"; Hammer 6 limits count in the backend's own
// Hammer 6 buckets, of windows up to 60 s: give a backend whose Hammer 6
// buckets expire an ExpiryMs of at least 60000. The clock starts in the
// year 2100, as rules7's does (fix-window keys expire at their window's end
// on the backend's clock), and only moves forward.
package checkrules

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hammer-go/hammerredis/internal/rules7"
	"github.com/hammer-go/hammerredis/protocol"
)

// Backend is what Run needs of a backend: Check, and the reads that show
// what a check counted (neither changes anything).
type Backend interface {
	// Check decides several limits at once (protocol/check.go).
	Check(ctx context.Context, c protocol.Check) (protocol.CheckReply, error)
	// GetBucket reads a Hammer 6 bucket: nil when there is none.
	GetBucket(ctx context.Context, key protocol.BucketKey) (*protocol.BucketInfo, error)
	// Get reads a Hammer 7 key: a window's count, a bucket's level.
	Get(ctx context.Context, r protocol.Get) (int64, error)
	// Hit is Hammer 7's hit: here, to make a key of another type.
	Hit(ctx context.Context, r protocol.Hit) (protocol.HitReply, error)
}

// Env is one backend under test.
type Env struct {
	// Backend is the backend under test, fresh or shared: Run uses keys no
	// other subtest uses.
	Backend Backend
	// Clock is the clock Backend reads (in place of Redis TIME). Run sets
	// it before every call; Check.Now is its time.
	Clock *rules7.Clock
}

// base is the whole second at which every table starts, 2100-01-01
// 00:00:00 UTC, and start the time of its first call, as in rules7.
var base = rules7.Base

const start = rules7.Start

// freshKey returns an id that no other subtest, nor any other run, uses.
var freshKey = rules7.FreshKey

// Run runs every rule on the backends newEnv returns, one Env per
// subtest. Subtests run one at a time: the clock may be shared.
func Run(t *testing.T, newEnv func(t *testing.T) Env) {
	subtest := func(name string, f func(*testing.T, Env)) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			if e.Backend == nil || e.Clock == nil {
				t.Fatalf("checkrules: newEnv returned %+v: Backend and Clock are required", e)
			}
			e.Clock.Set(base.Add(start))
			f(t, e)
		})
	}
	for _, tc := range allTables() {
		subtest(tc.name, tc.run)
	}
	for _, tc := range properties {
		subtest(tc.name, tc.run)
	}
	subtest("concurrency", concurrent)
	subtest("invalid", invalid)
	subtest("canceled_context", canceled)
	subtest("failed_check_writes_nothing", failed)
}

// read returns what limit l has counted at nowMs: its Hammer 6 bucket's
// count (0 without a bucket), or what Get answers.
func read(ctx context.Context, b Backend, l protocol.CheckLimit, nowMs int64) (int64, error) {
	if !l.Hammer6 {
		return b.Get(ctx, protocol.Get{Policy: l.Policy, ID: l.ID, Now: nowMs})
	}
	bucket, _ := l.Bucket6(nowMs)
	info, err := b.GetBucket(ctx, protocol.BucketKey{ID: l.ID, Bucket: bucket})
	if err != nil || info == nil {
		return 0, err
	}
	return info.Count, nil
}

// since formats a time as an offset from base.
func since(at time.Duration) string {
	return "+" + strconv.FormatFloat(at.Seconds(), 'f', -1, 64) + "s"
}

// show formats a decision as the tables write it.
func show(h protocol.HitReply) string {
	switch {
	case h.Allowed && h.RetryAfterMs == 0:
		return fmt.Sprintf("allow(%d)", h.Count)
	case !h.Allowed && h.RetryAfterMs == protocol.Never:
		return fmt.Sprintf("never(%d)", h.Count)
	case !h.Allowed:
		return fmt.Sprintf("deny(%d, %d)", h.Count, h.RetryAfterMs)
	}
	return fmt.Sprintf("%+v", h)
}

// invalid checks that malformed checks fail with protocol.ErrInvalid.
func invalid(t *testing.T, e Env) {
	key := freshKey(t)
	ok := on(fix(60_000, 5), key)
	many := make([]protocol.CheckLimit, protocol.MaxCheckLimits+1)
	for i := range many {
		many[i] = ok
	}
	for name, c := range map[string]protocol.Check{
		"no limits":          {},
		"too many limits":    {Limits: many},
		"cost 0":             {Limits: []protocol.CheckLimit{ok, cost(ok, 0)}},
		"Hammer 6 scale 0":   {Limits: []protocol.CheckLimit{on(h6(0, 1), key)}},
		"Hammer 6 with rate": {Limits: []protocol.CheckLimit{withRate(on(h6(1000, 1), key))}},
		"bad policy":         {Limits: []protocol.CheckLimit{on(fix(0, 1), key)}},
		"id too long":        {Limits: []protocol.CheckLimit{ok, on(ok, strings.Repeat("x", protocol.MaxIDBytes+1))}},
	} {
		c.Now = e.Clock.Now().UnixMilli()
		if r, err := e.Backend.Check(context.Background(), c); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("%s: Check = %+v, %v; want an error wrapping protocol.ErrInvalid", name, r, err)
		}
	}
	if n, err := read(context.Background(), e.Backend, ok, e.Clock.Now().UnixMilli()); err != nil || n != 0 {
		t.Errorf("after the invalid checks, the valid limit among them counts %d, %v; want 0", n, err)
	}
}

// canceled checks that a check whose context is done fails and counts
// nothing.
func canceled(t *testing.T, e Env) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	key := freshKey(t)
	c := protocol.Check{Now: e.Clock.Now().UnixMilli(), Limits: []protocol.CheckLimit{
		on(h6(60_000, 5), key), on(fix(60_000, 5), key), on(token(1, 5), key)}}
	if r, err := e.Backend.Check(ctx, c); err == nil {
		t.Errorf("Check with a canceled context = %+v, want an error", r)
	}
	for i, l := range c.Limits {
		want := int64(0)
		if l.Policy.Algorithm == protocol.TokenBucket {
			want = l.Policy.Limit
		}
		if n, err := read(context.Background(), e.Backend, l, c.Now); err != nil || n != want {
			t.Errorf("limit %d after a canceled check: %d, %v; want %d", i, n, err, want)
		}
	}
}

// failed checks that a check failing on a key of another type (Redis's
// WRONGTYPE) counts nothing, not even for the limits before that key.
func failed(t *testing.T, e Env) {
	ctx := context.Background()
	key := freshKey(t)
	now := e.Clock.Now().UnixMilli()
	window := on(fix(60_000, 5), key)
	// A leaky bucket whose key is the fix window's: "<prefix>:<key>:<window>".
	w, _ := window.Policy.Window(now)
	squatter := leaky(1, 5).Policy
	squatter.Prefix = window.Policy.Prefix
	if _, err := e.Backend.Hit(ctx, protocol.Hit{Policy: squatter, ID: fmt.Sprintf("%s:%d", key, w), Cost: 1, Now: now}); err != nil {
		t.Fatal(err)
	}
	limits := []protocol.CheckLimit{on(h6(60_000, 5), key), on(token(1, 5), key), window}
	for _, all := range []bool{false, true} {
		c := protocol.Check{Now: now, AllOrNothing: all, Limits: limits}
		if r, err := e.Backend.Check(ctx, c); !errors.Is(err, protocol.ErrRedis) {
			t.Errorf("all or nothing %t: Check over a key of another type = %+v, %v; want WRONGTYPE (protocol.ErrRedis)", all, r, err)
		}
	}
	for i, want := range []int64{0, 5} {
		if n, err := read(ctx, e.Backend, limits[i], now); err != nil || n != want {
			t.Errorf("%s after the failed checks: %d, %v; want %d", name(limits[i]), n, err, want)
		}
	}
}
