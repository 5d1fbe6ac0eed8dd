package hammerredis_test

// Bad input through the public API. Each row names the input, the call and
// the outcome: a count checked against what Redis stores, or an error
// matched with errors.Is. After each row the backend still serves, and no
// row loses or invents a hit.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/internal/redistest"
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
		_, err := f.b.CountHitN(ctx, hammerredis.BucketKey{Bucket: 7, ID: id}, now, 3)
		require.NoError(t, err)
	}

	setHash := func(fields ...any) func(*testing.T, *fixture, string) {
		return func(t *testing.T, f *fixture, rkey string) {
			do(t, f.admin, "HSET", append([]any{rkey}, fields...)...)
			do(t, f.admin, "EXPIRE", rkey, 1000)
		}
	}
	setForeign := func(cmd string, args ...any) func(*testing.T, *fixture, string) {
		return func(t *testing.T, f *fixture, rkey string) { do(t, f.admin, cmd, append([]any{rkey}, args...)...) }
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
				_, err := f.b.CountHitN(ctx, hammerredis.BucketKey{Bucket: 8, ID: "inc"}, 1, math.MaxInt64)
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
			rkey := protocol.Key(f.prefix, tt.key)
			call := fmt.Sprintf("CountHitN({%d, %.40q}, %d, %d)", tt.key.Bucket, tt.key.ID, tt.now, tt.inc)
			if tt.setup != nil {
				tt.setup(t, f, rkey)
			}
			var dump string
			if tt.foreign != "" {
				dump, _ = redis.String(f.admin.Do("DUMP", rkey))
			}

			got, err := f.b.CountHitN(ctx, tt.key, tt.now, tt.inc)
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("%s = %d, %v; want error %v", call, got, err, tt.wantErr)
			case tt.wantErr != nil && !strings.Contains(err.Error(), tt.errHas):
				t.Errorf("%s error = %q, want it to say %q", call, err, tt.errHas)
			case tt.wantErr == nil && (err != nil || got != tt.want):
				t.Errorf("%s = %d, %v; want %d", call, got, err, tt.want)
			}

			// What Redis holds.
			if tt.foreign != "" {
				typ, _ := redis.String(f.admin.Do("TYPE", rkey))
				after, _ := redis.String(f.admin.Do("DUMP", rkey))
				if typ != tt.foreign || after != dump {
					t.Errorf("after %s the %s key is a %s, changed: %v", call, tt.foreign, typ, after != dump)
				}
			} else if h := badHash(t, f.admin, rkey); strings.Join(h, " ") != strings.Join(tt.hash, " ") {
				t.Errorf("after %s HGETALL = %q, want %q", call, h, tt.hash)
			}
			// A TTL set a moment ago may have ticked down a second or two.
			if ttl := badTTL(t, f.admin, rkey); ttl != tt.ttl && !(tt.ttl > 0 && ttl < tt.ttl && ttl >= tt.ttl-2) {
				t.Errorf("after %s TTL = %d, want %d", call, ttl, tt.ttl)
			}

			// GetBucket reads it back, without touching it.
			info, err := f.b.GetBucket(ctx, tt.key)
			if tt.getErr != nil {
				if !errors.Is(err, tt.getErr) {
					t.Errorf("GetBucket({%d, %.40q}) = %s, %v; want error %v", tt.key.Bucket, tt.key.ID, badShow(info), err, tt.getErr)
				}
			} else if want := badBucket(t, tt.key, tt.hash); err != nil || badShow(info) != badShow(want) {
				t.Errorf("GetBucket({%d, %.40q}) = %s, %v; want %s", tt.key.Bucket, tt.key.ID, badShow(info), err, badShow(want))
			}

			// DeleteBuckets deletes exactly that key, whatever it holds.
			exists, err := redis.Int64(f.admin.Do("EXISTS", rkey))
			require.NoError(t, err)
			n, err := f.b.DeleteBuckets(ctx, tt.key.ID)
			if errors.Is(tt.wantErr, hammerredis.ErrInvalid) {
				if !errors.Is(err, hammerredis.ErrInvalid) {
					t.Errorf("DeleteBuckets(%.40q) = %d, %v; want ErrInvalid", tt.key.ID, n, err)
				}
			} else if err != nil || n != exists {
				t.Errorf("DeleteBuckets(%.40q) = %d, %v; want %d", tt.key.ID, n, err, exists)
			}
			if left := do(t, f.admin, "EXISTS", rkey); left != int64(0) {
				t.Errorf("after DeleteBuckets(%.40q) EXISTS %.60q = %v, want 0", tt.key.ID, rkey, left)
			}

			// The backend still serves.
			next := hammerredis.BucketKey{Bucket: int64(i), ID: "follow-up"}
			if n, err := f.b.CountHit(ctx, next, now); err != nil || n != 1 {
				t.Errorf("after %q: CountHit(%v) = %d, %v; want 1", tt.name, next, n, err)
			}
		})
	}

	for _, id := range bystanders {
		rkey := protocol.Key(f.prefix, hammerredis.BucketKey{Bucket: 7, ID: id})
		if h := badHash(t, f.admin, rkey); strings.Join(h, " ") != strings.Join(badFields(3, now, now), " ") {
			t.Errorf("the bystander bucket of id %q = %q, want it intact", id, h)
		}
	}
	if n := do(t, f.admin, "EXISTS", badInjected); n != int64(0) {
		t.Errorf("EXISTS %q = %v: an id injected a command", badInjected, n)
	}
	if n := f.log.Count(connectedMsg); n != 1 {
		t.Errorf("the backend connected %d times, want 1: bad input broke the connection\n%s", n, f.log)
	}
}

// TestBadInputCancelledContexts calls with a context that is already
// cancelled, or whose deadline has passed, many times over: each call gets
// the context's error at once, and none reaches Redis (the key is never
// written, the bucket to delete stays).
func TestBadInputCancelledContexts(t *testing.T) {
	f := start(t, nil, hammerredis.Options{CallTimeout: time.Hour})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()

	hitKey := hammerredis.BucketKey{Bucket: 1, ID: "ctx-hit"}
	keep := hammerredis.BucketKey{Bucket: 1, ID: "ctx-keep"}

	for _, tt := range []struct {
		name  string
		ctx   context.Context
		call  string
		tries int
		run   func(ctx context.Context) error
		want  []error // the error matches each
		not   error   // and not this one
	}{
		{"CountHit, cancelled", cancelled, "CountHit(ctx-hit)", 20000,
			func(ctx context.Context) error { _, err := f.b.CountHit(ctx, hitKey, 1); return err },
			[]error{context.Canceled}, hammerredis.ErrTimeout},
		{"CountHit, deadline passed", expired, "CountHit(ctx-hit)", 20000,
			func(ctx context.Context) error { _, err := f.b.CountHit(ctx, hitKey, 1); return err },
			[]error{hammerredis.ErrTimeout, context.DeadlineExceeded}, context.Canceled},
		{"GetBucket, cancelled", cancelled, "GetBucket(ctx-keep)", 2000,
			func(ctx context.Context) error { _, err := f.b.GetBucket(ctx, keep); return err },
			[]error{context.Canceled}, hammerredis.ErrTimeout},
		{"DeleteBuckets, cancelled", cancelled, "DeleteBuckets(ctx-keep)", 5000,
			func(ctx context.Context) error { _, err := f.b.DeleteBuckets(ctx, keep.ID); return err },
			[]error{context.Canceled}, hammerredis.ErrTimeout},
		{"DeleteBuckets, deadline passed", expired, "DeleteBuckets(ctx-keep)", 5000,
			func(ctx context.Context) error { _, err := f.b.DeleteBuckets(ctx, keep.ID); return err },
			[]error{hammerredis.ErrTimeout, context.DeadlineExceeded}, context.Canceled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			keepKey := protocol.Key(f.prefix, keep)
			do(t, f.admin, "DEL", keepKey)
			do(t, f.admin, "HSET", keepKey, "count", 1, "created", 1, "updated", 1)
			begin := time.Now()
			wrong, example := 0, error(nil)
			for range tt.tries {
				err := tt.run(tt.ctx)
				ok := !errors.Is(err, tt.not)
				for _, want := range tt.want {
					ok = ok && errors.Is(err, want)
				}
				if !ok {
					wrong, example = wrong+1, err
				}
			}
			if wrong > 0 {
				var want []string
				for _, w := range tt.want {
					want = append(want, fmt.Sprintf("%q", w))
				}
				t.Errorf("%d of %d calls: %s = %v, want an error matching %s, not %q",
					wrong, tt.tries, tt.call, example, strings.Join(want, " and "), tt.not)
			}
			t.Logf("%d calls in %v", tt.tries, time.Since(begin))
			if h := badHash(t, f.admin, protocol.Key(f.prefix, hitKey)); len(h) != 0 {
				t.Errorf("after %d calls of %s with a done context, HGETALL %s = %q, want no hash: "+
					"calls whose context was done before they began reached Redis", tt.tries, tt.call, hitKey.ID, h)
				do(t, f.admin, "DEL", protocol.Key(f.prefix, hitKey))
			}
			if h := badHash(t, f.admin, keepKey); strings.Join(h, " ") != strings.Join(badFields(1, 1, 1), " ") {
				t.Errorf("after %d calls of %s with a done context, the bucket of ctx-keep = %q, want it intact",
					tt.tries, tt.call, h)
			}
			if n, err := f.b.CountHit(context.Background(), hammerredis.BucketKey{Bucket: 2, ID: tt.name}, 1); err != nil || n != 1 {
				t.Errorf("then CountHit = %d, %v; want 1", n, err)
			}
		})
	}
}

// TestBadInputAfterStop: every call after Stop is ErrStopped and touches
// nothing; Stop is idempotent, also concurrently, and on nil.
func TestBadInputAfterStop(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	ctx := context.Background()
	key := hammerredis.BucketKey{Bucket: 1, ID: "stopped"}
	_, err := f.b.CountHit(ctx, key, 1)
	require.NoError(t, err)

	var stops sync.WaitGroup
	stopErrs := make([]error, 3)
	for i := range stopErrs {
		stops.Add(1)
		go func() { defer stops.Done(); stopErrs[i] = hammerredis.Stop(f.b) }()
	}
	stops.Wait()
	for i, err := range stopErrs {
		if err != nil {
			t.Errorf("concurrent Stop #%d = %v, want nil", i, err)
		}
	}

	for _, tt := range []struct {
		call string
		run  func() error
		want error
	}{
		{"CountHit", func() error { _, err := f.b.CountHit(ctx, key, 2); return err }, hammerredis.ErrStopped},
		{"CountHitN(5)", func() error { _, err := f.b.CountHitN(ctx, key, 2, 5); return err }, hammerredis.ErrStopped},
		{"GetBucket", func() error { _, err := f.b.GetBucket(ctx, key); return err }, hammerredis.ErrStopped},
		{"DeleteBuckets", func() error { _, err := f.b.DeleteBuckets(ctx, key.ID); return err }, hammerredis.ErrStopped},
		{"WaitConnected", func() error { return f.b.WaitConnected(ctx) }, hammerredis.ErrStopped},
		{"Stop again", func() error { return hammerredis.Stop(f.b) }, nil},
		{"Stop(nil)", func() error { return hammerredis.Stop(nil) }, nil},
	} {
		if err := tt.run(); !errors.Is(err, tt.want) {
			t.Errorf("after Stop: %s = %v, want %v", tt.call, err, tt.want)
		}
	}
	if f.b.Connected() {
		t.Errorf("after Stop: Connected() = true, want false")
	}
	if h := badHash(t, f.admin, f.key(key.ID, key.Bucket)); strings.Join(h, " ") != strings.Join(badFields(1, 1, 1), " ") {
		t.Errorf("after Stop and calls: HGETALL = %q, want the bucket as it was", h)
	}

	// A backend that never ran stops too.
	b, err := hammerredis.New(hammerredis.Options{ExpiryMs: 1000, RedisURL: redisURL, KeyPrefix: f.prefix})
	require.NoError(t, err)
	if err := hammerredis.Stop(b); err != nil {
		t.Errorf("Stop(New(...)) = %v, want nil", err)
	}
	if _, err := b.CountHit(ctx, key, 3); !errors.Is(err, hammerredis.ErrStopped) {
		t.Errorf("CountHit after Stop(New(...)) = %v, want ErrStopped", err)
	}
}

// TestStopRacingCallsLosesNoHit: callers hit their own ids while Stop runs
// (twice, concurrently). Every call ends with a count or a clear error;
// every hit acknowledged is in Redis, and Redis holds no hit that was not
// acknowledged or reported as of unknown outcome.
func TestStopRacingCallsLosesNoHit(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	const callers = 8
	type tally struct{ ok, unknown, last int64 }
	tallies := make([]tally, callers)
	var warm atomic.Int64
	warmed := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := hammerredis.BucketKey{Bucket: 1, ID: fmt.Sprint("racer", i)}
			for j := 0; ; j++ {
				n, err := f.b.CountHit(context.Background(), key, 1)
				switch {
				case err == nil:
					tallies[i].ok++
					tallies[i].last = n
				case errors.Is(err, hammerredis.ErrDisconnected), errors.Is(err, hammerredis.ErrTimeout):
					tallies[i].unknown++
				case errors.Is(err, hammerredis.ErrClosed): // not sent
				case errors.Is(err, hammerredis.ErrStopped):
					return
				default:
					t.Errorf("caller %d: CountHit during Stop = %v, want a count or ErrDisconnected, ErrClosed, ErrStopped", i, err)
					return
				}
				if j == 20 && warm.Add(1) == callers {
					close(warmed)
				}
			}
		}()
	}
	select {
	case <-warmed:
	case <-time.After(waitLong):
		t.Fatalf("the callers never made 20 calls each")
	}
	var stops sync.WaitGroup
	for range 2 {
		stops.Add(1)
		go func() {
			defer stops.Done()
			if err := hammerredis.Stop(f.b); err != nil {
				t.Errorf("Stop = %v, want nil", err)
			}
		}()
	}
	stops.Wait()
	wg.Wait()
	for i, c := range tallies {
		t.Logf("caller %d: %d hits acknowledged, %d of unknown outcome", i, c.ok, c.unknown)
		stored, err := redis.Int64(f.admin.Do("HGET", f.key(fmt.Sprint("racer", i), 1), "count"))
		require.NoError(t, err)
		if stored < c.ok || stored > c.ok+c.unknown || c.last > stored {
			t.Errorf("caller %d: Redis counts %d hits; acknowledged %d (the last with count %d), %d of unknown outcome",
				i, stored, c.ok, c.last, c.unknown)
		}
	}
}

// TestBadInputOptions: malformed URLs, unknown schemes, bad ports and other
// bad settings fail at Start with ErrInvalid and a message naming the
// problem, start nothing, and never show the password.
func TestBadInputOptions(t *testing.T) {
	const pw = "Zq9-opt-secret"
	withURL := func(u string) hammerredis.Options { return hammerredis.Options{ExpiryMs: 1000, RedisURL: u} }
	withConfig := func(c hammerredis.RedisConfig) hammerredis.Options {
		return hammerredis.Options{ExpiryMs: 1000, RedixConfig: &c}
	}
	for _, tt := range []struct {
		name string
		opts hammerredis.Options
		want string // a piece of the message
	}{
		{"port 0", withURL("redis://:" + pw + "@127.0.0.1:0"), `port "0" is not in 1-65535`},
		{"port 65536", withURL("redis://:" + pw + "@127.0.0.1:65536"), `port "65536" is not in 1-65535`},
		{"port -1", withURL("redis://:" + pw + "@127.0.0.1:-1"), "invalid port"},
		{"port of letters", withURL("redis://:" + pw + "@127.0.0.1:http"), "invalid port"},
		{"port beyond int64", withURL("redis://:" + pw + "@h:99999999999999999999"), "not in 1-65535"},
		{"config port -1", withConfig(hammerredis.RedisConfig{Port: -1, Password: pw}), "port -1 is out of range"},
		{"config port 65536", withConfig(hammerredis.RedisConfig{Port: 65536, Password: pw}), "port 65536 is out of range"},
		{"scheme unix", withURL("unix:///tmp/redis.sock"), `unknown scheme "unix"`},
		{"scheme tcp", withURL("tcp://:" + pw + "@h:1"), `unknown scheme "tcp"`},
		{"scheme https", withURL("https://:" + pw + "@h:1"), `unknown scheme "https"`},
		{"no scheme", withURL("127.0.0.1:6379"), "scheme"},
		{"one slash", withURL("redis:/h:1"), "two slashes"},
		{"no slashes", withURL("redis:h:1"), "two slashes"},
		{"leading space", withURL(" redis://h:1"), "RedisURL"},
		{"newline", withURL("redis://h:1\n"), "RedisURL"},
		{"NUL", withURL("redis://h\x00:1"), "RedisURL"},
		{"space in host", withURL("redis://a b:1"), "RedisURL"},
		{"unclosed IPv6", withURL("redis://:" + pw + "@[::1:1"), "RedisURL"},
		{"database -1", withURL("redis://:" + pw + "@h:1/-1"), `database "-1"`},
		{"database beyond int64", withURL("redis://h:1/99999999999999999999"), "database"},
		{"database path", withURL("redis://h:1/0/1"), `database "0/1"`},
		{"fragment", withURL("redis://:" + pw + "@h:1/0#top"), "fragments"},
		{"query", withURL("redis://:" + pw + "@h:1/0?db=1"), "query"},
		{"bad escape in password", withURL("redis://u:" + pw + "%zz@h:1"), "percent-encode"},
		{"host with a slash", withConfig(hammerredis.RedisConfig{Host: "a/b"}), "not a host name"},
		{"host with a newline", withConfig(hammerredis.RedisConfig{Host: "h\n"}), "not a host name"},
		{"database -1 in config", withConfig(hammerredis.RedisConfig{Database: -1}), "database -1"},
		{"negative read timeout", withConfig(hammerredis.RedisConfig{ReadTimeout: -1}), "timeouts"},
		{"user without password", withConfig(hammerredis.RedisConfig{Username: "app"}), "without a Password"},
		{"ExpiryMs 0", hammerredis.Options{}, "ExpiryMs"},
		{"ExpiryMs MinInt64", hammerredis.Options{ExpiryMs: math.MinInt64}, "ExpiryMs"},
		{"PoolSize -1", hammerredis.Options{ExpiryMs: 1, PoolSize: -1}, "PoolSize"},
		{"PoolSize 257", hammerredis.Options{ExpiryMs: 1, PoolSize: 257}, "PoolSize"},
		{"QueueSize -1", hammerredis.Options{ExpiryMs: 1, QueueSize: -1}, "QueueSize"},
		{"MaxPipeline -1", hammerredis.Options{ExpiryMs: 1, MaxPipeline: -1}, "MaxPipeline"},
		{"MinBackoff -1", hammerredis.Options{ExpiryMs: 1, MinBackoff: -1}, "MinBackoff"},
		{"DeleteBucketsTimeout -1", hammerredis.Options{ExpiryMs: 1, DeleteBucketsTimeout: -1}, "DeleteBucketsTimeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := hammerredis.Start(tt.opts)
			if b != nil {
				hammerredis.Stop(b)
			}
			switch {
			case !errors.Is(err, hammerredis.ErrInvalid) || b != nil:
				t.Errorf("Start(%v) = %v, %v; want nil, ErrInvalid", tt.opts, b, err)
			case !strings.Contains(err.Error(), tt.want):
				t.Errorf("Start(%v) error = %q, want it to say %q", tt.opts, err, tt.want)
			case strings.Contains(err.Error(), pw):
				t.Errorf("Start(%v) error = %q shows the password", tt.opts, err)
			}
		})
	}
}

// TestOptionBounds: each numeric option past its bound fails at New with
// ErrInvalid and a message naming the option and its allowed range, rather
// than exhausting memory (QueueSize 1<<40) or breaking every call
// (ExpiryMs near MaxInt64: Redis refuses the TTL while the hit is counted).
// The bounds themselves are accepted, and a backend at the longest expiry
// counts hits and sets their TTL.
func TestOptionBounds(t *testing.T) {
	opts := func(set func(*hammerredis.Options)) hammerredis.Options {
		o := hammerredis.Options{ExpiryMs: 60_000, RedisURL: shared.URL(), Logger: logtest.New().Logger()}
		set(&o)
		return o
	}
	for _, tt := range []struct {
		name string
		opts hammerredis.Options
		want string // the message names the option and its range; "" for accepted
	}{
		{"ExpiryMs MaxExpiryMs", opts(func(o *hammerredis.Options) { o.ExpiryMs = hammerredis.MaxExpiryMs }), ""},
		{"ExpiryMs MaxExpiryMs+1", opts(func(o *hammerredis.Options) { o.ExpiryMs = hammerredis.MaxExpiryMs + 1 }),
			fmt.Sprintf("ExpiryMs %d is not in 1-%d (100 years)", hammerredis.MaxExpiryMs+1, hammerredis.MaxExpiryMs)},
		{"ExpiryMs MaxInt64", opts(func(o *hammerredis.Options) { o.ExpiryMs = math.MaxInt64 }),
			fmt.Sprintf("ExpiryMs %d is not in 1-%d", int64(math.MaxInt64), hammerredis.MaxExpiryMs)},
		{"QueueSize MaxQueueSize", opts(func(o *hammerredis.Options) { o.QueueSize = hammerredis.MaxQueueSize }), ""},
		{"QueueSize MaxQueueSize+1", opts(func(o *hammerredis.Options) { o.QueueSize = hammerredis.MaxQueueSize + 1 }),
			"QueueSize 65537 is not in 1-65536 (0 means the default 1024)"},
		{"QueueSize 1<<40", opts(func(o *hammerredis.Options) { o.QueueSize = 1 << 40 }),
			"QueueSize 1099511627776 is not in 1-65536"},
		{"QueueSize -1", opts(func(o *hammerredis.Options) { o.QueueSize = -1 }), "QueueSize -1 is not in 1-65536"},
		{"QueueSize 1<<40 with a pool", opts(func(o *hammerredis.Options) { o.QueueSize, o.PoolSize = 1<<40, 4 }),
			"QueueSize 1099511627776 is not in 1-65536"},
		{"QueueSize 1<<40 on a cluster", opts(func(o *hammerredis.Options) {
			o.QueueSize, o.Cluster = 1<<40, &hammerredis.ClusterConfig{Addrs: []string{"127.0.0.1:1"}}
		}), "QueueSize 1099511627776 is not in 1-65536"},
		{"MaxPipeline MaxPipelineLimit", opts(func(o *hammerredis.Options) { o.MaxPipeline = hammerredis.MaxPipelineLimit }), ""},
		{"MaxPipeline MaxPipelineLimit+1", opts(func(o *hammerredis.Options) { o.MaxPipeline = hammerredis.MaxPipelineLimit + 1 }),
			"MaxPipeline 16385 is not in 1-16384 (0 means the default 256)"},
		{"MaxPipeline MaxInt", opts(func(o *hammerredis.Options) { o.MaxPipeline = math.MaxInt }),
			fmt.Sprintf("MaxPipeline %d is not in 1-16384", math.MaxInt)},
		{"MaxPipeline -1", opts(func(o *hammerredis.Options) { o.MaxPipeline = -1 }), "MaxPipeline -1 is not in 1-16384"},
		{"KeyPrefix MaxKeyPrefixBytes", opts(func(o *hammerredis.Options) {
			o.KeyPrefix = strings.Repeat("p", hammerredis.MaxKeyPrefixBytes)
		}), ""},
		{"KeyPrefix MaxKeyPrefixBytes+1", opts(func(o *hammerredis.Options) {
			o.KeyPrefix = strings.Repeat("p", hammerredis.MaxKeyPrefixBytes+1)
		}), "KeyPrefix is 1048577 bytes long, the limit is 1048576"},
		{"ClientName with a space", opts(func(o *hammerredis.Options) {
			o.RedixConfig = &hammerredis.RedisConfig{ClientName: "my app"}
		}), `ClientName "my app" may hold only printable ASCII characters other than space`},
		{"ClientName with a newline", opts(func(o *hammerredis.Options) {
			o.RedixConfig = &hammerredis.RedisConfig{ClientName: "app\n"}
		}), `ClientName "app\n" may hold only`},
		{"ClientName of every allowed character", opts(func(o *hammerredis.Options) {
			var b strings.Builder
			for c := '!'; c <= '~'; c++ {
				b.WriteRune(c)
			}
			o.RedixConfig = &hammerredis.RedisConfig{ClientName: b.String()}
		}), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := hammerredis.New(tt.opts)
			if tt.want == "" {
				require.NoError(t, err, "New(%.200v)", tt.opts)
				require.NotNil(t, b)
				return
			}
			if !errors.Is(err, hammerredis.ErrInvalid) || b != nil {
				t.Fatalf("New(%.200v) = %v, %v; want nil, ErrInvalid", tt.opts, b, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New(%.200v) error = %q, want it to say %q", tt.opts, err, tt.want)
			}
		})
	}

	// The bounds work, not only pass New: the longest expiry counts and
	// sets its TTL, the deepest queue and pipeline and a full-length
	// client name serve.
	var name strings.Builder
	for c := '!'; c <= '~'; c++ {
		name.WriteRune(c)
	}
	f := start(t, nil, hammerredis.Options{ExpiryMs: hammerredis.MaxExpiryMs, QueueSize: hammerredis.MaxQueueSize,
		MaxPipeline: hammerredis.MaxPipelineLimit, RedixConfig: &hammerredis.RedisConfig{ClientName: name.String()}})
	key := hammerredis.BucketKey{Bucket: 1, ID: "longest"}
	for want := int64(1); want <= 2; want++ {
		n, err := f.b.CountHit(context.Background(), key, 1)
		require.NoError(t, err, "a hit at ExpiryMs MaxExpiryMs")
		require.Equal(t, want, n)
	}
	require.Equal(t, protocol.ExpirySeconds(hammerredis.MaxExpiryMs), badTTL(t, f.admin, protocol.Key(f.prefix, key)))
}

// badDialsWithin is the most dial attempts a backend can start within d:
// the first at once, then, after n failures, a wait of MinBackoff doubled
// n-1 times, capped at MaxBackoff, less at most a fifth of it as jitter
// (server.backoff). With 50ms and 1s the shortest waits are 40, 80, 160,
// 320, 640, 800, 800... ms, so attempts start at the earliest at 0, 40,
// 120, 280, 600, 1240, 2040... ms: at most 6 within 2 s.
func badDialsWithin(d, minBackoff, maxBackoff time.Duration) int {
	attempts, at, wait := 1, time.Duration(0), minBackoff
	for {
		at += wait - wait/5
		if at > d {
			return attempts
		}
		attempts++
		wait = min(2*wait, maxBackoff)
	}
}

var badConnsRe = regexp.MustCompile(`total_connections_received:(\d+)`)

// badConnections returns how many connections the server has accepted.
func badConnections(t *testing.T, admin redis.Conn) int {
	t.Helper()
	info, err := redis.String(admin.Do("INFO", "stats"))
	require.NoError(t, err)
	m := badConnsRe.FindStringSubmatch(info)
	require.NotNil(t, m, "INFO stats without total_connections_received")
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}

// TestWrongPasswordBacksOff: with a wrong password, calls fail at once with
// ErrClosed saying WRONGPASS; the backend keeps retrying, backing off (no
// busy loop: the dial attempts that the log and the server count stay
// within the backoff schedule's bound); and the password shows nowhere.
func TestWrongPasswordBacksOff(t *testing.T) {
	const secret, wrong = "right-Zq9-secret", "wrong-Kk7-secret"
	const minBackoff, maxBackoff = 50 * time.Millisecond, time.Second
	const window = 2 * time.Second
	srv := redistest.New(t, redistest.Options{Args: []string{"--requirepass", secret}})
	admin := srv.Conn(t, redis.DialPassword(secret))
	rec := logtest.New()
	opts := hammerredis.Options{ExpiryMs: 60_000, RedisURL: "redis://:" + wrong + "@" + srv.Addr(),
		KeyPrefix: testPrefix(t), Logger: rec.Logger(), CallTimeout: time.Hour,
		MinBackoff: minBackoff, MaxBackoff: maxBackoff}

	conns0 := badConnections(t, admin)
	begin := time.Now()
	b, err := hammerredis.Start(opts)
	require.NoError(t, err, "a wrong password is not an error at Start: Redis may be down")
	t.Cleanup(func() { hammerredis.Stop(b) })

	const dialFailed = "cannot connect to redis"
	rec.WaitCount(t, dialFailed, 1, waitLong)
	callBegin := time.Now()
	_, err = b.CountHit(context.Background(), hammerredis.BucketKey{Bucket: 1, ID: "pw"}, 1)
	if took := time.Since(callBegin); took > time.Second {
		t.Errorf("CountHit with a wrong password took %v, want it to fail at once", took)
	}
	if !errors.Is(err, hammerredis.ErrClosed) || !strings.Contains(fmt.Sprint(err), "WRONGPASS") {
		t.Errorf("CountHit with a wrong password = %v, want ErrClosed saying WRONGPASS", err)
	}

	rec.WaitCount(t, dialFailed, 3, waitLong) // it retries,
	time.Sleep(time.Until(begin.Add(window))) // but how often? Watch for a while.
	logged := rec.Count(dialFailed)
	dialed := badConnections(t, admin) - conns0
	elapsed := time.Since(begin)
	bound := badDialsWithin(elapsed, minBackoff, maxBackoff)
	t.Logf("in %v: %d dial failures logged, %d connections accepted; the backoff allows at most %d",
		elapsed.Round(time.Millisecond), logged, dialed, bound)
	if logged > bound || dialed > bound {
		t.Errorf("in %v with MinBackoff %v, MaxBackoff %v: %d dial failures logged, %d connections accepted; want at most %d each",
			elapsed, minBackoff, maxBackoff, logged, dialed, bound)
	}
	if st := b.Stats(); st.Connected || st.Connects != 0 || st.DialFailures < uint64(logged) {
		t.Errorf("Stats() = connected %v, %d connects, %d dial failures; want false, 0, >= %d",
			st.Connected, st.Connects, st.DialFailures, logged)
	}
	for _, s := range []string{err.Error(), rec.String(), b.String(), fmt.Sprint(opts), fmt.Sprintf("%#v", opts)} {
		if strings.Contains(s, wrong) || strings.Contains(s, secret) {
			t.Errorf("a password shows in %q", s)
		}
	}
}

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
				do(t, f.admin, "HSET", f.key("k", 1), "count", tt.stored, "created", 1, "updated", 1)

				// Hold the connection with a hit in flight, so the next
				// two queue up and go out together.
				do(t, f.admin, "CLIENT", "PAUSE", 20000, "WRITE")
				held := make(chan error, 1)
				go func() {
					_, err := f.b.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "held"}, 1)
					held <- err
				}()
				waitClient(t, f.admin, "coalesce", func(l string) bool { return strings.Contains(l, " flags=b ") })
				type result struct {
					n   int64
					err error
				}
				results := [2]chan result{make(chan result, 1), make(chan result, 1)}
				for i, inc := range []int64{tt.first, tt.second} {
					go func() {
						n, err := f.b.CountHitN(ctx, key, int64(2+i), inc)
						results[i] <- result{n, err}
					}()
					for deadline := time.Now().Add(waitLong); f.b.Stats().QueueDepth < i+1; time.Sleep(time.Millisecond) {
						require.True(t, time.Now().Before(deadline), "hit %d never queued", i+1)
					}
				}
				do(t, f.admin, "CLIENT", "UNPAUSE")
				require.NoError(t, <-held)
				first, second := <-results[0], <-results[1]

				if !errors.Is(first.err, hammerredis.ErrRedis) {
					t.Errorf("count %d: CountHitN(%d) = %d, %v; want ErrRedis (overflow), as when sent alone",
						tt.stored, tt.first, first.n, first.err)
				}
				if second.err != nil {
					t.Errorf("count %d, then CountHitN(%d): CountHitN(%d) = %d, %v; want no error",
						tt.stored, tt.first, tt.second, second.n, second.err)
				}
				want := badFields(tt.stored+tt.second, 1, 3)
				if h := badHash(t, f.admin, f.key("k", 1)); strings.Join(h, " ") != strings.Join(want, " ") {
					t.Errorf("count %d, then CountHitN(%d), CountHitN(%d): HGETALL = %q, want %q",
						tt.stored, tt.first, tt.second, h, want)
				}
			})
		}
	}
}

// FuzzOptions checks that no options, however odd, make New panic; that
// every failure is ErrInvalid, and the documented limits fail; and that a
// password never shows in an error, in the backend's name or in the
// options' String, %+v or %#v: set in the config (where 0), in the URL
// percent-encoded (1), or in the URL as typed (2), reserved bytes and all.
func FuzzOptions(f *testing.F) {
	f.Add("redis", "app", "s3cret", "127.0.0.1:6379", "/0", "", 0, 0, int64(60_000), 0, uint8(1))
	f.Add("rediss", "", "p@ss/w#rd?:", "[::1]:6380", "/15", "cache", 6390, 2, int64(1), 4, uint8(2))
	f.Add("redis", "u", "pw", "h:99999", "/x", "", -1, -1, int64(0), -1, uint8(0))
	f.Add("http", "u", "pw", "h", "?q=1", "a b", 70000, 0, int64(-5), 300, uint8(1))
	f.Add("", "", "", "", "", "a/b", 0, 0, int64(1), 0, uint8(0))
	f.Add("redis", "u", "%zz", "h:1", "#frag", "", 0, 0, int64(1), 1, uint8(2))
	f.Fuzz(func(t *testing.T, scheme, user, pw, hostport, path, host string, port, db int, expiryMs int64, poolSize int, where uint8) {
		// Markers around the password show any piece of it that leaks.
		const head, tail = "Pw9", "9wP"
		secret := head + pw + tail
		for _, s := range []string{scheme, user, hostport, path, host} {
			if strings.Contains(s, head) || strings.Contains(s, tail) {
				return
			}
		}
		opts := hammerredis.Options{ExpiryMs: expiryMs, PoolSize: poolSize,
			RedixConfig: &hammerredis.RedisConfig{Host: host, Port: port, Database: db}}
		switch where % 3 {
		case 0:
			opts.RedixConfig.Password = secret
			if scheme != "" || hostport != "" || path != "" {
				opts.RedisURL = scheme + "://" + hostport + path
			}
		case 1:
			opts.RedisURL = scheme + "://" + url.UserPassword(user, secret).String() + "@" + hostport + path
		case 2:
			opts.RedisURL = scheme + "://" + user + ":" + secret + "@" + hostport + path
		}
		b, err := hammerredis.New(opts)
		if (err == nil) != (b != nil) {
			t.Fatalf("New(%v) = %v, %v: want a backend or an error", opts, b, err)
		}
		shown := []string{fmt.Sprint(opts), fmt.Sprintf("%+v", opts), fmt.Sprintf("%#v", opts)}
		if err != nil {
			if !errors.Is(err, hammerredis.ErrInvalid) {
				t.Fatalf("New(%v) error %v is not ErrInvalid", opts, err)
			}
			shown = append(shown, err.Error())
		} else {
			shown = append(shown, b.String())
			defer hammerredis.Stop(b)
			switch {
			case expiryMs <= 0, poolSize < 0, poolSize > hammerredis.MaxPoolSize, port < 0, port > 65535, db < 0:
				t.Fatalf("New(%v) = nil error; want ErrInvalid", opts)
			}
		}
		for _, s := range shown {
			if strings.Contains(s, head) || strings.Contains(s, tail) {
				t.Fatalf("the password %q shows in %q", secret, s)
			}
		}
	})
}
