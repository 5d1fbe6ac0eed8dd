package hammerredis_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/internal/testmain"
)

// shared is the private redis-server of this test binary; tests that kill,
// freeze or reconfigure a server start their own.
var shared *redistest.Server

// redisURL points the examples at the shared server.
var redisURL string

func TestMain(m *testing.M) {
	os.Exit(testmain.Main(m, func(s *redistest.Server) { shared, redisURL = s, s.URL() }))
}

const connectedMsg = "connected to redis"

// waitLong bounds waits for events that normally take milliseconds.
const waitLong = 10 * time.Second

// fixture is a running backend with its log, its key prefix and an admin
// connection to its server.
type fixture struct {
	b      *hammerredis.Backend
	log    *logtest.Recorder
	prefix string
	srv    *redistest.Server
	admin  redis.Conn
}

// start starts a backend on srv (the shared server when nil) with opts, a
// prefix unique to the test, and waits until it is connected.
func start(t *testing.T, srv *redistest.Server, opts hammerredis.Options) *fixture {
	t.Helper()
	f := startNoWait(t, srv, opts)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	require.NoError(t, f.b.WaitConnected(ctx))
	return f
}

func startNoWait(t *testing.T, srv *redistest.Server, opts hammerredis.Options) *fixture {
	t.Helper()
	if srv == nil {
		srv = shared
	}
	f := &fixture{log: logtest.New(), srv: srv}
	if c, err := srv.Dial(); err == nil { // not while the server is down
		t.Cleanup(func() { c.Close() })
		f.admin = c
	}
	if opts.ExpiryMs == 0 {
		opts.ExpiryMs = 60_000
	}
	// Always the test's server: the library's default is the system Redis
	// on 127.0.0.1:6379, which tests must never touch.
	if opts.RedisURL == "" {
		opts.RedisURL = srv.URL()
	}
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = testPrefix(t)
	}
	f.prefix = opts.KeyPrefix
	opts.Logger = f.log.Logger()
	b, err := hammerredis.Start(opts)
	require.NoError(t, err)
	t.Cleanup(func() { hammerredis.Stop(b) })
	f.b = b
	return f
}

var prefixes atomic.Int64

// testPrefix returns a key prefix unique to this run of the test, so that
// tests sharing a server never see each other's keys, even with -count.
func testPrefix(t *testing.T) string {
	return fmt.Sprintf("T:%s:%d:", t.Name(), prefixes.Add(1))
}

func (f *fixture) key(id string, bucket int64) string {
	return f.prefix + id + ":" + fmt.Sprint(bucket)
}

func do(t *testing.T, c redis.Conn, cmd string, args ...any) any {
	t.Helper()
	r, err := c.Do(cmd, args...)
	require.NoError(t, err, "%s %v", cmd, args)
	return r
}

func TestCountHitWritesTheElixirLayout(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	ctx := context.Background()
	key := hammerredis.BucketKey{Bucket: 28333333, ID: "upload:42"}

	n, err := f.b.CountHitN(ctx, key, 1700000000123, 3)
	require.NoError(t, err)
	assert.Equal(t, int64(3), n, "the first hit returns the increment")

	rkey := f.prefix + "upload:42:28333333"
	fields, err := redis.Strings(f.admin.Do("HGETALL", rkey))
	require.NoError(t, err)
	assert.Equal(t, []string{"count", "3", "created", "1700000000123", "updated", "1700000000123"}, fields)
	assert.Equal(t, int64(61), do(t, f.admin, "TTL", rkey))
	keys, err := redis.Strings(f.admin.Do("KEYS", f.prefix+"*"))
	require.NoError(t, err)
	assert.Equal(t, []string{rkey}, keys, "no other keys")

	// A later hit: created stays, updated moves, the TTL is refreshed.
	do(t, f.admin, "EXPIRE", rkey, 5)
	n, err = f.b.CountHit(ctx, key, 1700000000999)
	require.NoError(t, err)
	assert.Equal(t, int64(4), n)
	// An earlier now: created stays, updated takes it as given (no max).
	n, err = f.b.CountHitN(ctx, key, 1700000000000, 10)
	require.NoError(t, err)
	assert.Equal(t, int64(14), n)
	fields, err = redis.Strings(f.admin.Do("HGETALL", rkey))
	require.NoError(t, err)
	assert.Equal(t, []string{"count", "14", "created", "1700000000123", "updated", "1700000000000"}, fields)
	assert.Equal(t, int64(61), do(t, f.admin, "TTL", rkey))
}

func TestCountHitIncrementsAsGiven(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	ctx := context.Background()
	for i, tt := range []struct{ inc, want int64 }{{0, 0}, {5, 5}, {-7, -2}, {0, -2}} {
		got, err := f.b.CountHitN(ctx, hammerredis.BucketKey{Bucket: 1, ID: "inc"}, 1000, tt.inc)
		require.NoError(t, err)
		assert.Equal(t, tt.want, got, "step %d: CountHitN(inc %d)", i, tt.inc)
	}
}

func TestTTLRounding(t *testing.T) {
	for _, tt := range []struct{ expiry, ttl int64 }{{60000, 61}, {7200000, 7201}, {1500, 3}, {1499, 2}, {500, 2}} {
		t.Run(fmt.Sprint(tt.expiry), func(t *testing.T) {
			f := start(t, nil, hammerredis.Options{ExpiryMs: tt.expiry})
			_, err := f.b.CountHit(context.Background(), hammerredis.BucketKey{Bucket: 1, ID: "x"}, 1)
			require.NoError(t, err)
			assert.Equal(t, tt.ttl, do(t, f.admin, "TTL", f.key("x", 1)), "TTL with ExpiryMs %d", tt.expiry)
		})
	}
}

func TestGetBucket(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	ctx := context.Background()
	key := hammerredis.BucketKey{Bucket: -3, ID: "g"}

	info, err := f.b.GetBucket(ctx, key)
	require.NoError(t, err)
	assert.Nil(t, info, "no bucket")

	_, err = f.b.CountHitN(ctx, key, 100, 2)
	require.NoError(t, err)
	_, err = f.b.CountHit(ctx, key, 250)
	require.NoError(t, err)
	do(t, f.admin, "EXPIRE", f.key("g", -3), 1000)

	info, err = f.b.GetBucket(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, &hammerredis.BucketInfo{Key: key, Count: 3, Created: 100, Updated: 250}, info)
	assert.Equal(t, int64(1000), do(t, f.admin, "TTL", f.key("g", -3)), "GetBucket leaves the TTL alone")
}

func TestGetBucketRejectsMalformedHashes(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	ctx := context.Background()
	for i, fields := range [][]any{
		{"count", "1"},
		{"count", "1", "created", "2"},
		{"count", "x", "created", "2", "updated", "3"},
		{"count", "1", "created", "2", "updated", "99999999999999999999"},
		{"created", "2", "updated", "3"},
	} {
		do(t, f.admin, "HSET", append([]any{f.key("m", int64(i))}, fields...)...)
		info, err := f.b.GetBucket(ctx, hammerredis.BucketKey{Bucket: int64(i), ID: "m"})
		assert.ErrorIs(t, err, hammerredis.ErrBadReply, "hash %v", fields)
		assert.Nil(t, info)
	}
	// Still serving.
	n, err := f.b.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "ok"}, 1)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
}

func TestRedisErrorRepliesKeepTheBackendUp(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	ctx := context.Background()

	// A key of another type: WRONGTYPE, and the key is left untouched.
	do(t, f.admin, "SET", f.key("str", 1), "v")
	_, err := f.b.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "str"}, 1)
	assert.ErrorIs(t, err, hammerredis.ErrRedis)
	assert.ErrorContains(t, err, "WRONGTYPE")
	assert.Equal(t, int64(-1), do(t, f.admin, "TTL", f.key("str", 1)), "no TTL set on the foreign key")
	_, err = f.b.GetBucket(ctx, hammerredis.BucketKey{Bucket: 1, ID: "str"})
	assert.ErrorIs(t, err, hammerredis.ErrRedis)

	// Overflow: an error, and the count stays.
	key := hammerredis.BucketKey{Bucket: 1, ID: "big"}
	_, err = f.b.CountHitN(ctx, key, 1, 9223372036854775807)
	require.NoError(t, err)
	_, err = f.b.CountHitN(ctx, key, 2, 1)
	assert.ErrorIs(t, err, hammerredis.ErrRedis)
	info, err := f.b.GetBucket(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, int64(9223372036854775807), info.Count)
	assert.Equal(t, int64(1), info.Updated, "nothing written by the failed hit")

	n, err := f.b.CountHit(ctx, hammerredis.BucketKey{Bucket: 2, ID: "big"}, 1)
	require.NoError(t, err, "the backend serves the next call")
	assert.Equal(t, int64(1), n)
	assert.Equal(t, 1, f.log.Count(connectedMsg), "the connection was never replaced")
}

func TestOddIDsRoundTrip(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	ctx := context.Background()
	for _, id := range []string{"", "a b", "nul\x00byte", "\xff\xfe", "{tag}", "*", "a:b:c", "new\nline", strings.Repeat("é", 1000)} {
		key := hammerredis.BucketKey{Bucket: 7, ID: id}
		n, err := f.b.CountHit(ctx, key, 5)
		require.NoError(t, err, "id %q", id)
		assert.Equal(t, int64(1), n, "id %q", id)
		info, err := f.b.GetBucket(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, &hammerredis.BucketInfo{Key: key, Count: 1, Created: 5, Updated: 5}, info, "id %q", id)
		assert.Equal(t, int64(1), do(t, f.admin, "EXISTS", f.key(id, 7)), "key of id %q", id)
	}
	for _, id := range []string{"", "a b", "nul\x00byte", "\xff\xfe", "{tag}", "*", "a:b:c", "new\nline", strings.Repeat("é", 1000)} {
		n, err := f.b.DeleteBuckets(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, int64(1), n, "DeleteBuckets(%q)", id)
	}
	_, err := f.b.CountHit(ctx, hammerredis.BucketKey{ID: strings.Repeat("x", 1<<20+1)}, 1)
	assert.ErrorIs(t, err, hammerredis.ErrInvalid)
}

func TestDeleteBucketsTouchesOnlyItsID(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	ctx := context.Background()
	ids := []string{"a", "a:b", "a:1", "x*", "xy", "x", "q?", "qq", "[ab]", "a]", "b", `back\slash`, `back\`, ""}
	for _, id := range ids {
		for bucket := int64(-1); bucket <= 1; bucket++ {
			_, err := f.b.CountHit(ctx, hammerredis.BucketKey{Bucket: bucket, ID: id}, 1)
			require.NoError(t, err)
		}
	}
	// Keys that look like buckets of "a" but are not: left alone.
	do(t, f.admin, "SET", f.prefix+"a:01", "x")
	do(t, f.admin, "SET", f.prefix+"a:", "x")
	total := int64(len(ids)*3 + 2)
	for _, id := range ids {
		n, err := f.b.DeleteBuckets(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, int64(3), n, "DeleteBuckets(%q)", id)
		total -= 3
		left, err := redis.Strings(f.admin.Do("KEYS", f.prefix+"*"))
		require.NoError(t, err)
		assert.Len(t, left, int(total), "after deleting %q: %q", id, left)
	}
	n, err := f.b.DeleteBuckets(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, int64(0), n, "nothing left to delete")
}

func TestDeleteBucketsManyKeys(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	ctx := context.Background()
	const n = 2500 // several SCAN rounds of COUNT 1000
	args := []any{}
	for i := range n {
		args = append(args, f.key("many", int64(i)), "1", f.key("other", int64(i)), "1")
	}
	do(t, f.admin, "MSET", args...)
	deleted, err := f.b.DeleteBuckets(ctx, "many")
	require.NoError(t, err)
	assert.Equal(t, int64(n), deleted)
	left, err := redis.Strings(f.admin.Do("KEYS", f.prefix+"*"))
	require.NoError(t, err)
	assert.Len(t, left, n)
}
