package hammerredis_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/hammer7"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/internal/rules7"
	"github.com/hammer-go/hammerredis/internal/testenv"
	"github.com/hammer-go/hammerredis/protocol"
)

// Hammer 7's data on a real redis-server: what the backend writes, read
// back with raw commands in the shape hammer_backend_redis 7.x writes it
// (HAMMER7.md §3-7), and data written the way Elixir writes it, counted
// into by the backend.

// start7 starts a backend on the shared server whose scripts read clk
// (nil: Redis TIME), and returns it with a Hammer 7 prefix of the test's own.
func start7(t *testing.T, clk *rules7.Clock) (*testenv.Fixture, string) {
	t.Helper()
	opts := hammerredis.Options{}
	if clk != nil {
		opts = hammerredis.WithScriptClock(opts, clk.Now)
	}
	f := testenv.Start(t, shared, opts)
	return f, fmt.Sprintf("H7:%s:%d", t.Name(), testenv.Unique())
}

func at(s, us int64) time.Time { return time.Unix(s, us*1000) }

func TestHammer7FixWindowWritesElixirsCounter(t *testing.T) {
	f, prefix := start7(t, nil)
	ctx := context.Background()
	p := protocol.Policy{Algorithm: protocol.FixWindow, Prefix: prefix, ScaleMs: 60_000, Limit: 2}
	// A window that ends in the future: PEXPIREAT of a past instant deletes.
	now := time.Now().UnixMilli()
	_, end := p.Window(now)
	key := fmt.Sprintf("%s:user:42:%d", prefix, now/60_000)

	for i, want := range []protocol.HitReply{{Allowed: true, Count: 1}, {Allowed: true, Count: 2}, {Count: 3, RetryAfterMs: end - now}} {
		got, err := f.B.Hit(ctx, protocol.Hit{Policy: p, ID: "user:42", Cost: 1, Now: now})
		require.NoError(t, err)
		assert.Equal(t, want, got, "hit %d", i+1)
	}
	assert.Equal(t, "3", string(testenv.Do(t, f.Admin, "GET", key).([]byte)))
	assert.Equal(t, end, testenv.Do(t, f.Admin, "PEXPIRETIME", key), "the window's end, to the ms")

	// inc, set and get on the same key; set keeps the window's expiry.
	n, err := f.B.Inc(ctx, protocol.Inc{Policy: p, ID: "user:42", N: 4, Now: now})
	require.NoError(t, err)
	assert.EqualValues(t, 7, n)
	n, err = f.B.Set(ctx, protocol.Set{Policy: p, ID: "user:42", Count: 1, Now: now})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
	assert.Equal(t, end, testenv.Do(t, f.Admin, "PEXPIRETIME", key))
	n, err = f.B.Get(ctx, protocol.Get{Policy: p, ID: "user:42", Now: now})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
	n, err = f.B.Get(ctx, protocol.Get{Policy: p, ID: "nobody", Now: now})
	require.NoError(t, err)
	assert.Zero(t, n)

	// A cost above the limit is denied for good.
	got, err := f.B.Hit(ctx, protocol.Hit{Policy: p, ID: "big", Cost: 3, Now: now})
	require.NoError(t, err)
	assert.Equal(t, protocol.HitReply{Count: 3, RetryAfterMs: protocol.Never}, got)
}

func TestHammer7FixWindowCountsIntoElixirsKey(t *testing.T) {
	f, prefix := start7(t, nil)
	p := protocol.Policy{Algorithm: protocol.FixWindow, Prefix: prefix, ScaleMs: 1500, Limit: 5}
	now := time.Now().UnixMilli()
	w, end := p.Window(now)
	key := fmt.Sprintf("%s:k:%d", prefix, w)
	// Elixir's pipeline: INCRBY, then EXPIREAT in whole seconds, NX.
	testenv.Do(t, f.Admin, "INCRBY", key, 2)
	testenv.Do(t, f.Admin, "EXPIREAT", key, end/1000+1, "NX")
	got, err := f.B.Hit(context.Background(), protocol.Hit{Policy: p, ID: "k", Cost: 1, Now: now})
	require.NoError(t, err)
	assert.Equal(t, protocol.HitReply{Allowed: true, Count: 3}, got)
	assert.Equal(t, (end/1000+1)*1000, testenv.Do(t, f.Admin, "PEXPIRETIME", key), "NX: the first writer's expiry stands")
}

func TestHammer7SlidingWindowData(t *testing.T) {
	clk := &rules7.Clock{}
	f, prefix := start7(t, clk)
	ctx := context.Background()
	p := protocol.Policy{Algorithm: protocol.SlidingWindow, Prefix: prefix, ScaleMs: 10_000, Limit: 2}
	key := prefix + ":user:42:10000"
	hit := func(when time.Time) protocol.HitReply {
		clk.Set(when)
		r, err := f.B.Hit(ctx, protocol.Hit{Policy: p, ID: "user:42", Cost: 1})
		require.NoError(t, err)
		return r
	}
	// HAMMER7.md §12, with the true wait on the deny: the first member
	// (second 1700000000) leaves at 1700000010.
	assert.Equal(t, protocol.HitReply{Allowed: true, Count: 1}, hit(at(1700000000, 250000)))
	assert.Equal(t, protocol.HitReply{Allowed: true, Count: 2}, hit(at(1700000003, 7)))
	assert.Equal(t, protocol.HitReply{Count: 2, RetryAfterMs: 4500}, hit(at(1700000005, 500000)))
	assert.Equal(t, protocol.HitReply{Allowed: true, Count: 2}, hit(at(1700000010, 100000)))

	members, err := redis.Strings(f.Admin.Do("ZRANGE", key, 0, -1, "WITHSCORES"))
	require.NoError(t, err)
	assert.Equal(t, []string{"1700000003-7-1", "1700000003", "1700000010-100000-1", "1700000010"}, members)
	ttl := testenv.Do(t, f.Admin, "TTL", key).(int64)
	assert.True(t, ttl > 8 && ttl <= 10, "EXPIRE w: TTL %d", ttl)

	// Elixir's members (all digits) count and trim alike.
	testenv.Do(t, f.Admin, "ZADD", key, 1700000010, "17000000101000001")
	clk.Set(at(1700000011, 0))
	n, err := f.B.Get(ctx, protocol.Get{Policy: p, ID: "user:42"})
	require.NoError(t, err)
	assert.EqualValues(t, 3, n)
}

func TestHammer7BucketsData(t *testing.T) {
	clk := &rules7.Clock{}
	f, prefix := start7(t, clk)
	ctx := context.Background()
	s0 := int64(1700000000)
	for _, tc := range []struct {
		alg   protocol.Algorithm
		steps []struct {
			s, cost int64
			want    protocol.HitReply
		}
		level, last string
		ttl         int64
	}{{
		// HAMMER7.md §12, without the overshoot: cost 2 fits at s0+3 (the
		// level has leaked to 1), cost 5 never fits a capacity of 3.
		alg: protocol.LeakyBucket,
		steps: []struct {
			s, cost int64
			want    protocol.HitReply
		}{
			{s0, 1, protocol.HitReply{Allowed: true, Count: 1}},
			{s0, 1, protocol.HitReply{Allowed: true, Count: 2}},
			{s0, 1, protocol.HitReply{Allowed: true, Count: 3}},
			{s0, 1, protocol.HitReply{Count: 3, RetryAfterMs: 1000}},
			{s0 + 1, 1, protocol.HitReply{Allowed: true, Count: 3}},
			{s0 + 3, 5, protocol.HitReply{Count: 1, RetryAfterMs: protocol.Never}},
			{s0 + 3, 2, protocol.HitReply{Allowed: true, Count: 3}},
		},
		level: "3", last: "1700000003", ttl: 63,
	}, {
		// HAMMER7.md §12 with the true waits on the denies.
		alg: protocol.TokenBucket,
		steps: []struct {
			s, cost int64
			want    protocol.HitReply
		}{
			{s0, 1, protocol.HitReply{Allowed: true, Count: 2}},
			{s0, 1, protocol.HitReply{Allowed: true, Count: 1}},
			{s0, 1, protocol.HitReply{Allowed: true, Count: 0}},
			{s0, 1, protocol.HitReply{Count: 0, RetryAfterMs: 1000}},
			{s0 + 2, 2, protocol.HitReply{Allowed: true, Count: 0}},
			{s0 + 3, 3, protocol.HitReply{Count: 1, RetryAfterMs: 2000}},
			{s0 + 3, 4, protocol.HitReply{Count: 1, RetryAfterMs: protocol.Never}},
		},
		level: "0", last: "1700000002", ttl: 63,
	}} {
		t.Run(tc.alg.String(), func(t *testing.T) {
			p := protocol.Policy{Algorithm: tc.alg, Prefix: prefix, Limit: 3, Rate: 1}
			for i, st := range tc.steps {
				clk.Set(at(st.s, 0))
				got, err := f.B.Hit(ctx, protocol.Hit{Policy: p, ID: "user:42", Cost: st.cost})
				require.NoError(t, err)
				assert.Equal(t, st.want, got, "step %d", i+1)
			}
			key := prefix + ":user:42"
			h, err := redis.StringMap(f.Admin.Do("HGETALL", key))
			require.NoError(t, err)
			assert.Equal(t, map[string]string{"level": tc.level, "last_update": tc.last}, h)
			assert.Equal(t, tc.ttl, testenv.Do(t, f.Admin, "TTL", key))
		})
	}
}

func TestHammer7RefusesKeysOfAnotherType(t *testing.T) {
	clk := rules7.NewClock(at(1700000000, 0))
	f, prefix := start7(t, clk)
	ctx := context.Background()
	now := time.Now().UnixMilli()
	for _, p := range []protocol.Policy{
		{Algorithm: protocol.FixWindow, Prefix: prefix, ScaleMs: 60_000, Limit: 5},
		{Algorithm: protocol.SlidingWindow, Prefix: prefix, ScaleMs: 60_000, Limit: 5},
		{Algorithm: protocol.LeakyBucket, Prefix: prefix, Limit: 5, Rate: 1},
		{Algorithm: protocol.TokenBucket, Prefix: prefix, Limit: 5, Rate: 1},
	} {
		t.Run(p.Algorithm.String(), func(t *testing.T) {
			key := p.Key("x", now)
			typ := "SADD" // a type none of them writes
			testenv.Do(t, f.Admin, typ, key, "m")
			_, err := f.B.Hit(ctx, protocol.Hit{Policy: p, ID: "x", Cost: 1, Now: now})
			assert.ErrorIs(t, err, hammerredis.ErrRedis)
			assert.ErrorContains(t, err, "WRONGTYPE")
			_, err = f.B.Get(ctx, protocol.Get{Policy: p, ID: "x", Now: now})
			assert.ErrorIs(t, err, hammerredis.ErrRedis)
			if p.Algorithm.IsWindow() {
				_, err = f.B.Set(ctx, protocol.Set{Policy: p, ID: "x", Count: 1, Now: now})
				assert.ErrorIs(t, err, hammerredis.ErrRedis, "set must not replace a key of another type")
			}
			members, err := redis.Strings(f.Admin.Do("SMEMBERS", key))
			require.NoError(t, err)
			assert.Equal(t, []string{"m"}, members, "the foreign key is untouched")
			assert.EqualValues(t, -1, testenv.Do(t, f.Admin, "TTL", key), "and keeps no TTL")
		})
	}
}

func TestHammer7ScriptsComeBackAfterScriptFlush(t *testing.T) {
	f, prefix := start7(t, nil)
	ctx := context.Background()
	p := protocol.Policy{Algorithm: protocol.TokenBucket, Prefix: prefix, Limit: 10, Rate: 1}
	_, err := f.B.Hit(ctx, protocol.Hit{Policy: p, ID: "k", Cost: 1})
	require.NoError(t, err)
	testenv.Do(t, f.Admin, "SCRIPT", "FLUSH")
	got, err := f.B.Hit(ctx, protocol.Hit{Policy: p, ID: "k", Cost: 1})
	require.NoError(t, err, "NOSCRIPT: sent again as EVAL")
	assert.True(t, got.Allowed)
	assert.EqualValues(t, 8, got.Count, "counted once, though sent twice")
}

func TestHammer7FixWindowHitsOnOneKeyShareOneRun(t *testing.T) {
	srv := redistest.New(t)
	f := start(t, srv, hammerredis.Options{RedixConfig: named("fix")})
	ctx := context.Background()
	p := protocol.Policy{Algorithm: protocol.FixWindow, Prefix: "H7", ScaleMs: 60_000, Limit: 3}
	now := time.Now().UnixMilli()
	written, release := holdPipeline(t, f, "fix")
	before := cmdCalls(t, f.Admin, "evalsha")
	results := make([]chan protocol.HitReply, 5)
	for i := range results {
		results[i] = make(chan protocol.HitReply, 1)
		go func() {
			r, err := f.B.Hit(ctx, protocol.Hit{Policy: p, ID: "hot", Cost: 1, Now: now})
			assert.NoError(t, err)
			results[i] <- r
		}()
		for deadline := time.Now().Add(testenv.WaitLong); f.B.Stats().QueueDepth < 1+i+1; time.Sleep(time.Millisecond) {
			require.True(t, time.Now().Before(deadline), "hit %d never queued", i)
		}
	}
	release()
	for i, ch := range results {
		r := <-ch
		assert.Equal(t, int64(i+1), r.Count, "hit %d: its own count, in queue order", i)
		assert.Equal(t, i < 3, r.Allowed, "hit %d", i)
	}
	assert.Equal(t, 1+written+2, cmdCalls(t, f.Admin, "evalsha")-before,
		"the held hit and the probes written, then the last probe and one run for the five")
	assert.Equal(t, "5", string(testenv.Do(t, f.Admin, "GET", p.Key("hot", now)).([]byte)))
}

func TestHammer7ScriptsReadRedisTime(t *testing.T) {
	f, prefix := start7(t, nil)
	p := protocol.Policy{Algorithm: protocol.LeakyBucket, Prefix: prefix, Limit: 10, Rate: 1}
	_, err := f.B.Hit(context.Background(), protocol.Hit{Policy: p, ID: "k", Cost: 1})
	require.NoError(t, err)
	now, err := redis.Int64s(f.Admin.Do("TIME"))
	require.NoError(t, err)
	last, err := redis.Int64(f.Admin.Do("HGET", prefix+":k", "last_update"))
	require.NoError(t, err)
	assert.InDelta(t, now[0], last, 1, "last_update is Redis TIME's second")
}

func TestHammer7RefusesAPrefixOverlappingHammer6Keys(t *testing.T) {
	b, err := hammerredis.New(hammerredis.Options{ExpiryMs: 60_000, RedisURL: shared.URL()})
	require.NoError(t, err)
	assert.Equal(t, "Hammer:Redis:", b.KeyPrefix())
	for _, prefix := range []string{"Hammer:Redis", "Hammer", "Hammer:Redis:x"} {
		_, err := hammer7.New(b, hammer7.FixWindow{Prefix: prefix, Window: time.Minute, Limit: 1})
		assert.ErrorIs(t, err, hammerredis.ErrInvalid, "prefix %q", prefix)
	}
	_, err = hammer7.New(b, hammer7.FixWindow{Prefix: "MyApp.RateLimit", Window: time.Minute, Limit: 1})
	assert.NoError(t, err)
}

func TestHammer7CallsQueuedTogetherShareOneRun(t *testing.T) {
	srv := redistest.New(t)
	clk := rules7.NewClock(at(4_102_444_800, 250_000)) // 2100-01-01: the fix window's key outlives the test
	opts := hammerredis.WithScriptClock(hammerredis.Options{RedixConfig: named("multi7")}, clk.Now)
	f := start(t, srv, opts)
	one := start(t, srv, hammerredis.WithScriptClock(hammerredis.Options{DisableCoalescing: true}, clk.Now))
	ctx := context.Background()
	now := clk.Now().UnixMilli()
	calls := func(prefix string) []func(*hammerredis.Backend) (int64, error) {
		fix := protocol.Policy{Algorithm: protocol.FixWindow, Prefix: prefix, ScaleMs: 60_000, Limit: 2}
		sw := protocol.Policy{Algorithm: protocol.SlidingWindow, Prefix: prefix, ScaleMs: 10_000, Limit: 2}
		tb := protocol.Policy{Algorithm: protocol.TokenBucket, Prefix: prefix + "t", Limit: 3, Rate: 1}
		lb := protocol.Policy{Algorithm: protocol.LeakyBucket, Prefix: prefix + "l", Limit: 3, Rate: 1}
		hit := func(p protocol.Policy, id string, cost int64) func(*hammerredis.Backend) (int64, error) {
			return func(b *hammerredis.Backend) (int64, error) {
				r, err := b.Hit(ctx, protocol.Hit{Policy: p, ID: id, Cost: cost, Now: now})
				if !r.Allowed {
					return -r.RetryAfterMs, err // a deny shows as minus its wait
				}
				return r.Count, err
			}
		}
		return []func(*hammerredis.Backend) (int64, error){
			hit(tb, "k", 2), hit(fix, "k", 1), hit(sw, "k", 1), hit(tb, "k", 2), hit(lb, "k", 2),
			hit(fix, "k", 1), hit(sw, "k", 2), hit(lb, "k", 2), hit(fix, "str", 1),
			func(b *hammerredis.Backend) (int64, error) {
				return b.Get(ctx, protocol.Get{Policy: tb, ID: "k", Now: now})
			},
			hit(fix, "k", 1),
			func(b *hammerredis.Backend) (int64, error) {
				return b.Get(ctx, protocol.Get{Policy: fix, ID: "nobody", Now: now})
			},
			hit(lb, "k", 1),
			func(b *hammerredis.Backend) (int64, error) {
				return b.Inc(ctx, protocol.Inc{Policy: sw, ID: "k", N: 1, Now: now})
			},
			func(b *hammerredis.Backend) (int64, error) {
				return b.Get(ctx, protocol.Get{Policy: sw, ID: "k", Now: now})
			},
			hit(sw, "k", 1),
			func(b *hammerredis.Backend) (int64, error) {
				return b.Set(ctx, protocol.Set{Policy: sw, ID: "k2", Count: 3, Now: now})
			},
			hit(sw, "k2", 0),
			hit(sw, "k", 0),
		}
	}
	testenv.Do(t, f.Admin, "SET", "A:str:"+fmt.Sprint(now/60_000), "x") // not a number: INCRBY refuses it
	want := []int64{1, 1, 1, -750, 2, 2, -9750, -750, 0, 1, -59_750, 0, 3, 2, 2, -9750, 3, -9750, 2}

	written, release := holdPipeline(t, f, "multi7")
	before := cmdCalls(t, f.Admin, "evalsha")
	got, errs := make([]int64, len(want)), make([]error, len(want))
	var wg sync.WaitGroup
	for i, call := range calls("A") {
		wg.Add(1)
		go func() { defer wg.Done(); got[i], errs[i] = call(f.B) }()
		for deadline := time.Now().Add(testenv.WaitLong); f.B.Stats().QueueDepth < 1+i+1; time.Sleep(time.Millisecond) {
			require.True(t, time.Now().Before(deadline), "call %d never queued", i)
		}
	}
	release()
	wg.Wait()
	assert.Equal(t, 1+written+2, cmdCalls(t, f.Admin, "evalsha")-before,
		"the held hit and the probes written, then the last probe and one run for the nineteen")
	assert.ErrorIs(t, errs[8], hammerredis.ErrRedis, "INCRBY refused the string for its own call only")
	errs[8] = nil
	for i, err := range errs {
		assert.NoError(t, err, "call %d", i)
	}
	assert.Equal(t, want, got, "each call's answer, in queue order (a deny as minus its wait)")

	// The same calls one by one give the same answers and the same data.
	testenv.Do(t, f.Admin, "SET", "B:str:"+fmt.Sprint(now/60_000), "x")
	alone := make([]int64, len(want))
	for i, call := range calls("B") {
		alone[i], errs[i] = call(one.B)
	}
	assert.ErrorIs(t, errs[8], hammerredis.ErrRedis)
	assert.Equal(t, alone, got, "a run answers as the calls one by one")
	for _, k := range []string{":k:" + fmt.Sprint(now/60_000), ":k:10000", ":k2:10000", "t:k", "l:k"} {
		da, err := redis.Bytes(f.Admin.Do("DUMP", "A"+k))
		require.NoError(t, err, "A%s", k)
		db, err := redis.Bytes(f.Admin.Do("DUMP", "B"+k))
		require.NoError(t, err, "B%s", k)
		assert.Equal(t, db, da, "key %s holds the same data", k)
	}
}

// TestHammer7TimeoutsCancelsAndStop walks Hammer 7's calls through the
// failure paths the pipeline shares with count_hit: a call in the air past
// its timeout (outcome unknown, run once), calls queued behind it that time
// out or are cancelled (never sent), and calls after Stop.
func TestHammer7TimeoutsCancelsAndStop(t *testing.T) {
	srv := redistest.New(t)
	f := start(t, srv, hammerredis.Options{RedixConfig: named("slow7"), CallTimeout: 300 * time.Millisecond})
	p := protocol.Policy{Algorithm: protocol.FixWindow, Prefix: "H7", ScaleMs: 60_000, Limit: 100}
	now := time.Now().UnixMilli()
	hit := func(ctx context.Context) error {
		_, err := f.B.Hit(ctx, protocol.Hit{Policy: p, ID: "t", Cost: 1, Now: now})
		return err
	}
	testenv.Do(t, f.Admin, "CLIENT", "PAUSE", 20000, "WRITE")

	assert.ErrorIs(t, hit(context.Background()), hammerredis.ErrTimeout, "in the air: the call timeout passes")
	waitClient(t, f.Admin, "slow7", func(l string) bool { return strings.Contains(l, " flags=b ") })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := hit(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "queued behind it")
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	assert.ErrorIs(t, hit(ctx), context.Canceled)

	testenv.Do(t, f.Admin, "CLIENT", "UNPAUSE")
	r, err := f.B.Hit(context.Background(), protocol.Hit{Policy: p, ID: "t", Cost: 1, Now: now})
	require.NoError(t, err)
	assert.EqualValues(t, 2, r.Count, "the hit in the air ran once when Redis resumed; the abandoned ones never did")

	hammerredis.Stop(f.B)
	assert.ErrorIs(t, hit(context.Background()), hammerredis.ErrStopped)
	_, err = f.B.Get(context.Background(), protocol.Get{Policy: p, ID: "t", Now: now})
	assert.ErrorIs(t, err, hammerredis.ErrStopped)
}
