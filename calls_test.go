package hammerredis_test

// The calls: count_hit, get_bucket and delete_buckets, the Elixir layout
// they read and write, and what they do with odd ids, foreign keys and
// malformed hashes.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/internal/testenv"
	"github.com/hammer-go/hammerredis/protocol"
)

// badHash returns HGETALL key as strings; empty when there is no such key.
func badHash(t *testing.T, admin redis.Conn, key string) []string {
	t.Helper()
	h, err := redis.Strings(admin.Do("HGETALL", key))
	require.NoError(t, err, "HGETALL %q", key)
	return h
}

// badTTL returns TTL key.
func badTTL(t *testing.T, admin redis.Conn, key string) int64 {
	t.Helper()
	n, err := redis.Int64(admin.Do("TTL", key))
	require.NoError(t, err, "TTL %q", key)
	return n
}

// badBucket is the BucketInfo that the hash [count c created x updated u]
// stands for, or nil.
func badBucket(t *testing.T, key hammerredis.BucketKey, hash []string) *hammerredis.BucketInfo {
	t.Helper()
	if len(hash) == 0 {
		return nil
	}
	require.Len(t, hash, 6, "hash %q", hash)
	var n [3]int64
	for i := range n {
		v, err := strconv.ParseInt(hash[2*i+1], 10, 64)
		require.NoError(t, err, "hash %q", hash)
		n[i] = v
	}
	return &hammerredis.BucketInfo{Key: key, Count: n[0], Created: n[1], Updated: n[2]}
}

// badShow describes a bucket, with at most 40 bytes of its id.
func badShow(b *hammerredis.BucketInfo) string {
	if b == nil {
		return "no bucket"
	}
	return fmt.Sprintf("{{%d, %.40q} count %d created %d updated %d}", b.Key.Bucket, b.Key.ID, b.Count, b.Created, b.Updated)
}

func badFields(count, created, updated int64) []string {
	return []string{"count", fmt.Sprint(count), "created", fmt.Sprint(created), "updated", fmt.Sprint(updated)}
}

// badInjected is a key that an id trying RESP injection names; it must
// never exist.
const badInjected = "badinput:injected"

// TestBadInputCountHit runs CountHitN on odd ids, times, increments,
// buckets and keys of other types, all on one backend. For each row it
// checks the reply, the hash stored in Redis (HGETALL) and its TTL, that
// GetBucket reads the same, that DeleteBuckets deletes exactly that key,
// and that the backend then serves a plain hit. Finally the buckets of
// bystander ids are intact and the connection was never replaced.
func TestBadInputCountHit(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	ctx := context.Background()
	const now = 1_700_000_000_000
	mib := strings.Repeat("m", protocol.MaxIDBytes)

	// Bystanders: ids whose buckets a careless glob or colon would reach.
	bystanders := []string{"victim", "a:b", "a", "{user}b", "nul", "x", "line", "ab"}
	for _, id := range bystanders {
		_, err := f.B.CountHitN(ctx, hammerredis.BucketKey{Bucket: 7, ID: id}, now, 3)
		require.NoError(t, err)
	}

	setHash := func(fields ...any) func(*testing.T, *fixture, string) {
		return func(t *testing.T, f *fixture, rkey string) {
			testenv.Do(t, f.Admin, "HSET", append([]any{rkey}, fields...)...)
			testenv.Do(t, f.Admin, "EXPIRE", rkey, 1000)
		}
	}
	setForeign := func(cmd string, args ...any) func(*testing.T, *fixture, string) {
		return func(t *testing.T, f *fixture, rkey string) {
			testenv.Do(t, f.Admin, cmd, append([]any{rkey}, args...)...)
		}
	}

	for i, tt := range []struct {
		name     string
		key      hammerredis.BucketKey
		now, inc int64
		// setup writes the key before the call.
		setup func(t *testing.T, f *fixture, rkey string)

		want    int64  // the count CountHitN returns, when wantErr is nil
		wantErr error  // else its error, matched with errors.Is
		errHas  string // and a piece of its message

		hash    []string // HGETALL afterwards; nil: no hash
		ttl     int64    // its TTL (-2: no key; -1: none)
		foreign string   // setup stored this type: it stays as it was
		getErr  error    // GetBucket's error; else it reads hash back
	}{
		// Ids: binary-safe, any length up to MaxIDBytes.
		{name: "empty id", key: hammerredis.BucketKey{Bucket: 1, ID: ""}, now: now, inc: 1,
			want: 1, hash: badFields(1, now, now), ttl: 61},
		{name: "id of exactly 1 MiB", key: hammerredis.BucketKey{Bucket: 1, ID: mib}, now: now, inc: 1,
			want: 1, hash: badFields(1, now, now), ttl: 61},
		{name: "id of 1 MiB + 1 byte", key: hammerredis.BucketKey{Bucket: 1, ID: mib + "m"}, now: now, inc: 1,
			wantErr: hammerredis.ErrInvalid, errHas: "1048577 bytes", ttl: -2, getErr: hammerredis.ErrInvalid},
		{name: "id with NUL bytes", key: hammerredis.BucketKey{Bucket: 1, ID: "nul\x00id\x00"}, now: now, inc: 1,
			want: 1, hash: badFields(1, now, now), ttl: 61},
		{name: "id of invalid UTF-8", key: hammerredis.BucketKey{Bucket: 1, ID: "\xff\xfe\xc3\x28\xed\xa0\x80"}, now: now, inc: 1,
			want: 1, hash: badFields(1, now, now), ttl: 61},
		{name: "id *", key: hammerredis.BucketKey{Bucket: 1, ID: "*"}, now: now, inc: 1,
			want: 1, hash: badFields(1, now, now), ttl: 61},
		{name: "id of glob characters", key: hammerredis.BucketKey{Bucket: 1, ID: `a*b?c[d-e]f\g^h[^x]`}, now: now, inc: 1,
			want: 1, hash: badFields(1, now, now), ttl: 61},
		{name: "id of braces (a hash tag)", key: hammerredis.BucketKey{Bucket: 1, ID: "{user}"}, now: now, inc: 1,
			want: 1, hash: badFields(1, now, now), ttl: 61},
		{name: "id of colons", key: hammerredis.BucketKey{Bucket: 1, ID: "a:b:7"}, now: now, inc: 1,
			want: 1, hash: badFields(1, now, now), ttl: 61},
		{name: "id :", key: hammerredis.BucketKey{Bucket: 1, ID: ":"}, now: now, inc: 1,
			want: 1, hash: badFields(1, now, now), ttl: 61},
		{name: "id with newlines and RESP", key: hammerredis.BucketKey{Bucket: 1,
			ID: "line\r\n*3\r\n$3\r\nSET\r\n$17\r\n" + badInjected + "\r\n$1\r\n1\r\n"}, now: now, inc: 1,
			want: 1, hash: badFields(1, now, now), ttl: 61},
		{name: "id of spaces and tabs", key: hammerredis.BucketKey{Bucket: 1, ID: " \t "}, now: now, inc: 1,
			want: 1, hash: badFields(1, now, now), ttl: 61},

		// Times: stored as given, whatever they are.
		{name: "now 0", key: hammerredis.BucketKey{Bucket: 1, ID: "now"}, now: 0, inc: 1,
			want: 1, hash: badFields(1, 0, 0), ttl: 61},
		{name: "now -1", key: hammerredis.BucketKey{Bucket: 2, ID: "now"}, now: -1, inc: 1,
			want: 1, hash: badFields(1, -1, -1), ttl: 61},
		{name: "now MinInt64", key: hammerredis.BucketKey{Bucket: 3, ID: "now"}, now: math.MinInt64, inc: 1,
			want: 1, hash: badFields(1, math.MinInt64, math.MinInt64), ttl: 61},
		{name: "now MaxInt64", key: hammerredis.BucketKey{Bucket: 4, ID: "now"}, now: math.MaxInt64, inc: 1,
			want: 1, hash: badFields(1, math.MaxInt64, math.MaxInt64), ttl: 61},
		{name: "now earlier than created", key: hammerredis.BucketKey{Bucket: 5, ID: "now"}, now: 10, inc: 1,
			setup: setHash("count", 4, "created", 20, "updated", 20),
			want:  5, hash: badFields(5, 20, 10), ttl: 61},

		// Increments: passed to Redis as given, as in Elixir.
		{name: "increment 0", key: hammerredis.BucketKey{Bucket: 1, ID: "inc"}, now: now, inc: 0,
			want: 0, hash: badFields(0, now, now), ttl: 61},
		{name: "increment -5", key: hammerredis.BucketKey{Bucket: 2, ID: "inc"}, now: now, inc: -5,
			want: -5, hash: badFields(-5, now, now), ttl: 61},
		{name: "increment MinInt64", key: hammerredis.BucketKey{Bucket: 3, ID: "inc"}, now: now, inc: math.MinInt64,
			want: math.MinInt64, hash: badFields(math.MinInt64, now, now), ttl: 61},
		{name: "increment 2^53+1", key: hammerredis.BucketKey{Bucket: 4, ID: "inc"}, now: now, inc: 1<<53 + 1,
			want: 1<<53 + 1, hash: badFields(1<<53+1, now, now), ttl: 61},
		{name: "increment MaxInt64", key: hammerredis.BucketKey{Bucket: 5, ID: "inc"}, now: now, inc: math.MaxInt64,
			want: math.MaxInt64, hash: badFields(math.MaxInt64, now, now), ttl: 61},
		{name: "count MaxInt64, increment 1: overflow", key: hammerredis.BucketKey{Bucket: 6, ID: "inc"}, now: now, inc: 1,
			setup:   setHash("count", int64(math.MaxInt64), "created", 1, "updated", 1),
			wantErr: hammerredis.ErrRedis, errHas: "overflow", hash: badFields(math.MaxInt64, 1, 1), ttl: 1000},
		{name: "count MinInt64, increment -1: overflow", key: hammerredis.BucketKey{Bucket: 7, ID: "inc"}, now: now, inc: -1,
			setup:   setHash("count", int64(math.MinInt64), "created", 1, "updated", 1),
			wantErr: hammerredis.ErrRedis, errHas: "overflow", hash: badFields(math.MinInt64, 1, 1), ttl: 1000},
		{name: "CountHitN(MaxInt64), then CountHitN(1): overflow", key: hammerredis.BucketKey{Bucket: 8, ID: "inc"}, now: now, inc: 1,
			setup: func(t *testing.T, f *fixture, _ string) {
				_, err := f.B.CountHitN(ctx, hammerredis.BucketKey{Bucket: 8, ID: "inc"}, 1, math.MaxInt64)
				require.NoError(t, err)
			},
			wantErr: hammerredis.ErrRedis, errHas: "overflow", hash: badFields(math.MaxInt64, 1, 1), ttl: 61},

		// Buckets: any int64.
		{name: "bucket -1", key: hammerredis.BucketKey{Bucket: -1, ID: "bucket"}, now: now, inc: 1,
			want: 1, hash: badFields(1, now, now), ttl: 61},
		{name: "bucket MinInt64", key: hammerredis.BucketKey{Bucket: math.MinInt64, ID: "bucket"}, now: now, inc: 1,
			want: 1, hash: badFields(1, now, now), ttl: 61},
		{name: "bucket MaxInt64", key: hammerredis.BucketKey{Bucket: math.MaxInt64, ID: "bucket"}, now: now, inc: 1,
			want: 1, hash: badFields(1, now, now), ttl: 61},

		// The bucket's key holds something else: a Redis error, the key
		// untouched (no TTL set), the backend up.
		{name: "key holds a string", key: hammerredis.BucketKey{Bucket: 1, ID: "foreign"}, now: now, inc: 1,
			setup:   setForeign("SET", "v"),
			wantErr: hammerredis.ErrRedis, errHas: "WRONGTYPE", foreign: "string", ttl: -1, getErr: hammerredis.ErrRedis},
		{name: "key holds a list", key: hammerredis.BucketKey{Bucket: 2, ID: "foreign"}, now: now, inc: 1,
			setup:   setForeign("RPUSH", "v"),
			wantErr: hammerredis.ErrRedis, errHas: "WRONGTYPE", foreign: "list", ttl: -1, getErr: hammerredis.ErrRedis},
		{name: "key holds a set", key: hammerredis.BucketKey{Bucket: 3, ID: "foreign"}, now: now, inc: 1,
			setup:   setForeign("SADD", "v"),
			wantErr: hammerredis.ErrRedis, errHas: "WRONGTYPE", foreign: "set", ttl: -1, getErr: hammerredis.ErrRedis},
		{name: "key holds a sorted set", key: hammerredis.BucketKey{Bucket: 4, ID: "foreign"}, now: now, inc: 1,
			setup:   setForeign("ZADD", 1, "v"),
			wantErr: hammerredis.ErrRedis, errHas: "WRONGTYPE", foreign: "zset", ttl: -1, getErr: hammerredis.ErrRedis},
		{name: "key holds a stream", key: hammerredis.BucketKey{Bucket: 5, ID: "foreign"}, now: now, inc: 1,
			setup:   setForeign("XADD", "*", "f", "v"),
			wantErr: hammerredis.ErrRedis, errHas: "WRONGTYPE", foreign: "stream", ttl: -1, getErr: hammerredis.ErrRedis},
		{name: "hash with a non-integer count", key: hammerredis.BucketKey{Bucket: 6, ID: "foreign"}, now: now, inc: 1,
			setup:   setHash("count", "x", "created", 1, "updated", 1),
			wantErr: hammerredis.ErrRedis, errHas: "not an integer",
			hash: []string{"count", "x", "created", "1", "updated", "1"}, ttl: 1000, getErr: hammerredis.ErrBadReply},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rkey := protocol.Key(f.Prefix, tt.key)
			call := fmt.Sprintf("CountHitN({%d, %.40q}, %d, %d)", tt.key.Bucket, tt.key.ID, tt.now, tt.inc)
			if tt.setup != nil {
				tt.setup(t, f, rkey)
			}
			var dump string
			if tt.foreign != "" {
				dump, _ = redis.String(f.Admin.Do("DUMP", rkey))
			}

			got, err := f.B.CountHitN(ctx, tt.key, tt.now, tt.inc)
			if tt.wantErr != nil {
				if assert.ErrorIs(t, err, tt.wantErr, "%s = %d, %v", call, got, err) {
					assert.Contains(t, err.Error(), tt.errHas, "%s error", call)
				}
			} else if assert.NoError(t, err, call) {
				assert.Equal(t, tt.want, got, call)
			}

			// What Redis holds.
			if tt.foreign != "" {
				typ, _ := redis.String(f.Admin.Do("TYPE", rkey))
				after, _ := redis.String(f.Admin.Do("DUMP", rkey))
				assert.Equal(t, tt.foreign, typ, "after %s the type of the %s key", call, tt.foreign)
				assert.Equal(t, dump, after, "after %s the %s key is unchanged", call, tt.foreign)
			} else {
				assert.Equal(t, strings.Join(tt.hash, " "), strings.Join(badHash(t, f.Admin, rkey), " "), "after %s HGETALL", call)
			}
			// A TTL set a moment ago may have ticked down a second or two.
			if ttl := badTTL(t, f.Admin, rkey); tt.ttl > 0 {
				assert.True(t, ttl <= tt.ttl && ttl >= tt.ttl-2, "after %s TTL = %d, want %d (or up to 2s less)", call, ttl, tt.ttl)
			} else {
				assert.Equal(t, tt.ttl, ttl, "after %s TTL", call)
			}

			// GetBucket reads it back, without touching it.
			info, err := f.B.GetBucket(ctx, tt.key)
			if tt.getErr != nil {
				assert.ErrorIs(t, err, tt.getErr, "GetBucket({%d, %.40q}) = %s", tt.key.Bucket, tt.key.ID, badShow(info))
			} else if assert.NoError(t, err, "GetBucket({%d, %.40q})", tt.key.Bucket, tt.key.ID) {
				assert.Equal(t, badShow(badBucket(t, tt.key, tt.hash)), badShow(info), "GetBucket({%d, %.40q})", tt.key.Bucket, tt.key.ID)
			}

			// DeleteBuckets deletes exactly that key, whatever it holds.
			exists, err := redis.Int64(f.Admin.Do("EXISTS", rkey))
			require.NoError(t, err)
			n, err := f.B.DeleteBuckets(ctx, tt.key.ID)
			if errors.Is(tt.wantErr, hammerredis.ErrInvalid) {
				assert.ErrorIs(t, err, hammerredis.ErrInvalid, "DeleteBuckets(%.40q) = %d", tt.key.ID, n)
			} else if assert.NoError(t, err, "DeleteBuckets(%.40q)", tt.key.ID) {
				assert.Equal(t, exists, n, "DeleteBuckets(%.40q)", tt.key.ID)
			}
			assert.Equal(t, int64(0), testenv.Do(t, f.Admin, "EXISTS", rkey), "after DeleteBuckets(%.40q) EXISTS %.60q", tt.key.ID, rkey)

			// The backend still serves.
			next := hammerredis.BucketKey{Bucket: int64(i), ID: "follow-up"}
			n, err = f.B.CountHit(ctx, next, now)
			if assert.NoError(t, err, "after %q: CountHit(%v)", tt.name, next) {
				assert.Equal(t, int64(1), n, "after %q: CountHit(%v)", tt.name, next)
			}
		})
	}

	for _, id := range bystanders {
		rkey := protocol.Key(f.Prefix, hammerredis.BucketKey{Bucket: 7, ID: id})
		assert.Equal(t, strings.Join(badFields(3, now, now), " "), strings.Join(badHash(t, f.Admin, rkey), " "),
			"the bystander bucket of id %q is intact", id)
	}
	assert.Equal(t, int64(0), testenv.Do(t, f.Admin, "EXISTS", badInjected), "EXISTS %q: an id injected a command", badInjected)
	assert.Equal(t, uint64(1), f.B.Stats().Connects, "connections made: bad input broke the connection\n%s", f.Log)
}

func TestLongDeleteNeverStallsRateChecks(t *testing.T) {
	if testing.Short() {
		t.Skip("a million keys take seconds to write: make test runs it")
	}
	srv := redistest.New(t)
	admin := srv.Conn(t)
	testenv.Populate(t, admin, 1_000_000) // SCAN takes a thousand round trips
	f := start(t, srv, hammerredis.Options{DeleteBucketsTimeout: time.Minute})
	for b := range int64(20) {
		_, err := f.B.CountHit(context.Background(), hammerredis.BucketKey{Bucket: b, ID: "victim"}, 1)
		require.NoError(t, err)
	}

	type result struct {
		n   int64
		err error
	}
	deleted := make(chan result, 1)
	go func() {
		n, err := f.B.DeleteBuckets(context.Background(), "victim")
		deleted <- result{n, err}
	}()
	testenv.WaitUntil(t, "the delete's first SCAN", func() bool { return cmdCalls(t, admin, "scan") > 0 })
	checks, during := 0, 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err := f.B.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: fmt.Sprint("check", checks)}, 1)
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

// secIsBucketOf is an independent oracle: key is "<prefix><id>:<n>" with n
// an int64 in canonical base 10.
func secIsBucketOf(prefix, id, key string) bool {
	rest, ok := strings.CutPrefix(key, prefix+id+":")
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	return err == nil && strconv.FormatInt(n, 10) == rest
}

func TestDeleteBucketsAttackerIDsDeleteNothingOfVictims(t *testing.T) {
	attackers := []string{
		"*", "?", "[a-z]*", "[v]ictim", "\\", "\\*", "Hammer:Redis:", "", ":", "x:*", "*:*", "victim*", "vic?im",
		"victim:*", "victim:", "victim:1", "victi", "[", "]", "[!a]*", "[^a]*", "\\victim", "victim\\", "VICTIM",
		" victim", "victim ", "\x00", "*\x00", strings.Repeat("*", 1000), "?*?*?*?*?*?*?*?*?*?*",
	}
	for _, prefix := range []string{testenv.ACLPrefix, `rl:{*}?[a]\:`} {
		t.Run(fmt.Sprintf("prefix %q", prefix), func(t *testing.T) {
			srv := redistest.New(t)
			admin := srv.Conn(t)
			f := start(t, srv, hammerredis.Options{KeyPrefix: prefix})
			ctx := context.Background()

			// The victims: several buckets of "victim" and of an id full of
			// glob characters, written by the backend.
			victims := []string{"victim", "v[1]*?\\", "victim:2"}
			for _, id := range victims {
				for _, bucket := range []int64{-5, 0, 1, 2, 29923304, 1 << 62} {
					_, err := f.B.CountHit(ctx, hammerredis.BucketKey{Bucket: bucket, ID: id}, 1)
					require.NoError(t, err)
				}
			}
			// Keys that are nobody's buckets, inside and outside the prefix.
			for _, k := range []string{
				prefix + "victim", prefix + "victim:", prefix + "victim:01", prefix + "victim:+1", prefix + "victim:1x",
				prefix + "victim:-0", prefix + "*:01", prefix + "?:1:x", prefix + ":", prefix,
				"victim:1", "other:key", "Hammer:Redis", "hammer:redis:victim:1", "rl:X?[a]\\:victim:1",
				"rlX{*}?[a]\\:victim:1", "rl:{*}?a\\:victim:1",
			} {
				if !strings.HasPrefix(k, prefix) || k == prefix {
					testenv.Do(t, admin, "SET", k, "not a bucket")
				} else {
					testenv.Do(t, admin, "HSET", k, "count", 1, "created", 1, "updated", 1)
				}
			}
			before := secScanAll(t, admin)
			// The test is only meaningful if no key is an attacker's bucket.
			for _, id := range attackers {
				for _, k := range before {
					require.False(t, secIsBucketOf(prefix, id, k), "key %q is a bucket of attacker id %q", k, id)
				}
			}

			for _, id := range attackers {
				n, err := f.B.DeleteBuckets(ctx, id)
				require.NoError(t, err, "DeleteBuckets(%q)", id)
				assert.Zero(t, n, "DeleteBuckets(%q)", id)
				require.Equal(t, before, secScanAll(t, admin), "after DeleteBuckets(%q)", id)
			}

			// Control: each attacker id's own buckets do go, and nothing else.
			for _, id := range attackers {
				for _, bucket := range []int64{-3, 7} {
					_, err := f.B.CountHit(ctx, hammerredis.BucketKey{Bucket: bucket, ID: id}, 1)
					require.NoError(t, err)
				}
				n, err := f.B.DeleteBuckets(ctx, id)
				require.NoError(t, err, "DeleteBuckets(%q)", id)
				assert.Equal(t, int64(2), n, "DeleteBuckets(%q) of its own buckets", id)
				require.Equal(t, before, secScanAll(t, admin), "after DeleteBuckets(%q) of its own buckets", id)
			}

			// And the victims still own theirs.
			for _, id := range victims {
				n, err := f.B.DeleteBuckets(ctx, id)
				require.NoError(t, err)
				assert.Equal(t, int64(6), n, "DeleteBuckets(%q)", id)
			}
			assert.Equal(t, int64(0), testenv.Do(t, admin, "EXISTS", prefix+"victim:1"))
			assert.Equal(t, int64(1), testenv.Do(t, admin, "EXISTS", "victim:1"), "keys outside the prefix stay")
		})
	}
}

func TestCountHitWritesTheElixirLayout(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	ctx := context.Background()
	key := hammerredis.BucketKey{Bucket: 28333333, ID: "upload:42"}

	n, err := f.B.CountHitN(ctx, key, 1700000000123, 3)
	require.NoError(t, err)
	assert.Equal(t, int64(3), n, "the first hit returns the increment")

	rkey := f.Prefix + "upload:42:28333333"
	fields, err := redis.Strings(f.Admin.Do("HGETALL", rkey))
	require.NoError(t, err)
	assert.Equal(t, []string{"count", "3", "created", "1700000000123", "updated", "1700000000123"}, fields)
	assert.Equal(t, int64(61), testenv.Do(t, f.Admin, "TTL", rkey))
	keys, err := redis.Strings(f.Admin.Do("KEYS", f.Prefix+"*"))
	require.NoError(t, err)
	assert.Equal(t, []string{rkey}, keys, "no other keys")

	// A later hit: created stays, updated moves, the TTL is refreshed.
	testenv.Do(t, f.Admin, "EXPIRE", rkey, 5)
	n, err = f.B.CountHit(ctx, key, 1700000000999)
	require.NoError(t, err)
	assert.Equal(t, int64(4), n)
	// An earlier now: created stays, updated takes it as given (no max).
	n, err = f.B.CountHitN(ctx, key, 1700000000000, 10)
	require.NoError(t, err)
	assert.Equal(t, int64(14), n)
	fields, err = redis.Strings(f.Admin.Do("HGETALL", rkey))
	require.NoError(t, err)
	assert.Equal(t, []string{"count", "14", "created", "1700000000123", "updated", "1700000000000"}, fields)
	assert.Equal(t, int64(61), testenv.Do(t, f.Admin, "TTL", rkey))
}

func TestCountHitIncrementsAsGiven(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	ctx := context.Background()
	for i, tt := range []struct{ inc, want int64 }{{0, 0}, {5, 5}, {-7, -2}, {0, -2}} {
		got, err := f.B.CountHitN(ctx, hammerredis.BucketKey{Bucket: 1, ID: "inc"}, 1000, tt.inc)
		require.NoError(t, err)
		assert.Equal(t, tt.want, got, "step %d: CountHitN(inc %d)", i, tt.inc)
	}
}

func TestTTLRounding(t *testing.T) {
	for _, tt := range []struct{ expiry, ttl int64 }{{60000, 61}, {7200000, 7201}, {1500, 3}, {1499, 2}, {500, 2}} {
		t.Run(fmt.Sprint(tt.expiry), func(t *testing.T) {
			f := start(t, nil, hammerredis.Options{ExpiryMs: tt.expiry})
			_, err := f.B.CountHit(context.Background(), hammerredis.BucketKey{Bucket: 1, ID: "x"}, 1)
			require.NoError(t, err)
			assert.Equal(t, tt.ttl, testenv.Do(t, f.Admin, "TTL", f.Key("x", 1)), "TTL with ExpiryMs %d", tt.expiry)
		})
	}
}

func TestGetBucket(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	ctx := context.Background()
	key := hammerredis.BucketKey{Bucket: -3, ID: "g"}

	info, err := f.B.GetBucket(ctx, key)
	require.NoError(t, err)
	assert.Nil(t, info, "no bucket")

	_, err = f.B.CountHitN(ctx, key, 100, 2)
	require.NoError(t, err)
	_, err = f.B.CountHit(ctx, key, 250)
	require.NoError(t, err)
	testenv.Do(t, f.Admin, "EXPIRE", f.Key("g", -3), 1000)

	info, err = f.B.GetBucket(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, &hammerredis.BucketInfo{Key: key, Count: 3, Created: 100, Updated: 250}, info)
	assert.Equal(t, int64(1000), testenv.Do(t, f.Admin, "TTL", f.Key("g", -3)), "GetBucket leaves the TTL alone")
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
		testenv.Do(t, f.Admin, "HSET", append([]any{f.Key("m", int64(i))}, fields...)...)
		info, err := f.B.GetBucket(ctx, hammerredis.BucketKey{Bucket: int64(i), ID: "m"})
		assert.ErrorIs(t, err, hammerredis.ErrBadReply, "hash %v", fields)
		assert.Nil(t, info)
	}
	// Still serving.
	n, err := f.B.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "ok"}, 1)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
}

func TestRedisErrorRepliesKeepTheBackendUp(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	ctx := context.Background()

	// A key of another type: WRONGTYPE, and the key is left untouched.
	testenv.Do(t, f.Admin, "SET", f.Key("str", 1), "v")
	_, err := f.B.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "str"}, 1)
	assert.ErrorIs(t, err, hammerredis.ErrRedis)
	assert.ErrorContains(t, err, "WRONGTYPE")
	assert.Equal(t, int64(-1), testenv.Do(t, f.Admin, "TTL", f.Key("str", 1)), "no TTL set on the foreign key")
	_, err = f.B.GetBucket(ctx, hammerredis.BucketKey{Bucket: 1, ID: "str"})
	assert.ErrorIs(t, err, hammerredis.ErrRedis)

	// Overflow: an error, and the count stays.
	key := hammerredis.BucketKey{Bucket: 1, ID: "big"}
	_, err = f.B.CountHitN(ctx, key, 1, 9223372036854775807)
	require.NoError(t, err)
	_, err = f.B.CountHitN(ctx, key, 2, 1)
	assert.ErrorIs(t, err, hammerredis.ErrRedis)
	info, err := f.B.GetBucket(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, int64(9223372036854775807), info.Count)
	assert.Equal(t, int64(1), info.Updated, "nothing written by the failed hit")

	n, err := f.B.CountHit(ctx, hammerredis.BucketKey{Bucket: 2, ID: "big"}, 1)
	require.NoError(t, err, "the backend serves the next call")
	assert.Equal(t, int64(1), n)
	assert.Equal(t, uint64(1), f.B.Stats().Connects, "the connection was never replaced")
}

func TestOddIDsRoundTrip(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	ctx := context.Background()
	for _, id := range []string{"", "a b", "nul\x00byte", "\xff\xfe", "{tag}", "*", "a:b:c", "new\nline", strings.Repeat("é", 1000)} {
		key := hammerredis.BucketKey{Bucket: 7, ID: id}
		n, err := f.B.CountHit(ctx, key, 5)
		require.NoError(t, err, "id %q", id)
		assert.Equal(t, int64(1), n, "id %q", id)
		info, err := f.B.GetBucket(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, &hammerredis.BucketInfo{Key: key, Count: 1, Created: 5, Updated: 5}, info, "id %q", id)
		assert.Equal(t, int64(1), testenv.Do(t, f.Admin, "EXISTS", f.Key(id, 7)), "key of id %q", id)
	}
	for _, id := range []string{"", "a b", "nul\x00byte", "\xff\xfe", "{tag}", "*", "a:b:c", "new\nline", strings.Repeat("é", 1000)} {
		n, err := f.B.DeleteBuckets(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, int64(1), n, "DeleteBuckets(%q)", id)
	}
	_, err := f.B.CountHit(ctx, hammerredis.BucketKey{ID: strings.Repeat("x", 1<<20+1)}, 1)
	assert.ErrorIs(t, err, hammerredis.ErrInvalid)
}

func TestDeleteBucketsTouchesOnlyItsID(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	ctx := context.Background()
	ids := []string{"a", "a:b", "a:1", "x*", "xy", "x", "q?", "qq", "[ab]", "a]", "b", `back\slash`, `back\`, ""}
	for _, id := range ids {
		for bucket := int64(-1); bucket <= 1; bucket++ {
			_, err := f.B.CountHit(ctx, hammerredis.BucketKey{Bucket: bucket, ID: id}, 1)
			require.NoError(t, err)
		}
	}
	// Keys that look like buckets of "a" but are not: left alone.
	testenv.Do(t, f.Admin, "SET", f.Prefix+"a:01", "x")
	testenv.Do(t, f.Admin, "SET", f.Prefix+"a:", "x")
	total := int64(len(ids)*3 + 2)
	for _, id := range ids {
		n, err := f.B.DeleteBuckets(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, int64(3), n, "DeleteBuckets(%q)", id)
		total -= 3
		left, err := redis.Strings(f.Admin.Do("KEYS", f.Prefix+"*"))
		require.NoError(t, err)
		assert.Len(t, left, int(total), "after deleting %q: %q", id, left)
	}
	n, err := f.B.DeleteBuckets(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, int64(0), n, "nothing left to delete")
}

func TestDeleteBucketsManyKeys(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	ctx := context.Background()
	const n = 2500 // several SCAN rounds of COUNT 1000
	args := []any{}
	for i := range n {
		args = append(args, f.Key("many", int64(i)), "1", f.Key("other", int64(i)), "1")
	}
	testenv.Do(t, f.Admin, "MSET", args...)
	deleted, err := f.B.DeleteBuckets(ctx, "many")
	require.NoError(t, err)
	assert.Equal(t, int64(n), deleted)
	left, err := redis.Strings(f.Admin.Do("KEYS", f.Prefix+"*"))
	require.NoError(t, err)
	assert.Len(t, left, n)
}
