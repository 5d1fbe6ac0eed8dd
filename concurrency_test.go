package hammerredis_test

// Concurrent calls: the pool of connections, hot keys whose hits are
// coalesced into one script run, and the pipeline under script errors.

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/internal/testenv"
)

// TestCoalescedHitsOverflowAsIfOneByOne: hits on one bucket that queue up
// together are sent as one script run of their summed increment; the
// outcome must still be each hit's own, in queue order. Near the int64
// limits, a hit that overflows on its own must fail with ErrRedis and
// count nothing, even when a later hit in the same group would bring the
// sum back in range.
func TestCoalescedHitsOverflowAsIfOneByOne(t *testing.T) {
	for _, tt := range []struct {
		name          string
		stored        int64 // the count before the hits
		first, second int64 // the increments, queued in this order
	}{
		{"up past MaxInt64, then down", math.MaxInt64 - 1, 5, -10},
		{"down past MinInt64, then up", math.MinInt64 + 1, -5, 10},
	} {
		for _, coalescing := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, coalescing %v", tt.name, coalescing), func(t *testing.T) {
				srv := redistest.New(t)
				f := start(t, srv, hammerredis.Options{RedixConfig: named("coalesce"), DisableCoalescing: !coalescing})
				ctx := context.Background()
				key := hammerredis.BucketKey{Bucket: 1, ID: "k"}
				testenv.Do(t, f.Admin, "HSET", f.Key("k", 1), "count", tt.stored, "created", 1, "updated", 1)

				// Hold the connection with a hit in flight, so the next
				// two queue up and go out together.
				_, release := holdPipeline(t, f, "coalesce")
				type result struct {
					n   int64
					err error
				}
				results := [2]chan result{make(chan result, 1), make(chan result, 1)}
				for i, inc := range []int64{tt.first, tt.second} {
					go func() {
						n, err := f.B.CountHitN(ctx, key, int64(2+i), inc)
						results[i] <- result{n, err}
					}()
					for deadline := time.Now().Add(testenv.WaitLong); f.B.Stats().QueueDepth < 1+i+1; time.Sleep(time.Millisecond) {
						require.True(t, time.Now().Before(deadline), "hit %d never queued", i+1)
					}
				}
				release()
				first, second := <-results[0], <-results[1]

				assert.ErrorIs(t, first.err, hammerredis.ErrRedis,
					"count %d: CountHitN(%d) = %d: want the overflow, as when sent alone", tt.stored, tt.first, first.n)
				assert.NoError(t, second.err, "count %d, then CountHitN(%d): CountHitN(%d) = %d",
					tt.stored, tt.first, tt.second, second.n)
				assert.Equal(t, strings.Join(badFields(tt.stored+tt.second, 1, 3), " "),
					strings.Join(badHash(t, f.Admin, f.Key("k", 1)), " "),
					"count %d, then CountHitN(%d), CountHitN(%d): HGETALL", tt.stored, tt.first, tt.second)
			})
		}
	}
}

// hammer runs callers goroutines that each count hits hits on the ids, and
// returns once all are done.
func hammerIDs(t *testing.T, b *hammerredis.Backend, ids []string, callers, hits int) {
	t.Helper()
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range hits {
				id := ids[(c+i)%len(ids)]
				_, err := b.CountHit(context.Background(), hammerredis.BucketKey{Bucket: 1, ID: id}, int64(i))
				if !assert.NoError(t, err, "CountHit(%q)", id) {
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestConcurrentCallsCountExactly(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts hammerredis.Options
	}{
		{"pipelined", hammerredis.Options{}},
		{"unpipelined", hammerredis.Options{MaxPipeline: 1}},
		{"small batches", hammerredis.Options{MaxPipeline: 3}},
		{"pool of 4", hammerredis.Options{PoolSize: 4}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, nil, tt.opts)
			ids := []string{"hot", "a", "b", "c", "d", "e", "f", "g"}
			const callers, hits = 64, 40
			hammerIDs(t, f.B, ids, callers, hits)
			var total int64
			for _, id := range ids {
				info, err := f.B.GetBucket(context.Background(), hammerredis.BucketKey{Bucket: 1, ID: id})
				require.NoError(t, err)
				require.NotNil(t, info, id)
				total += info.Count
				assert.Equal(t, int64(callers*hits/len(ids)), info.Count, "id %q", id)
			}
			assert.Equal(t, int64(callers*hits), total)
			st := f.B.Stats()
			assert.Equal(t, uint64(callers*hits), st.Calls.CountHit)
			assert.Zero(t, st.Errors.Total())
		})
	}
}

func TestPoolSpreadsIDsOverItsConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("four connections under load take seconds: make test runs it")
	}
	f := start(t, nil, hammerredis.Options{PoolSize: 4, RedixConfig: named("pool")})
	ids := make([]string, 64)
	for i := range ids {
		ids[i] = fmt.Sprint("user:", i)
	}
	hammerIDs(t, f.B, ids, 8, 64)
	list, err := redis.String(f.Admin.Do("CLIENT", "LIST"))
	require.NoError(t, err)
	assert.Equal(t, 4, strings.Count(list, " name=pool "), "four connections")
	st := f.B.Stats()
	assert.Equal(t, uint64(4), st.Connects)
	assert.Equal(t, 4*1024, st.QueueCapacity)
	assert.True(t, st.Connected)
	assert.Equal(t, "hammerredis("+shared.Addr()+", pool 4)", f.B.String())

	// One connection dies: only its server redials, and every id still counts.
	killClient(t, f.Admin, "pool")
	testenv.WaitConnects(t, f.B, 5)
	require.NoError(t, f.B.WaitConnected(context.Background()))
	for _, id := range ids {
		_, err := f.B.CountHit(context.Background(), hammerredis.BucketKey{Bucket: 2, ID: id}, 1)
		require.NoError(t, err, id)
	}
	assert.Equal(t, uint64(5), f.B.Stats().Connects)
}

func TestHotKeyCallersGetDistinctCountsAsIfOneByOne(t *testing.T) {
	for _, disable := range []bool{false, true} {
		t.Run(fmt.Sprint("DisableCoalescing=", disable), func(t *testing.T) {
			f := start(t, nil, hammerredis.Options{DisableCoalescing: disable})
			const callers, hits = 64, 20
			key := hammerredis.BucketKey{Bucket: 7, ID: "hot"}
			seen := make([]bool, callers*hits+1)
			var mu sync.Mutex
			var wg sync.WaitGroup
			for c := range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range hits {
						n, err := f.B.CountHit(context.Background(), key, int64(1000+c*hits+i))
						if !assert.NoError(t, err) {
							return
						}
						mu.Lock()
						assert.False(t, seen[n], "count %d returned twice", n)
						seen[n] = true
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			for n := 1; n <= callers*hits; n++ {
				assert.True(t, seen[n], "no caller got count %d", n)
			}
			fields, err := redis.Strings(f.Admin.Do("HGETALL", f.Key("hot", 7)))
			require.NoError(t, err)
			require.Len(t, fields, 6)
			assert.Equal(t, []string{"count", fmt.Sprint(callers * hits), "created"}, fields[:3])
			assert.Equal(t, "updated", fields[4])
			assert.Equal(t, int64(61), testenv.Do(t, f.Admin, "TTL", f.Key("hot", 7)))
		})
	}
}

// pausedHits pauses srv's clients for pause, then makes n concurrent hits
// on key, so that they queue together and go out as one coalesced group.
func pausedHits(t *testing.T, admin redis.Conn, b *hammerredis.Backend, key hammerredis.BucketKey, n int,
	pause time.Duration) []error {
	t.Helper()
	return pausedHitsOn(t, admin, b, func(int) hammerredis.BucketKey { return key }, n, pause)
}

// pausedHitsOn is pausedHits with hit i on keyOf(i).
func pausedHitsOn(t *testing.T, admin redis.Conn, b *hammerredis.Backend, keyOf func(i int) hammerredis.BucketKey, n int,
	pause time.Duration) []error {
	t.Helper()
	testenv.Do(t, admin, "CLIENT", "PAUSE", pause.Milliseconds(), "ALL")
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitLong)
			defer cancel()
			_, errs[i] = b.CountHit(ctx, keyOf(i), 1)
		}()
	}
	wg.Wait()
	return errs
}

func TestCoalescedHitsAreNeverCountedTwice(t *testing.T) {
	srv := testenv.ACLServer(t)
	admin := srv.Conn(t)
	// A user who may count but not set the TTL: every hit fails after its
	// HINCRBY, as the README's ACL section explains.
	var cmds []string
	for _, c := range testenv.MinimalCommands {
		if c != "+expire" {
			cmds = append(cmds, c)
		}
	}
	testenv.SetUser(t, admin, "noexpire", testenv.ACLRules("~"+testenv.ACLPrefix+"*", cmds...))
	f := start(t, srv, hammerredis.Options{KeyPrefix: testenv.ACLPrefix,
		RedisURL: testenv.UserURL("redis", "noexpire", testenv.ACLPassword, srv.Addr())})
	key := hammerredis.BucketKey{Bucket: 1, ID: "hot"}
	const n = 64
	for round := 1; round <= 3; round++ {
		for _, err := range pausedHits(t, admin, f.B, key, n, 50*time.Millisecond) {
			require.ErrorIs(t, err, hammerredis.ErrRedis)
		}
		count, err := redis.Int(admin.Do("HGET", testenv.ACLPrefix+"hot:1", "count"))
		require.NoError(t, err)
		require.Equal(t, round*n, count, "round %d: each hit counted once, though every call failed", round)
	}

	// The same in multi-key runs: 64 hits on 16 buckets, 4 each, queued
	// together.
	const buckets = 16
	bucket := func(i int) hammerredis.BucketKey {
		return hammerredis.BucketKey{Bucket: 1, ID: fmt.Sprint("b", i%buckets)}
	}
	for round := 1; round <= 3; round++ {
		for _, err := range pausedHitsOn(t, admin, f.B, bucket, n, 50*time.Millisecond) {
			require.ErrorIs(t, err, hammerredis.ErrRedis)
		}
		for i := range buckets {
			count, err := redis.Int(admin.Do("HGET", fmt.Sprintf("%sb%d:1", testenv.ACLPrefix, i), "count"))
			require.NoError(t, err)
			require.Equal(t, round*n/buckets, count, "round %d, bucket %d: each hit counted once", round, i)
		}
	}
	assert.Zero(t, f.B.Stats().InAir)
}

func TestScriptErrorsUnderLoadKeepThePipeline(t *testing.T) {
	f := start(t, nil, hammerredis.Options{MaxPipeline: 16})
	admin := f.Srv.Conn(t)
	hot := hammerredis.BucketKey{Bucket: 1, ID: "string"}
	testenv.Do(t, admin, "SET", f.Key("string", 1), "not a hash")
	for round := range 10 { // 640 failed hits, far past MaxPipeline
		for _, err := range pausedHits(t, admin, f.B, hot, 64, 10*time.Millisecond) {
			require.ErrorIs(t, err, hammerredis.ErrRedis, "round %d", round)
			require.ErrorContains(t, err, "WRONGTYPE")
		}
		require.Zero(t, f.B.Stats().InAir, "round %d: every call answered, none in the air", round)
	}
	v, err := redis.String(admin.Do("GET", f.Key("string", 1)))
	require.NoError(t, err)
	assert.Equal(t, "not a hash", v, "the foreign key is untouched")

	// SCRIPT FLUSH under load: every hit counted once, nothing left in the air.
	ok := hammerredis.BucketKey{Bucket: 1, ID: "ok"}
	testenv.Do(t, admin, "SCRIPT", "FLUSH")
	for _, err := range pausedHits(t, admin, f.B, ok, 64, 10*time.Millisecond) {
		require.NoError(t, err)
	}
	testenv.Do(t, admin, "SCRIPT", "FLUSH")
	for _, err := range pausedHits(t, admin, f.B, ok, 64, 10*time.Millisecond) {
		require.NoError(t, err)
	}
	count, err := redis.Int(admin.Do("HGET", f.Key("ok", 1), "count"))
	require.NoError(t, err)
	assert.Equal(t, 128, count)
	assert.Zero(t, f.B.Stats().InAir)
	assert.Equal(t, uint64(1), f.B.Stats().Connects, "one connection all along")
}

// TestHitsOnDistinctBucketsShareOneScriptRun: hits on distinct buckets that
// queue up together run as one multi-key script, which writes to each bucket
// exactly what its hits write one by one, gives each caller its own count,
// and refuses a key of another type for its own hit only.
func TestHitsOnDistinctBucketsShareOneScriptRun(t *testing.T) {
	srv := redistest.New(t)
	f := start(t, srv, hammerredis.Options{RedixConfig: named("multi")})
	one := start(t, srv, hammerredis.Options{RedixConfig: named("one"), DisableCoalescing: true})
	ctx := context.Background()
	ids := []string{"a", "b", "a", "c", "str", "d", "a"}
	wantCounts := []int64{1, 1, 2, 1, 0, 1, 3}
	for _, fx := range []*testenv.Fixture{f, one} {
		testenv.Do(t, f.Admin, "SET", fx.Key("str", 1), "a string")
	}

	// Hold the connection with a hit in flight, so that the others queue
	// up and go out together.
	written, release := holdPipeline(t, f, "multi")
	before := cmdCalls(t, f.Admin, "evalsha")
	type result struct {
		n   int64
		err error
	}
	results := make([]chan result, len(ids))
	for i, id := range ids {
		results[i] = make(chan result, 1)
		go func() {
			n, err := f.B.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: id}, int64(10+i))
			results[i] <- result{n, err}
		}()
		for deadline := time.Now().Add(testenv.WaitLong); f.B.Stats().QueueDepth < 1+i+1; time.Sleep(time.Millisecond) {
			require.True(t, time.Now().Before(deadline), "hit %d never queued", i)
		}
	}
	release()
	for i, id := range ids {
		r := <-results[i]
		if id == "str" {
			assert.ErrorIs(t, r.err, hammerredis.ErrRedis)
			assert.ErrorContains(t, r.err, "WRONGTYPE")
			continue
		}
		require.NoError(t, r.err, "hit %d on %s", i, id)
		assert.Equal(t, wantCounts[i], r.n, "hit %d on %s: its own count, in queue order", i, id)
	}
	assert.Equal(t, 1+written+1, cmdCalls(t, f.Admin, "evalsha")-before,
		"the held hit and the probes written, then one run for the seven and the last probe")

	// The same hits one by one, on their own prefix: the same hashes.
	for i, id := range ids {
		_, err := one.B.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: id}, int64(10+i))
		if id == "str" {
			assert.ErrorContains(t, err, "WRONGTYPE")
			continue
		}
		require.NoError(t, err)
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		assert.Equal(t, badHash(t, f.Admin, one.Key(id, 1)), badHash(t, f.Admin, f.Key(id, 1)), "bucket %s", id)
		assert.Equal(t, badTTL(t, f.Admin, one.Key(id, 1)), badTTL(t, f.Admin, f.Key(id, 1)), "bucket %s", id)
	}
	assert.Equal(t, []byte("a string"), testenv.Do(t, f.Admin, "GET", f.Key("str", 1)), "the other type's key is untouched")
	assert.Equal(t, int64(-1), badTTL(t, f.Admin, f.Key("str", 1)))
}

// holdPipeline holds f's connection, whose client name is client, with a
// hit in flight that Redis does not run yet (CLIENT PAUSE WRITE), and
// returns once calls queue behind it. The backend writes a call at once
// while the calls in flight have had a reply lately, so it sends probe hits
// (on ids of their own) until one stays queued. It returns how many probes
// were written meanwhile, and release, which lets Redis run and waits for
// the held hit and the probes. One probe is left queued: the calls a test
// queues next come after it (QueueDepth 1 + their number).
func holdPipeline(t *testing.T, f *testenv.Fixture, client string) (written int, release func()) {
	t.Helper()
	ctx := context.Background()
	testenv.Do(t, f.Admin, "CLIENT", "PAUSE", 20000, "WRITE")
	done := make(chan error, 64)
	send := func(id string) {
		go func() {
			_, err := f.B.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: id}, 1)
			done <- err
		}()
	}
	send("held")
	waitClient(t, f.Admin, client, func(l string) bool { return strings.Contains(l, " flags=b ") })
	probes := 0
	for f.B.Stats().QueueDepth == 0 {
		require.Less(t, probes, cap(done)-1, "calls never queued behind the held hit")
		send(fmt.Sprint("probe", probes))
		probes++
		// Queued, or written: wait to tell which.
		for deadline := time.Now().Add(testenv.WaitLong); ; time.Sleep(time.Millisecond) {
			if st := f.B.Stats(); st.QueueDepth > 0 || st.InAir == 1+probes {
				break
			}
			require.True(t, time.Now().Before(deadline), "probe %d neither queued nor written", probes)
		}
	}
	return probes - 1, func() {
		t.Helper()
		testenv.Do(t, f.Admin, "CLIENT", "UNPAUSE")
		for range probes + 1 {
			require.NoError(t, <-done)
		}
	}
}
