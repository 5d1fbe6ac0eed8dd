package hammerredis_test

// Regression tests for the promises of the README on the paths the plain
// fault tests do not walk: the first call after Start, script errors under
// load, coalesced hits that fail, Stop while a connection is prepared, and
// deletes on a large keyspace.

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
	"github.com/thejerf/suture/v4"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/internal/redistest"
)

func TestFirstCallAfterStartWaitsForTheFirstDial(t *testing.T) {
	ctx := context.Background()
	opts := func(t *testing.T) hammerredis.Options {
		return hammerredis.Options{ExpiryMs: 60_000, RedisURL: shared.URL(), KeyPrefix: testPrefix(t),
			Logger: logtest.New().Logger()}
	}
	key := hammerredis.BucketKey{Bucket: 1, ID: "first"}
	t.Run("Start", func(t *testing.T) {
		for i := range 20 {
			b, err := hammerredis.Start(opts(t))
			require.NoError(t, err)
			_, err = b.CountHit(ctx, key, 1)
			hammerredis.Stop(b)
			require.NoError(t, err, "backend %d: the call right after Start", i)
		}
	})
	t.Run("PoolSize", func(t *testing.T) {
		o := opts(t)
		o.PoolSize = 4
		b, err := hammerredis.Start(o)
		require.NoError(t, err)
		defer hammerredis.Stop(b)
		for i := range 8 {
			_, err = b.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: fmt.Sprint(i)}, 1)
			require.NoError(t, err, "id %d", i)
		}
	})
	t.Run("StartLink", func(t *testing.T) {
		sup := suture.NewSimple("app")
		supCtx, cancel := context.WithCancel(ctx)
		done := sup.ServeBackground(supCtx)
		defer func() { cancel(); <-done }()
		b, err := hammerredis.StartLink(sup, opts(t))
		require.NoError(t, err)
		defer hammerredis.Stop(b)
		_, err = b.GetBucket(ctx, key)
		require.NoError(t, err)
	})
	t.Run("DeleteBuckets", func(t *testing.T) {
		b, err := hammerredis.Start(opts(t))
		require.NoError(t, err)
		defer hammerredis.Stop(b)
		_, err = b.DeleteBuckets(ctx, "first")
		require.NoError(t, err)
	})
}

func TestFirstCallWaitsWithinItsContextAndStop(t *testing.T) {
	silent := redistest.NewSilent(t) // the first dial never ends by itself
	b, err := hammerredis.Start(hammerredis.Options{ExpiryMs: 1000, RedisURL: silent.URL(),
		Logger: logtest.New().Logger()})
	require.NoError(t, err)
	defer hammerredis.Stop(b)
	key := hammerredis.BucketKey{Bucket: 1, ID: "x"}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err = b.CountHit(ctx, key, 1)
	assert.ErrorIs(t, err, hammerredis.ErrTimeout, "the caller's deadline ends the wait")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(begin), time.Second)

	errc := make(chan error, 1)
	go func() {
		_, err := b.CountHit(context.Background(), key, 1)
		errc <- err
	}()
	<-silent.Accepted()
	require.NoError(t, hammerredis.Stop(b))
	assert.ErrorIs(t, <-errc, hammerredis.ErrStopped, "Stop ends the wait")
}

func TestFirstCallAfterAFailedFirstDialFailsAtOnce(t *testing.T) {
	srv := redistest.New(t)
	srv.Kill()
	f := startNoWait(t, srv, hammerredis.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	_, err := f.b.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "x"}, 1)
	require.ErrorIs(t, err, hammerredis.ErrClosed, "the first attempt ended: the call does not wait for the next")
	begin := time.Now()
	_, err = f.b.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "x"}, 1)
	require.ErrorIs(t, err, hammerredis.ErrClosed)
	assert.Less(t, time.Since(begin), 100*time.Millisecond)
}

func TestStopWhileAConnectionIsPreparedReturnsPromptly(t *testing.T) {
	for _, tt := range []struct {
		name string
		url  func(addr string) string
	}{
		{"PING", func(addr string) string { return "redis://" + addr }},
		{"AUTH", func(addr string) string { return "redis://:secret@" + addr }},
		{"SELECT", func(addr string) string { return "redis://" + addr + "/2" }},
		{"TLS handshake", func(addr string) string { return "rediss://" + addr }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			silent := redistest.NewSilent(t)
			b, err := hammerredis.Start(hammerredis.Options{ExpiryMs: 1000, RedisURL: tt.url(silent.Addr()),
				Logger: logtest.New().Logger()}) // ReadTimeout 5s
			require.NoError(t, err)
			<-silent.Received() // the command (or ClientHello) is out
			begin := time.Now()
			require.NoError(t, hammerredis.Stop(b))
			assert.Less(t, time.Since(begin), time.Second, "Stop does not wait for a ReadTimeout")
		})
	}
}

// pausedHits pauses srv's clients for pause, then makes n concurrent hits
// on key, so that they queue together and go out as one coalesced group.
func pausedHits(t *testing.T, admin redis.Conn, b *hammerredis.Backend, key hammerredis.BucketKey, n int,
	pause time.Duration) []error {
	t.Helper()
	do(t, admin, "CLIENT", "PAUSE", pause.Milliseconds(), "ALL")
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			_, errs[i] = b.CountHit(ctx, key, 1)
		}()
	}
	wg.Wait()
	return errs
}

func TestCoalescedHitsAreNeverCountedTwice(t *testing.T) {
	srv := secACLServer(t)
	admin := srv.Conn(t)
	// A user who may count but not set the TTL: every hit fails after its
	// HINCRBY, as the README's ACL section explains.
	var cmds []string
	for _, c := range secMinimalCommands {
		if c != "+expire" {
			cmds = append(cmds, c)
		}
	}
	secSetUser(t, admin, "noexpire", secRules("~"+secPrefix+"*", cmds...))
	f := start(t, srv, hammerredis.Options{KeyPrefix: secPrefix,
		RedisURL: secUserURL("redis", "noexpire", secPassword, srv.Addr())})
	key := hammerredis.BucketKey{Bucket: 1, ID: "hot"}
	const n = 64
	for round := 1; round <= 3; round++ {
		for _, err := range pausedHits(t, admin, f.b, key, n, 50*time.Millisecond) {
			require.ErrorIs(t, err, hammerredis.ErrRedis)
		}
		count, err := redis.Int(admin.Do("HGET", secPrefix+"hot:1", "count"))
		require.NoError(t, err)
		require.Equal(t, round*n, count, "round %d: each hit counted once, though every call failed", round)
	}
	assert.Zero(t, f.b.Stats().InAir)
}

func TestScriptErrorsUnderLoadKeepThePipeline(t *testing.T) {
	f := start(t, nil, hammerredis.Options{MaxPipeline: 16})
	admin := f.srv.Conn(t)
	hot := hammerredis.BucketKey{Bucket: 1, ID: "string"}
	do(t, admin, "SET", f.key("string", 1), "not a hash")
	for round := range 10 { // 640 failed hits, far past MaxPipeline
		for _, err := range pausedHits(t, admin, f.b, hot, 64, 10*time.Millisecond) {
			require.ErrorIs(t, err, hammerredis.ErrRedis, "round %d", round)
			require.ErrorContains(t, err, "WRONGTYPE")
		}
		require.Zero(t, f.b.Stats().InAir, "round %d: every call answered, none in the air", round)
	}
	v, err := redis.String(admin.Do("GET", f.key("string", 1)))
	require.NoError(t, err)
	assert.Equal(t, "not a hash", v, "the foreign key is untouched")

	// SCRIPT FLUSH under load: every hit counted once, nothing left in the air.
	ok := hammerredis.BucketKey{Bucket: 1, ID: "ok"}
	do(t, admin, "SCRIPT", "FLUSH")
	for _, err := range pausedHits(t, admin, f.b, ok, 64, 10*time.Millisecond) {
		require.NoError(t, err)
	}
	do(t, admin, "SCRIPT", "FLUSH")
	for _, err := range pausedHits(t, admin, f.b, ok, 64, 10*time.Millisecond) {
		require.NoError(t, err)
	}
	count, err := redis.Int(admin.Do("HGET", f.key("ok", 1), "count"))
	require.NoError(t, err)
	assert.Equal(t, 128, count)
	assert.Zero(t, f.b.Stats().InAir)
	assert.Equal(t, 1, f.log.Count(connectedMsg), "one connection all along")
}

// populate writes n keys outside any backend's prefix, in scripts of 100k.
func populate(t *testing.T, admin redis.Conn, n int) {
	t.Helper()
	const chunk = 100_000
	for from := 0; from < n; from += chunk {
		do(t, admin, "EVAL", `for i = ARGV[1], ARGV[2] do redis.call('SET', 'unrelated:' .. i, 1) end`, 0,
			from, min(from+chunk, n)-1)
	}
}

func TestLongDeleteNeverStallsRateChecks(t *testing.T) {
	srv := redistest.New(t)
	admin := srv.Conn(t)
	populate(t, admin, 1_000_000) // SCAN takes a thousand round trips
	f := start(t, srv, hammerredis.Options{DeleteBucketsTimeout: time.Minute})
	for b := range int64(20) {
		_, err := f.b.CountHit(context.Background(), hammerredis.BucketKey{Bucket: b, ID: "victim"}, 1)
		require.NoError(t, err)
	}

	type result struct {
		n   int64
		err error
	}
	deleted := make(chan result, 1)
	go func() {
		n, err := f.b.DeleteBuckets(context.Background(), "victim")
		deleted <- result{n, err}
	}()
	waitUntil(t, "the delete's first SCAN", func() bool { return cmdCalls(t, admin, "scan") > 0 })
	checks, during := 0, 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err := f.b.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: fmt.Sprint("check", checks)}, 1)
		cancel()
		require.NoError(t, err, "check %d, while the delete runs", checks)
		checks++
		select {
		case r := <-deleted:
			require.NoError(t, r.err)
			assert.Equal(t, int64(20), r.n)
			assert.GreaterOrEqual(t, during, 10, "checks made while the delete ran")
			t.Logf("%d checks with 100ms deadlines while the delete ran, none late", during)
			return
		default:
			during++
		}
	}
}

// cmdCalls returns how many times srv has run cmd, from INFO commandstats.
func cmdCalls(t *testing.T, admin redis.Conn, cmd string) int {
	t.Helper()
	info, err := redis.String(admin.Do("INFO", "commandstats"))
	require.NoError(t, err)
	var calls int
	for _, line := range strings.Split(info, "\n") {
		if n, _ := fmt.Sscanf(line, "cmdstat_"+cmd+":calls=%d", &calls); n == 1 {
			return calls
		}
	}
	return 0
}

// waitUntil polls ok until it holds, for state that Redis offers no event
// for; it fails the test after waitLong.
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
