package hammerredis_test

import (
	"context"
	"fmt"
	"log"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/internal/rules7"
	"github.com/hammer-go/hammerredis/internal/testenv"
	"github.com/hammer-go/hammerredis/protocol"
)

// Check on a real redis-server: every limit decided as its own call would
// decide it and its data written as its call would write it (compared with
// the calls one by one, on keys of their own), all-or-nothing writing
// nothing at all when a limit denies, and the failure paths of every call.

// checkStart is 2100-01-01, 0.25 s past a minute: a fix window's key
// expires at its window's end on Redis's own clock (PEXPIREAT), so its
// windows must lie ahead.
func checkStart() *rules7.Clock { return rules7.NewClock(at(4_102_444_800, 250_000)) }

// mixedLimits returns a limit of each kind, and a fix window and a token
// bucket whose keys are those of limits 1 and 4 again, with Hammer 7
// prefix p.
func mixedLimits(p string) []protocol.CheckLimit {
	return []protocol.CheckLimit{
		{Hammer6: true, Policy: protocol.Policy{ScaleMs: 60_000, Limit: 2}, ID: "k", Cost: 1},
		{Policy: protocol.Policy{Algorithm: protocol.FixWindow, Prefix: p, ScaleMs: 60_000, Limit: 3}, ID: "k", Cost: 1},
		{Policy: protocol.Policy{Algorithm: protocol.SlidingWindow, Prefix: p, ScaleMs: 10_000, Limit: 2}, ID: "k", Cost: 1},
		{Policy: protocol.Policy{Algorithm: protocol.LeakyBucket, Prefix: p, Limit: 3, Rate: 1}, ID: "lk", Cost: 1},
		{Policy: protocol.Policy{Algorithm: protocol.TokenBucket, Prefix: p, Limit: 2, Rate: 1}, ID: "tk", Cost: 1},
		{Policy: protocol.Policy{Algorithm: protocol.FixWindow, Prefix: p, ScaleMs: 60_000, Limit: 4}, ID: "k", Cost: 1},
		{Policy: protocol.Policy{Algorithm: protocol.TokenBucket, Prefix: p, Limit: 2, Rate: 1}, ID: "tk", Cost: 1},
	}
}

// withPrefix returns limits with Hammer 7 prefix p.
func withPrefix(limits []protocol.CheckLimit, p string) []protocol.CheckLimit {
	out := append([]protocol.CheckLimit(nil), limits...)
	for i := range out {
		if !out[i].Hammer6 {
			out[i].Policy.Prefix = p
		}
	}
	return out
}

// singly runs c's limits one by one as their own calls: CountHitN, judged
// as protocol/check.go says, or Hit.
func singly(t *testing.T, b *hammerredis.Backend, c protocol.Check) []protocol.HitReply {
	t.Helper()
	ctx := context.Background()
	out := make([]protocol.HitReply, len(c.Limits))
	for i, l := range c.Limits {
		if !l.Hammer6 {
			r, err := b.Hit(ctx, protocol.Hit{Policy: l.Policy, ID: l.ID, Cost: l.Cost, Now: c.Now})
			require.NoError(t, err)
			out[i] = r
			continue
		}
		bucket, toNext := l.Bucket6(c.Now)
		n, err := b.CountHitN(ctx, hammerredis.BucketKey{Bucket: bucket, ID: l.ID}, c.Now, l.Cost)
		require.NoError(t, err)
		out[i] = protocol.HitReply{Allowed: n <= l.Policy.Limit, Count: n}
		switch {
		case out[i].Allowed:
		case l.Cost > l.Policy.Limit:
			out[i].RetryAfterMs = protocol.Never
		default:
			out[i].RetryAfterMs = toNext
		}
	}
	return out
}

// checkKeys returns the Redis keys of c's limits on f.
func checkKeys(f *testenv.Fixture, c protocol.Check) []string {
	keys := make([]string, len(c.Limits))
	for i, l := range c.Limits {
		if l.Hammer6 {
			b, _ := l.Bucket6(c.Now)
			keys[i] = f.Key(l.ID, b)
		} else {
			keys[i] = l.Policy.Key(l.ID, c.Now)
		}
	}
	return keys
}

// stored is what a key holds: its DUMP ("" for no key) and PEXPIRETIME.
type stored struct {
	dump   string
	expiry int64
}

func snapshot(t *testing.T, admin redis.Conn, keys []string) []stored {
	t.Helper()
	out := make([]stored, len(keys))
	for i, k := range keys {
		d, err := redis.Bytes(admin.Do("DUMP", k))
		if err != redis.ErrNil {
			require.NoError(t, err, "DUMP %s", k)
		}
		out[i] = stored{string(d), testenv.Do(t, admin, "PEXPIRETIME", k).(int64)}
	}
	return out
}

// assertSameData asserts that the keys a and b hold the same data, their
// expiries within a second (a TTL starts at the real time of its call).
func assertSameData(t *testing.T, admin redis.Conn, a, b []string) {
	t.Helper()
	sa, sb := snapshot(t, admin, a), snapshot(t, admin, b)
	for i := range a {
		assert.NotEmpty(t, sa[i].dump, "%s exists", a[i])
		assert.Equal(t, sb[i].dump, sa[i].dump, "%s holds what %s holds", a[i], b[i])
		assert.InDelta(t, sb[i].expiry, sa[i].expiry, 1000, "%s expires when %s does", a[i], b[i])
	}
}

func TestCheckEachLimitCountsAsItsOwnCall(t *testing.T) {
	clk := checkStart()
	f, prefix := start7(t, clk)
	one, onePrefix := start7(t, clk)
	ctx := context.Background()
	c := protocol.Check{Limits: mixedLimits(prefix)}
	alone := protocol.Check{Limits: mixedLimits(onePrefix)}
	var got, want [][]protocol.HitReply
	for _, step := range []time.Duration{0, 0, time.Second, 2 * time.Second} {
		clk.Add(step)
		c.Now, alone.Now = clk.Now().UnixMilli(), clk.Now().UnixMilli()
		r, err := f.B.Check(ctx, c)
		require.NoError(t, err)
		got = append(got, r.Decisions)
		want = append(want, singly(t, one.B, alone))
	}
	assert.Equal(t, want, got, "every decision is its call's")
	assert.Equal(t, []protocol.HitReply{
		{Allowed: true, Count: 2}, {Allowed: true, Count: 3}, {Allowed: true, Count: 2}, {Allowed: true, Count: 2},
		{Count: 0, RetryAfterMs: 750}, {Allowed: true, Count: 4}, {Count: 0, RetryAfterMs: 750},
	}, got[1], "the second check: a later limit on a key sees the earlier's hit (the fix window's 3 and 4, the tokens taken)")
	assert.Equal(t, protocol.HitReply{Count: 4, RetryAfterMs: 59_750 - 3000}, got[3][0], "the Hammer 6 window counts its denied hits")
	assert.Equal(t, "4", hgetCount(t, f.Admin, f.Key("k", c.Now/60_000)))
	assertSameData(t, f.Admin, checkKeys(f, c), checkKeys(one, alone))
	assert.EqualValues(t, 4, f.B.Stats().Calls.Check)
}

func TestCheckAllOrNothing(t *testing.T) {
	clk := checkStart()
	f, prefix := start7(t, clk)
	one, onePrefix := start7(t, clk)
	ctx := context.Background()
	// The Hammer 6 window allows 2; the others more. Limit 5 counts in a
	// key no check writes before the denials.
	limits := []protocol.CheckLimit{
		{Hammer6: true, Policy: protocol.Policy{ScaleMs: 60_000, Limit: 2}, ID: "k", Cost: 1},
		{Policy: protocol.Policy{Algorithm: protocol.FixWindow, Prefix: prefix, ScaleMs: 60_000, Limit: 9}, ID: "k", Cost: 1},
		{Policy: protocol.Policy{Algorithm: protocol.SlidingWindow, Prefix: prefix, ScaleMs: 10_000, Limit: 9}, ID: "k", Cost: 1},
		{Policy: protocol.Policy{Algorithm: protocol.LeakyBucket, Prefix: prefix, Limit: 9, Rate: 1}, ID: "lk", Cost: 2},
		{Policy: protocol.Policy{Algorithm: protocol.TokenBucket, Prefix: prefix, Limit: 9, Rate: 1}, ID: "tk", Cost: 3},
	}
	c := protocol.Check{AllOrNothing: true, Limits: limits}
	alone := protocol.Check{Limits: withPrefix(limits, onePrefix)}
	for range 2 {
		c.Now, alone.Now = clk.Now().UnixMilli(), clk.Now().UnixMilli()
		r, err := f.B.Check(ctx, c)
		require.NoError(t, err)
		assert.Equal(t, singly(t, one.B, alone), r.Decisions, "allowed: charged as the calls one by one")
	}
	keys := checkKeys(f, c)
	assertSameData(t, f.Admin, keys, checkKeys(one, alone))

	fresh := protocol.CheckLimit{Policy: protocol.Policy{Algorithm: protocol.TokenBucket, Prefix: prefix, Limit: 9, Rate: 1}, ID: "fresh", Cost: 1}
	c.Limits = append(c.Limits, fresh)
	keys = append(keys, fresh.Policy.Key(fresh.ID, c.Now))
	before := snapshot(t, f.Admin, keys)
	r, err := f.B.Check(ctx, c)
	require.NoError(t, err)
	assert.Equal(t, []protocol.HitReply{
		{Count: 3, RetryAfterMs: 59_750}, {Allowed: true, Count: 3}, {Allowed: true, Count: 3},
		{Allowed: true, Count: 6}, {Allowed: true, Count: 0}, {Allowed: true, Count: 8},
	}, r.Decisions, "each limit's decision as its call would make it, the denied window's count with its hit")
	assert.False(t, c.Charged(r.Decisions))
	assert.Equal(t, before, snapshot(t, f.Admin, keys), "nothing written, not even an expiry")
	assert.Empty(t, before[5].dump, "the fresh bucket was never created")

	// Past the window of the sliding window's members: a check that is
	// denied does not even trim them.
	clk.Add(11 * time.Second)
	c.Now = clk.Now().UnixMilli()
	r, err = f.B.Check(ctx, c)
	require.NoError(t, err)
	assert.Equal(t, protocol.HitReply{Allowed: true, Count: 1}, r.Decisions[2], "the old members no longer count")
	assert.Equal(t, before, snapshot(t, f.Admin, keys))
	assert.EqualValues(t, 2, testenv.Do(t, f.Admin, "ZCARD", keys[2]))

	// The same check without AllOrNothing counts every limit.
	c.AllOrNothing = false
	r, err = f.B.Check(ctx, c)
	require.NoError(t, err)
	assert.False(t, r.Decisions[0].Allowed)
	assert.Equal(t, "3", hgetCount(t, f.Admin, keys[0]))
	assert.EqualValues(t, 1, testenv.Do(t, f.Admin, "ZCARD", keys[2]), "trimmed, then one member added")
	assert.EqualValues(t, 1, testenv.Do(t, f.Admin, "EXISTS", keys[5]))
}

func TestCheckShadowLimitsNeverBlockCharging(t *testing.T) {
	clk := checkStart()
	f, prefix := start7(t, clk)
	ctx := context.Background()
	c := protocol.Check{Now: clk.Now().UnixMilli(), AllOrNothing: true, Limits: []protocol.CheckLimit{
		{Hammer6: true, Policy: protocol.Policy{ScaleMs: 60_000, Limit: 1}, ID: "k", Cost: 1, Shadow: true},
		{Policy: protocol.Policy{Algorithm: protocol.SlidingWindow, Prefix: prefix, ScaleMs: 10_000, Limit: 1}, ID: "k", Cost: 1, Shadow: true},
		{Policy: protocol.Policy{Algorithm: protocol.FixWindow, Prefix: prefix, ScaleMs: 60_000, Limit: 2}, ID: "k", Cost: 1},
	}}
	keys := checkKeys(f, c)
	for i, want := range []struct {
		decisions   []protocol.HitReply
		h6, fix     string
		slidingSize int64
	}{
		{[]protocol.HitReply{{Allowed: true, Count: 1}, {Allowed: true, Count: 1}, {Allowed: true, Count: 1}}, "1", "1", 1},
		// The shadow limits deny: the check is allowed and charged; the
		// Hammer 6 window counts its denied hit, the sliding window not.
		{[]protocol.HitReply{{Count: 2, RetryAfterMs: 59_750}, {Count: 1, RetryAfterMs: 9750}, {Allowed: true, Count: 2}}, "2", "2", 1},
		// The fix window denies: nothing is charged, shadows included.
		{[]protocol.HitReply{{Count: 3, RetryAfterMs: 59_750}, {Count: 1, RetryAfterMs: 9750}, {Count: 3, RetryAfterMs: 59_750}}, "2", "2", 1},
	} {
		r, err := f.B.Check(ctx, c)
		require.NoError(t, err)
		assert.Equal(t, want.decisions, r.Decisions, "check %d", i+1)
		assert.Equal(t, i < 2, c.Allowed(r.Decisions), "check %d", i+1)
		assert.Equal(t, want.h6, hgetCount(t, f.Admin, keys[0]), "check %d", i+1)
		assert.Equal(t, want.fix, string(testenv.Do(t, f.Admin, "GET", keys[2]).([]byte)), "check %d", i+1)
		assert.Equal(t, want.slidingSize, testenv.Do(t, f.Admin, "ZCARD", keys[1]), "check %d", i+1)
	}
}

func TestCheckLimitsSharingAKey(t *testing.T) {
	clk := checkStart()
	f, prefix := start7(t, clk)
	ctx := context.Background()
	fix := protocol.Policy{Algorithm: protocol.FixWindow, Prefix: prefix, ScaleMs: 60_000, Limit: 5}
	narrow := fix
	narrow.Limit = 2
	now := clk.Now().UnixMilli()
	_, err := f.B.Hit(ctx, protocol.Hit{Policy: fix, ID: "k", Cost: 1, Now: now})
	require.NoError(t, err)
	c := protocol.Check{Now: now, AllOrNothing: true, Limits: []protocol.CheckLimit{
		{Policy: fix, ID: "k", Cost: 1}, {Policy: narrow, ID: "k", Cost: 1},
	}}
	r, err := f.B.Check(ctx, c)
	require.NoError(t, err)
	assert.Equal(t, []protocol.HitReply{{Allowed: true, Count: 2}, {Count: 3, RetryAfterMs: 59_750}}, r.Decisions,
		"the second limit sees the first's pending hit")
	assert.Equal(t, "1", string(testenv.Do(t, f.Admin, "GET", fix.Key("k", now)).([]byte)), "and nothing is written")
	c.AllOrNothing = false
	r, err = f.B.Check(ctx, c)
	require.NoError(t, err)
	assert.Equal(t, []protocol.HitReply{{Allowed: true, Count: 2}, {Count: 3, RetryAfterMs: 59_750}}, r.Decisions)
	assert.Equal(t, "3", string(testenv.Do(t, f.Admin, "GET", fix.Key("k", now)).([]byte)), "both hits counted")
}

func TestCheckComesBackAfterScriptFlush(t *testing.T) {
	clk := checkStart()
	f, prefix := start7(t, clk)
	ctx := context.Background()
	c := protocol.Check{Now: clk.Now().UnixMilli(), Limits: mixedLimits(prefix)[:3]}
	_, err := f.B.Check(ctx, c)
	require.NoError(t, err)
	testenv.Do(t, f.Admin, "SCRIPT", "FLUSH")
	r, err := f.B.Check(ctx, c)
	require.NoError(t, err, "NOSCRIPT: sent again as EVAL")
	assert.Equal(t, []protocol.HitReply{{Allowed: true, Count: 2}, {Allowed: true, Count: 2}, {Allowed: true, Count: 2}}, r.Decisions,
		"counted once, though sent twice")
}

func TestCheckRefusesKeysItsCallsWouldRefuse(t *testing.T) {
	clk := checkStart()
	f, prefix := start7(t, clk)
	ctx := context.Background()
	now := clk.Now().UnixMilli()
	for i, tc := range []struct {
		name   string
		spoil  func(key string)
		reason string
	}{
		{"a key of another type", func(key string) { testenv.Do(t, f.Admin, "SADD", key, "m") }, "WRONGTYPE"},
		{"a counter that is no integer", func(key string) { testenv.Do(t, f.Admin, "SET", key, "x") }, "not an integer"},
		{"a Hammer 6 count that is no integer", func(key string) { testenv.Do(t, f.Admin, "HSET", key, "count", "x") }, "not an integer"},
		{"a counter with a leading zero", func(key string) { testenv.Do(t, f.Admin, "SET", key, "07") }, "not an integer"},
	} {
		for _, all := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/all=%v", tc.name, all), func(t *testing.T) {
				c := protocol.Check{Now: now, AllOrNothing: all, Limits: withPrefix(mixedLimits(""), fmt.Sprint(prefix, i, all))}
				c.Limits[0].ID = fmt.Sprint("k", i, all)
				keys := checkKeys(f, c)
				spoilt := []int{2, 1, 0, 1}[i] // the sliding window, the fix window, the Hammer 6 bucket
				tc.spoil(keys[spoilt])
				_, err := f.B.Check(ctx, c)
				assert.ErrorIs(t, err, hammerredis.ErrRedis)
				assert.ErrorContains(t, err, tc.reason)
				for j, k := range keys {
					if k != keys[spoilt] {
						assert.EqualValues(t, 0, testenv.Do(t, f.Admin, "EXISTS", k), "limit %d's key %s", j, k)
					}
				}
				assert.EqualValues(t, -1, testenv.Do(t, f.Admin, "TTL", keys[spoilt]), "the spoilt key keeps no TTL")
			})
		}
	}
}

func TestCheckOnAPool(t *testing.T) {
	clk := checkStart()
	f := start(t, nil, hammerredis.WithScriptClock(hammerredis.Options{PoolSize: 3}, clk.Now))
	ctx := context.Background()
	prefix := fmt.Sprint("H7:pool:", testenv.Unique())
	for i := range 3 {
		c := protocol.Check{Now: clk.Now().UnixMilli(), Limits: mixedLimits(prefix)[:3]}
		for j := range c.Limits {
			c.Limits[j].ID = fmt.Sprint("id", j) // ids that the pool routes apart
			c.Limits[j].Policy.Limit = 10
		}
		r, err := f.B.Check(ctx, c)
		require.NoError(t, err)
		for j, d := range r.Decisions {
			assert.Equal(t, int64(i+1), d.Count, "check %d limit %d", i, j)
		}
	}
	assert.EqualValues(t, 3, f.B.Stats().Calls.Check)
}

func TestCheckViaSentinel(t *testing.T) {
	if testing.Short() {
		t.Skip("a sentinel group takes seconds to start: make test runs it")
	}
	g := redistest.NewSentinelGroup(t)
	f := startOnGroup(t, g)
	now := time.Now().UnixMilli()
	c := protocol.Check{Now: now, Limits: []protocol.CheckLimit{
		{Hammer6: true, Policy: protocol.Policy{ScaleMs: 60_000, Limit: 5}, ID: "m", Cost: 1},
		{Policy: protocol.Policy{Algorithm: protocol.LeakyBucket, Prefix: "H7", Limit: 10, Rate: 1}, ID: "m", Cost: 4},
	}}
	r, err := f.B.Check(context.Background(), c)
	require.NoError(t, err)
	assert.Equal(t, []protocol.HitReply{{Allowed: true, Count: 1}, {Allowed: true, Count: 4}}, r.Decisions)
	master := g.Master().Conn(t)
	assert.Equal(t, "1", hgetCount(t, master, f.Key("m", now/60_000)), "counted on the master")
	assert.Equal(t, []byte("4"), testenv.Do(t, master, "HGET", "H7:m", "level"))
}

// TestCheckTimeoutsCancelsAndStop walks a check through the failure paths
// it shares with the other calls: in the air past its timeout (outcome
// unknown, run once), queued behind it and timed out or cancelled (never
// sent), and after Stop.
func TestCheckTimeoutsCancelsAndStop(t *testing.T) {
	srv := redistest.New(t)
	f := start(t, srv, hammerredis.Options{RedixConfig: named("slowcheck"), CallTimeout: 300 * time.Millisecond})
	// Windows, which read Now only: a bucket would leak or refill meanwhile.
	c := protocol.Check{Now: checkStart().Now().UnixMilli(), Limits: []protocol.CheckLimit{
		{Hammer6: true, Policy: protocol.Policy{ScaleMs: 60_000, Limit: 100}, ID: "t", Cost: 1},
		{Policy: protocol.Policy{Algorithm: protocol.FixWindow, Prefix: "H7", ScaleMs: 60_000, Limit: 100}, ID: "t", Cost: 1},
	}}
	check := func(ctx context.Context) error {
		_, err := f.B.Check(ctx, c)
		return err
	}
	testenv.Do(t, f.Admin, "CLIENT", "PAUSE", 20000, "WRITE")

	assert.ErrorIs(t, check(context.Background()), hammerredis.ErrTimeout, "in the air: the call timeout passes")
	waitClient(t, f.Admin, "slowcheck", func(l string) bool { return strings.Contains(l, " flags=b ") })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, check(ctx), context.DeadlineExceeded, "queued behind it")
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	assert.ErrorIs(t, check(ctx), context.Canceled)

	testenv.Do(t, f.Admin, "CLIENT", "UNPAUSE")
	r, err := f.B.Check(context.Background(), c)
	require.NoError(t, err)
	assert.Equal(t, []protocol.HitReply{{Allowed: true, Count: 2}, {Allowed: true, Count: 2}}, r.Decisions,
		"the check in the air ran once when Redis resumed; the abandoned ones never did")
	st := f.B.Stats()
	assert.EqualValues(t, 4, st.Calls.Check)
	assert.EqualValues(t, 2, st.Errors.Timeout)
	assert.EqualValues(t, 1, st.Errors.Canceled)

	hammerredis.Stop(f.B)
	assert.ErrorIs(t, check(context.Background()), hammerredis.ErrStopped)
}

func TestCheckRefusesInvalidChecksUnsent(t *testing.T) {
	f, prefix := start7(t, nil)
	fix := protocol.Policy{Algorithm: protocol.FixWindow, Prefix: prefix, ScaleMs: 1000, Limit: 1}
	limits := make([]protocol.CheckLimit, protocol.MaxCheckLimits+1)
	for i := range limits {
		limits[i] = protocol.CheckLimit{Policy: fix, ID: "k", Cost: 1}
	}
	before := cmdCalls(t, f.Admin, "evalsha")
	for _, c := range []protocol.Check{
		{},
		{Limits: limits},
		{Limits: []protocol.CheckLimit{{Policy: fix, ID: "k"}}},
		{Limits: []protocol.CheckLimit{{Hammer6: true, Policy: fix, ID: "k", Cost: 1}}},
	} {
		_, err := f.B.Check(context.Background(), c)
		assert.ErrorIs(t, err, hammerredis.ErrInvalid, "%d limits", len(c.Limits))
	}
	assert.Equal(t, before, cmdCalls(t, f.Admin, "evalsha"), "nothing sent")
	assert.EqualValues(t, 4, f.B.Stats().Errors.Invalid)
}

func ExampleBackend_Check() {
	b, err := hammerredis.Start(hammerredis.Options{ExpiryMs: 60_000, RedisURL: redisURL})
	if err != nil {
		log.Fatal(err)
	}
	defer hammerredis.Stop(b)
	ctx := context.Background()
	if err := b.WaitConnected(ctx); err != nil {
		log.Fatal(err)
	}
	// 2 requests a minute (a Hammer 6 window) and 100 an hour (a Hammer 7
	// sliding window) for user 42; a request denied by one costs neither.
	perMinute := protocol.CheckLimit{Hammer6: true, Policy: protocol.Policy{ScaleMs: 60_000, Limit: 2},
		ID: "example:check:user:42", Cost: 1}
	perHour := protocol.CheckLimit{Policy: protocol.Policy{Algorithm: protocol.SlidingWindow, Prefix: "example:check",
		ScaleMs: 3_600_000, Limit: 100}, ID: "user:42", Cost: 1}
	c := protocol.Check{Now: time.Now().UnixMilli(), AllOrNothing: true, Limits: []protocol.CheckLimit{perMinute, perHour}}
	for range 3 {
		r, err := b.Check(ctx, c)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("allowed %t, charged %t: %d this minute, %d this hour\n",
			c.Allowed(r.Decisions), c.Charged(r.Decisions), r.Decisions[0].Count, r.Decisions[1].Count)
	}
	n, err := b.Get(ctx, protocol.Get{Policy: perHour.Policy, ID: perHour.ID})
	fmt.Println("counted this hour:", n, err)

	b.DeleteBuckets(ctx, perMinute.ID)
	b.Set(ctx, protocol.Set{Policy: perHour.Policy, ID: perHour.ID}) // a count of 0 deletes the window
	// Output:
	// allowed true, charged true: 1 this minute, 1 this hour
	// allowed true, charged true: 2 this minute, 2 this hour
	// allowed false, charged false: 3 this minute, 3 this hour
	// counted this hour: 2 <nil>
}

// TestCheckUnderTheACLOfItsCalls: a user allowed Hammer 6's calls and
// Hammer 7's (docs/security.md) may run checks of both.
func TestCheckUnderTheACLOfItsCalls(t *testing.T) {
	srv := testenv.ACLServer(t)
	admin := srv.Conn(t)
	rules := append(slices.Clone(testenv.MinimalCommands), "~H7:*")
	testenv.SetUser(t, admin, "both", testenv.ACLRules("~"+testenv.ACLPrefix+"*", append(rules, hammer7Commands...)...))
	clk := checkStart()
	f := start(t, srv, hammerredis.WithScriptClock(hammerredis.Options{KeyPrefix: testenv.ACLPrefix,
		RedisURL: testenv.UserURL("redis", "both", testenv.ACLPassword, srv.Addr())}, clk.Now))
	for _, all := range []bool{false, true} {
		c := protocol.Check{Now: clk.Now().UnixMilli(), AllOrNothing: all, Limits: mixedLimits("H7")}
		r, err := f.B.Check(context.Background(), c)
		require.NoError(t, err, "all=%v", all)
		assert.True(t, r.Decisions[0].Allowed)
	}
}
