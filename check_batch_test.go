package hammerredis_test

import (
	"context"
	"errors"
	"strings"
	"sync"
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
	"github.com/hammer-go/hammerredis/server"
)

// batchChecks are checks of every kind of limit, on keys that repeat from
// check to check, for backends whose Hammer 7 prefixes start with prefix.
// Checks 5 and 10 fail: their keys hold a string, not a number (5) nor a
// sorted set (10).
func batchChecks(prefix string, now int64) []protocol.Check {
	six := func(limit, cost int64, shadow bool) protocol.CheckLimit {
		return protocol.CheckLimit{Hammer6: true, Policy: protocol.Policy{ScaleMs: 60_000, Limit: limit}, ID: "k", Cost: cost, Shadow: shadow}
	}
	seven := func(alg protocol.Algorithm, limit, rate int64, id string, cost int64) protocol.CheckLimit {
		p := protocol.Policy{Algorithm: alg, Prefix: prefix + "x", ScaleMs: 10_000, Limit: limit, Rate: rate}
		if alg >= protocol.LeakyBucket {
			p.ScaleMs = 0
			p.Prefix += alg.String()
		}
		return protocol.CheckLimit{Policy: p, ID: id, Cost: cost}
	}
	fix := func(id string, cost int64) protocol.CheckLimit { return seven(protocol.FixWindow, 3, 0, id, cost) }
	slide := func(cost int64) protocol.CheckLimit { return seven(protocol.SlidingWindow, 3, 0, "k", cost) }
	token := func(cost int64) protocol.CheckLimit { return seven(protocol.TokenBucket, 4, 1, "k", cost) }
	leaky := func(cost int64) protocol.CheckLimit { return seven(protocol.LeakyBucket, 4, 1, "k", cost) }
	check := func(all bool, limits ...protocol.CheckLimit) protocol.Check {
		return protocol.Check{Now: now, AllOrNothing: all, Limits: limits}
	}
	return []protocol.Check{
		check(false, six(2, 1, false), fix("k", 1)),
		check(true, six(2, 1, false), fix("k", 1), slide(1)),
		check(false, six(2, 1, false), slide(1), token(2)),
		check(true, token(2), leaky(3), six(5, 1, true)),
		check(true, token(1), six(9, 1, false)), // denied by the token bucket: nothing counted
		check(false, fix("str", 1), six(9, 1, false)),
		check(false, slide(2), slide(1), leaky(1)),
		check(false, fix("k", 1), fix("k", 1), six(3, 4, false)),
		check(true, six(9, 1, true), leaky(1), slide(1)),
		check(false, six(2, 1, false), fix("k", 1), slide(1), token(1), leaky(1)),
		check(false, six(9, 1, false), seven(protocol.SlidingWindow, 3, 0, "str", 1)),
	}
}

// TestChecksQueuedTogetherShareOneRun holds the pipeline while checks
// queue, so that they go out as one run of the multi-check script, and
// checks that each caller gets what the checks one by one give, and that
// they leave the same data.
func TestChecksQueuedTogetherShareOneRun(t *testing.T) {
	srv := redistest.New(t)
	clk := rules7.NewClock(at(4_102_444_800, 250_000)) // 2100-01-01: the keys outlive the test
	f := start(t, srv, hammerredis.WithScriptClock(hammerredis.Options{RedixConfig: named("multicheck"), KeyPrefix: "A:"}, clk.Now))
	one := start(t, srv, hammerredis.WithScriptClock(hammerredis.Options{DisableCoalescing: true, KeyPrefix: "B:"}, clk.Now))
	ctx := context.Background()
	now := clk.Now().UnixMilli()
	for _, p := range []string{"A", "B"} {
		for _, i := range []int{5, 10} {
			l := batchChecks(p, now)[i].Limits[0]
			if l.Hammer6 {
				l = batchChecks(p, now)[i].Limits[1]
			}
			testenv.Do(t, f.Admin, "SET", server.CheckKey(protocol.Layout{}, now, l), "x")
		}
	}

	checks := batchChecks("A", now)
	written, release := holdPipeline(t, f, "multicheck")
	before := cmdCalls(t, f.Admin, "evalsha")
	got, errs := make([]protocol.CheckReply, len(checks)), make([]error, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() { defer wg.Done(); got[i], errs[i] = f.B.Check(ctx, c) }()
		for deadline := time.Now().Add(testenv.WaitLong); f.B.Stats().QueueDepth < 1+i+1; time.Sleep(time.Millisecond) {
			require.True(t, time.Now().Before(deadline), "check %d never queued", i)
		}
	}
	release()
	wg.Wait()
	assert.Equal(t, 1+written+2, cmdCalls(t, f.Admin, "evalsha")-before,
		"the held hit and the probes written, then the last probe and one run for the eleven checks")
	assert.ErrorIs(t, errs[5], hammerredis.ErrRedis, "the string refused for its own check only")
	assert.ErrorContains(t, errs[5], "not an integer")
	assert.ErrorContains(t, errs[10], "WRONGTYPE")

	alone := make([]protocol.CheckReply, len(checks))
	aloneErrs := make([]error, len(checks))
	for i, c := range batchChecks("B", now) {
		alone[i], aloneErrs[i] = one.B.Check(ctx, c)
	}
	for i := range checks {
		if aloneErrs[i] != nil {
			assert.ErrorIs(t, errs[i], hammerredis.ErrRedis, "check %d", i)
			assert.Equal(t, errCode(aloneErrs[i]), errCode(errs[i]), "check %d: the error code of the check alone", i)
			continue
		}
		assert.NoError(t, errs[i], "check %d", i)
	}
	assert.Equal(t, alone, got, "a run decides as the checks one by one")
	assert.False(t, got[4].Decisions[0].Allowed, "a denied all-or-nothing check")

	all, err := redis.Strings(f.Admin.Do("KEYS", "A*"))
	require.NoError(t, err)
	var keys []string
	for _, k := range all {
		if !strings.HasPrefix(k, "A:held:") && !strings.HasPrefix(k, "A:probe") { // holdPipeline's
			keys = append(keys, k)
		}
	}
	assert.Len(t, keys, 7, "Hammer 6's bucket, a fix window, a sliding window, two buckets and the two strings: %q", keys)
	for _, k := range keys {
		b := "B" + strings.TrimPrefix(k, "A")
		da, err := redis.Bytes(f.Admin.Do("DUMP", k))
		require.NoError(t, err, k)
		db, err := redis.Bytes(f.Admin.Do("DUMP", b))
		require.NoError(t, err, b)
		assert.Equal(t, db, da, "key %s holds the same data", k)
		ta, err := redis.Int64(f.Admin.Do("PTTL", k))
		require.NoError(t, err)
		tb, err := redis.Int64(f.Admin.Do("PTTL", b))
		require.NoError(t, err)
		assert.InDelta(t, tb, ta, 2000, "key %s expires as its twin", k)
	}
}

// TestCheckWritesHammer6BucketsAsCountHit checks that a check's Hammer 6
// limit leaves its bucket as CountHitN leaves it, byte for byte (fields,
// their order, their values), on new buckets and on buckets that lack a
// field, alone and in a run of the multi-check script.
func TestCheckWritesHammer6BucketsAsCountHit(t *testing.T) {
	srv := redistest.New(t)
	f := start(t, srv, hammerredis.Options{RedixConfig: named("check6"), KeyPrefix: "A:"})
	hits := start(t, srv, hammerredis.Options{KeyPrefix: "B:"})
	ctx := context.Background()
	const now = 90_061_500 // bucket 1501 of a minute
	limit := func(id string, cost int64) protocol.CheckLimit {
		return protocol.CheckLimit{Hammer6: true, Policy: protocol.Policy{ScaleMs: 60_000, Limit: 100}, ID: id, Cost: cost}
	}
	presets := map[string][]any{ // id: the fields its bucket starts with
		"count": {"count", 7}, "created": {"created", 5}, "updated": {"updated", 5},
		"other": {"other", "x", "count", 2}, "full": {"count", 3, "created", 1, "updated", 2},
	}
	for id, fields := range presets {
		for _, p := range []string{"A:", "B:"} {
			testenv.Do(t, f.Admin, "HSET", append([]any{p + id + ":1501"}, fields...)...)
		}
	}
	ids := []string{"new", "count", "created", "updated", "other", "full"}
	for i, id := range ids {
		// Alone, twice on the key in one check, then with the others in one run.
		_, err := f.B.Check(ctx, protocol.Check{Now: now + int64(i), Limits: []protocol.CheckLimit{limit(id, 2), limit(id, 1)}})
		require.NoError(t, err, id)
		_, err = hits.B.CountHitN(ctx, hammerredis.BucketKey{Bucket: 1501, ID: id}, now+int64(i), 2)
		require.NoError(t, err, id)
		_, err = hits.B.CountHitN(ctx, hammerredis.BucketKey{Bucket: 1501, ID: id}, now+int64(i), 1)
		require.NoError(t, err, id)
	}
	_, release := holdPipeline(t, f, "check6")
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.B.Check(ctx, protocol.Check{Now: now + 100 + int64(i), Limits: []protocol.CheckLimit{limit(id, 1)}})
			assert.NoError(t, err, id)
		}()
		for deadline := time.Now().Add(testenv.WaitLong); f.B.Stats().QueueDepth < 1+i+1; time.Sleep(time.Millisecond) {
			require.True(t, time.Now().Before(deadline), "check %d never queued", i)
		}
	}
	release()
	wg.Wait()
	for i, id := range ids {
		_, err := hits.B.CountHitN(ctx, hammerredis.BucketKey{Bucket: 1501, ID: id}, now+100+int64(i), 1)
		require.NoError(t, err, id)
	}
	for _, id := range ids {
		da, err := redis.Bytes(f.Admin.Do("DUMP", "A:"+id+":1501"))
		require.NoError(t, err, id)
		db, err := redis.Bytes(f.Admin.Do("DUMP", "B:"+id+":1501"))
		require.NoError(t, err, id)
		assert.Equal(t, db, da, "bucket %s holds what CountHitN leaves", id)
	}
}

// errCode returns the code of the Redis error in err: its first word.
func errCode(err error) string {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return ""
	}
	code, _, _ := strings.Cut(string(rerr), " ")
	return code
}
