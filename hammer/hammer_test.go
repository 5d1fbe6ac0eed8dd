package hammer_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/internal/testmain"
	"github.com/hammer-go/hammerredis/memory"
)

var srv *redistest.Server

func TestMain(m *testing.M) {
	os.Exit(testmain.Main(m, func(s *redistest.Server) { srv = s }))
}

// clock is a test clock that only moves when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var prefixes atomic.Int64

var quiet = slog.New(slog.DiscardHandler)

// backends returns one fresh backend of each kind; every test runs against
// all of them with the same table.
func backends(t *testing.T) map[string]hammer.Backend {
	t.Helper()
	r, err := hammerredis.Start(hammerredis.Options{ExpiryMs: 3_600_000, RedisURL: srv.URL(),
		KeyPrefix: fmt.Sprintf("T:%s:%d:", t.Name(), prefixes.Add(1)), Logger: quiet})
	require.NoError(t, err)
	t.Cleanup(func() { hammerredis.Stop(r) })
	require.NoError(t, r.WaitConnected(context.Background()))
	m, err := memory.New(memory.Options{ExpiryMs: 3_600_000})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return map[string]hammer.Backend{"redis": r, "memory": m}
}

// A minute-aligned instant: bucket 28333334 of a 1-minute scale starts here.
var t0 = time.UnixMilli(1_700_000_040_000)

// step is one call of a rate-checking script.
type step struct {
	at      time.Duration // since t0: the limiter's clock, the now of the call
	op      string        // check, inc, inspect, delete, or wait
	id      string
	inc     int64
	allowed bool
	count   int64
	remain  int64
	// for check and inc: the error wanted, wrapping err and saying errHas
	err    error
	errHas string
	// for inspect
	exists           bool
	created, updated time.Duration // since t0
	toNext           int64
	deleted          int64
	// for wait: how far the backend's own wall clock moves, which expires
	// buckets; the limiter's clock is at
	wall time.Duration
}

// defaultExpiryMs is the ExpiryMs of the rule table's backends unless a
// case sets its own.
const defaultExpiryMs = 3_600_000

// ruleBackend is a backend of the rule table with a way to move its wall
// clock, the one that expires buckets.
type ruleBackend struct {
	hammer.Backend
	wait func(d time.Duration)
}

// runOn runs script on a fresh backend of kind "redis" or "memory" with
// expiryMs. A memory backend runs in a synctest bubble, whose clock a wait
// moves. Redis's clock cannot be moved, but expiry is the only thing in
// Redis that time changes: a wait shrinks the TTL of each of the backend's
// keys by d, deleting a key whose TTL runs out, as Redis would expire it.
// Redis's own clock moves on meanwhile, by milliseconds, so scripts keep
// well away from the instant a bucket expires.
func runOn(t *testing.T, kind string, expiryMs int64, script func(t *testing.T, b ruleBackend)) {
	t.Helper()
	switch kind {
	case "memory":
		synctest.Test(t, func(t *testing.T) {
			m, err := memory.New(memory.Options{ExpiryMs: expiryMs})
			require.NoError(t, err)
			defer m.Close()
			script(t, ruleBackend{m, time.Sleep})
		})
	case "redis":
		// A prefix without glob characters, to SCAN for.
		prefix := fmt.Sprintf("T:rules:%d:", prefixes.Add(1))
		r, err := hammerredis.Start(hammerredis.Options{ExpiryMs: expiryMs, RedisURL: srv.URL(),
			KeyPrefix: prefix, Logger: quiet})
		require.NoError(t, err)
		defer hammerredis.Stop(r)
		require.NoError(t, r.WaitConnected(context.Background()))
		admin := srv.Conn(t)
		wait := func(d time.Duration) {
			keys, err := redis.Strings(admin.Do("KEYS", prefix+"*"))
			require.NoError(t, err)
			for _, k := range keys {
				pttl, err := redis.Int64(admin.Do("PTTL", k))
				require.NoError(t, err)
				require.GreaterOrEqual(t, pttl, int64(0), "a bucket key without a TTL: %q", k)
				if left := pttl - d.Milliseconds(); left > 0 {
					_, err = admin.Do("PEXPIRE", k, left)
				} else {
					_, err = admin.Do("DEL", k)
				}
				require.NoError(t, err)
			}
		}
		script(t, ruleBackend{r, wait})
	default:
		t.Fatalf("unknown backend kind %q", kind)
	}
}

func TestHammerRules(t *testing.T) {
	const limit = 3
	scale := time.Minute
	tests := []struct {
		name     string
		expiryMs int64 // 0: defaultExpiryMs
		steps    []step
	}{
		{"limit 3: allow 1, 2, 3, deny, deny; inspect before and after", 0, []step{
			{at: 0, op: "inspect", id: "u", count: 0, remain: 3, toNext: 60000},
			{at: 0, op: "check", id: "u", allowed: true, count: 1, remain: 2},
			{at: 10 * time.Millisecond, op: "check", id: "u", allowed: true, count: 2, remain: 1},
			{at: 20 * time.Millisecond, op: "check", id: "u", allowed: true, count: 3, remain: 0},
			{at: 30 * time.Millisecond, op: "check", id: "u", allowed: false, count: 4, remain: 0},
			{at: 40 * time.Millisecond, op: "check", id: "u", allowed: false, count: 5, remain: 0},
			{at: 15 * time.Second, op: "inspect", id: "u", count: 5, remain: 0, toNext: 45000,
				exists: true, created: 0, updated: 40 * time.Millisecond},
			{at: 15 * time.Second, op: "inspect", id: "other", count: 0, remain: 3, toNext: 45000},
		}},
		{"windows roll over at epoch-aligned boundaries", 0, []step{
			{at: 59 * time.Second, op: "check", id: "w", allowed: true, count: 1, remain: 2},
			{at: 59*time.Second + 999*time.Millisecond, op: "inc", id: "w", inc: 5, allowed: false, count: 6, remain: 0},
			{at: 60 * time.Second, op: "check", id: "w", allowed: true, count: 1, remain: 2},
			{at: 60 * time.Second, op: "inspect", id: "w", count: 1, remain: 2, toNext: 60000,
				exists: true, created: 60 * time.Second, updated: 60 * time.Second},
		}},
		{"increments", 0, []step{
			{at: 0, op: "inc", id: "i", inc: 3, allowed: true, count: 3, remain: 0},
			{at: time.Millisecond, op: "inc", id: "i", inc: 1, allowed: false, count: 4, remain: 0},
		}},
		{"delete resets every window of an id, and only that id", 0, []step{
			{at: 0, op: "check", id: "d", allowed: true, count: 1, remain: 2},
			{at: time.Minute, op: "check", id: "d", allowed: true, count: 1, remain: 2},
			{at: time.Minute, op: "check", id: "d:x", allowed: true, count: 1, remain: 2},
			{at: time.Minute, op: "delete", id: "d", deleted: 2},
			{at: time.Minute, op: "check", id: "d", allowed: true, count: 1, remain: 2},
			{at: time.Minute, op: "check", id: "d:x", allowed: true, count: 2, remain: 1},
		}},
		// Redis sets a TTL of round(ExpiryMs/1000 + 1) s on every hit
		// (protocol.ExpirySeconds): 3 s for 1500 ms.
		{"a bucket lives round(ExpiryMs/1000+1) s after its latest hit: 3 s for ExpiryMs 1500", 1500, []step{
			{at: 0, op: "check", id: "e", allowed: true, count: 1, remain: 2},
			{op: "wait", wall: 2 * time.Second},
			{at: 2 * time.Second, op: "check", id: "e", allowed: true, count: 2, remain: 1},
			{op: "wait", wall: 2900 * time.Millisecond},
			{at: 4900 * time.Millisecond, op: "inspect", id: "e", count: 2, remain: 1, toNext: 55100,
				exists: true, created: 0, updated: 2 * time.Second},
			{op: "wait", wall: 200 * time.Millisecond},
			{at: 5100 * time.Millisecond, op: "inspect", id: "e", count: 0, remain: 3, toNext: 54900},
			{at: 5100 * time.Millisecond, op: "check", id: "e", allowed: true, count: 1, remain: 2},
		}},
		// Redis's HINCRBY fails, so the script stops before writing or
		// refreshing the TTL.
		{"an overflowing hit is a Redis error and changes nothing, not even the expiry", 1500, []step{
			{at: 0, op: "inc", id: "o", inc: math.MaxInt64, allowed: false, count: math.MaxInt64, remain: 0},
			{at: time.Millisecond, op: "inc", id: "o", inc: 1, err: hammerredis.ErrRedis, errHas: "increment or decrement would overflow"},
			{op: "wait", wall: 2 * time.Second},
			{at: 2 * time.Second, op: "inc", id: "o", inc: 1, err: hammerredis.ErrRedis, errHas: "increment or decrement would overflow"},
			{at: 2 * time.Second, op: "check", id: "o", err: hammerredis.ErrRedis, errHas: "increment or decrement would overflow"},
			{at: 2 * time.Second, op: "inspect", id: "o", count: math.MaxInt64, remain: 0, toNext: 58000,
				exists: true, created: 0, updated: 0},
			{op: "wait", wall: 1500 * time.Millisecond},
			{at: 3500 * time.Millisecond, op: "inspect", id: "o", count: 0, remain: 3, toNext: 56500},
			{at: 3500 * time.Millisecond, op: "check", id: "o", allowed: true, count: 1, remain: 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expiryMs := tt.expiryMs
			if expiryMs == 0 {
				expiryMs = defaultExpiryMs
			}
			for _, kind := range []string{"redis", "memory"} {
				t.Run(kind, func(t *testing.T) {
					runOn(t, kind, expiryMs, func(t *testing.T, b ruleBackend) { runSteps(t, b, limit, scale, tt.steps) })
				})
			}
		})
	}
}

// runSteps runs a rule script on b.
func runSteps(t *testing.T, b ruleBackend, limit int64, scale time.Duration, steps []step) {
	t.Helper()
	c := &clock{}
	l := hammer.New(b).WithClock(c.now)
	ctx := context.Background()
	for i, s := range steps {
		if s.op == "wait" {
			b.wait(s.wall)
			continue
		}
		c.set(t0.Add(s.at))
		where := fmt.Sprintf("step %d (%s %q at t0+%v)", i, s.op, s.id, s.at)
		switch s.op {
		case "check", "inc":
			var r hammer.Result
			var err error
			if s.op == "check" {
				r, err = l.CheckRate(ctx, s.id, scale, limit)
			} else {
				r, err = l.CheckRateInc(ctx, s.id, scale, limit, s.inc)
			}
			if s.err != nil {
				require.ErrorIs(t, err, s.err, where)
				require.ErrorContains(t, err, s.errHas, where)
				continue
			}
			require.NoError(t, err, where)
			assert.Equal(t, s.allowed, r.Allowed, "%s: Allowed", where)
			assert.Equal(t, s.count, r.Count, "%s: Count", where)
			assert.Equal(t, s.remain, r.Remaining, "%s: Remaining", where)
			assert.Equal(t, limit, r.Limit, "%s: Limit", where)
			end := t0.Add(s.at).Truncate(time.Minute).Add(time.Minute)
			assert.True(t, r.Reset.Equal(end), "%s: Reset %v, want %v", where, r.Reset, end)
			assert.Equal(t, end.Sub(t0.Add(s.at)), r.ResetAfter, "%s: ResetAfter", where)
		case "inspect":
			in, err := l.InspectBucket(ctx, s.id, scale, limit)
			require.NoError(t, err, where)
			want := hammer.Inspection{Count: s.count, Remaining: s.remain, MsToNextBucket: s.toNext, Exists: s.exists}
			if s.exists {
				want.Created = t0.Add(s.created).UnixMilli()
				want.Updated = t0.Add(s.updated).UnixMilli()
			}
			assert.Equal(t, want, in, where)
		case "delete":
			n, err := l.DeleteBuckets(ctx, s.id)
			require.NoError(t, err, where)
			assert.Equal(t, s.deleted, n, where)
		default:
			t.Fatalf("%s: unknown op", where)
		}
	}
}

func TestRateCheckerWithPrefix(t *testing.T) {
	for name, b := range backends(t) {
		t.Run(name, func(t *testing.T) {
			c := &clock{t: t0}
			l := hammer.New(b).WithClock(c.now)
			ctx := context.Background()
			login := l.MakeRateChecker("login:", time.Second, 1)
			r, err := login(ctx, "alice")
			require.NoError(t, err)
			assert.True(t, r.Allowed)
			r, err = login(ctx, "alice")
			require.NoError(t, err)
			assert.False(t, r.Allowed)

			in, err := l.InspectBucket(ctx, "login:alice", time.Second, 1)
			require.NoError(t, err)
			assert.Equal(t, int64(2), in.Count, "the checker counts under its prefix")
			in, err = l.InspectBucket(ctx, "alice", time.Second, 1)
			require.NoError(t, err)
			assert.False(t, in.Exists)
		})
	}
}

func TestLimitZeroDeniesEverything(t *testing.T) {
	for name, b := range backends(t) {
		t.Run(name, func(t *testing.T) {
			l := hammer.New(b).WithClock(func() time.Time { return t0 })
			r, err := l.CheckRate(context.Background(), "z", time.Second, 0)
			require.NoError(t, err)
			assert.False(t, r.Allowed)
			assert.Equal(t, int64(0), r.Remaining)
		})
	}
}

func TestInvalidArguments(t *testing.T) {
	for name, b := range backends(t) {
		t.Run(name, func(t *testing.T) {
			l := hammer.New(b)
			ctx := context.Background()
			for _, scale := range []time.Duration{0, -time.Second, 999 * time.Microsecond, 1500 * time.Microsecond} {
				_, err := l.CheckRate(ctx, "x", scale, 1)
				assert.ErrorIs(t, err, hammerredis.ErrInvalid, "scale %v", scale)
				_, err = l.InspectBucket(ctx, "x", scale, 1)
				assert.ErrorIs(t, err, hammerredis.ErrInvalid, "scale %v", scale)
			}
			_, err := l.CheckRate(ctx, "x", time.Second, -1)
			assert.ErrorIs(t, err, hammerredis.ErrInvalid)
			_, err = l.InspectBucket(ctx, "x", time.Second, -1)
			assert.ErrorIs(t, err, hammerredis.ErrInvalid)
			for _, inc := range []int64{0, -1} {
				_, err = l.CheckRateInc(ctx, "x", time.Second, 1, inc)
				assert.ErrorIs(t, err, hammerredis.ErrInvalid, "increment %d", inc)
			}
			in, err := l.InspectBucket(ctx, "x", time.Second, 1)
			require.NoError(t, err)
			assert.False(t, in.Exists, "nothing was counted by the invalid calls")
		})
	}
}

func TestBackendErrorsPassThrough(t *testing.T) {
	b, err := hammerredis.Start(hammerredis.Options{ExpiryMs: 1000, RedisURL: "redis://127.0.0.1:1", Logger: quiet})
	require.NoError(t, err)
	defer hammerredis.Stop(b)
	l := hammer.New(b)
	_, err = l.CheckRate(context.Background(), "x", time.Second, 1)
	assert.ErrorIs(t, err, hammerredis.ErrClosed)
	_, err = l.InspectBucket(context.Background(), "x", time.Second, 1)
	assert.ErrorIs(t, err, hammerredis.ErrClosed)
	_, err = l.DeleteBuckets(context.Background(), "x")
	assert.ErrorIs(t, err, hammerredis.ErrClosed)
}

func TestConcurrentChecksAreExact(t *testing.T) {
	for name, b := range backends(t) {
		t.Run(name, func(t *testing.T) {
			l := hammer.New(b).WithClock(func() time.Time { return t0 })
			var allowed atomic.Int64
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 25 {
						r, err := l.CheckRate(context.Background(), "c", time.Minute, 50)
						if err != nil {
							t.Error(err)
							return
						}
						if r.Allowed {
							allowed.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			assert.Equal(t, int64(50), allowed.Load(), "exactly the limit is allowed out of 200")
		})
	}
}
