package memory

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend is what a rate-check layer needs of a backend. Both the Redis
// backend and this one must satisfy it with the very same types.
type backend interface {
	CountHit(ctx context.Context, key hammerredis.BucketKey, now int64) (int64, error)
	CountHitN(ctx context.Context, key hammerredis.BucketKey, now, increment int64) (int64, error)
	GetBucket(ctx context.Context, key hammerredis.BucketKey) (*hammerredis.BucketInfo, error)
	DeleteBuckets(ctx context.Context, id string) (int64, error)
}

var (
	_ backend = (*Backend)(nil)
	_ backend = (*hammerredis.Backend)(nil)
)

const testExpiryMs = 1000

// testTTL is how long a bucket of testExpiryMs lives after its latest hit:
// the TTL Redis would set, round(1000/1000 + 1) = 2 s.
const testTTL = 2 * time.Second

// fakeClock is a wall clock that only moves when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.UnixMilli(1_700_000_000_000)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestBackend returns a backend on clk with the sweeper disabled, closed
// when the test ends.
func newTestBackend(t *testing.T, clk *fakeClock) *Backend {
	t.Helper()
	b, err := newBackend(Options{ExpiryMs: testExpiryMs, CleanupInterval: -1}, clk.Now)
	if err != nil {
		t.Fatalf("newBackend: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// stored returns the number of buckets held, expired or not, and the number
// of ids they belong to.
func (b *Backend) stored() (buckets, ids int) {
	for i := range b.t.shards {
		s := &b.t.shards[i]
		s.mu.Lock()
		ids += len(s.ids)
		for _, m := range s.ids {
			buckets += len(m)
		}
		s.mu.Unlock()
	}
	return buckets, ids
}

func key(bucket int64, id string) protocol.BucketKey {
	return protocol.BucketKey{Bucket: bucket, ID: id}
}

func info(k protocol.BucketKey, count, created, updated int64) *protocol.BucketInfo {
	return &protocol.BucketInfo{Key: k, Count: count, Created: created, Updated: updated}
}

// An action is one step of a table test.
type action interface {
	run(t *testing.T, b *Backend, clk *fakeClock)
}

// hit calls CountHitN(key, now, inc) and wants count.
type hit struct {
	key       protocol.BucketKey
	now, inc  int64
	wantCount int64
}

func (a hit) run(t *testing.T, b *Backend, _ *fakeClock) {
	t.Helper()
	got, err := b.CountHitN(context.Background(), a.key, a.now, a.inc)
	if err != nil || got != a.wantCount {
		t.Fatalf("CountHitN(%+v, %d, %d) = %d, %v, want %d, nil", a.key, a.now, a.inc, got, err, a.wantCount)
	}
}

// hit1 calls CountHit(key, now) and wants count.
type hit1 struct {
	key       protocol.BucketKey
	now       int64
	wantCount int64
}

func (a hit1) run(t *testing.T, b *Backend, _ *fakeClock) {
	t.Helper()
	got, err := b.CountHit(context.Background(), a.key, a.now)
	if err != nil || got != a.wantCount {
		t.Fatalf("CountHit(%+v, %d) = %d, %v, want %d, nil", a.key, a.now, got, err, a.wantCount)
	}
}

// hitFails calls CountHitN(key, now, inc) and wants an ErrRedis error
// holding msg, as the Redis backend returns for HINCRBY's overflow.
type hitFails struct {
	key      protocol.BucketKey
	now, inc int64
	msg      string
}

func (a hitFails) run(t *testing.T, b *Backend, _ *fakeClock) {
	t.Helper()
	got, err := b.CountHitN(context.Background(), a.key, a.now, a.inc)
	if !errors.Is(err, hammerredis.ErrRedis) || !strings.Contains(err.Error(), a.msg) || got != 0 {
		t.Fatalf("CountHitN(%+v, %d, %d) = %d, %v, want 0, an ErrRedis error saying %q", a.key, a.now, a.inc, got, err, a.msg)
	}
}

// get calls GetBucket(key) and wants want (nil: no bucket).
type get struct {
	key  protocol.BucketKey
	want *protocol.BucketInfo
}

func (a get) run(t *testing.T, b *Backend, _ *fakeClock) {
	t.Helper()
	got, err := b.GetBucket(context.Background(), a.key)
	if err != nil || (got == nil) != (a.want == nil) || (got != nil && *got != *a.want) {
		t.Fatalf("GetBucket(%+v) = %+v, %v, want %+v, nil", a.key, got, err, a.want)
	}
}

// del calls DeleteBuckets(id) and wants n.
type del struct {
	id    string
	wantN int64
}

func (a del) run(t *testing.T, b *Backend, _ *fakeClock) {
	t.Helper()
	got, err := b.DeleteBuckets(context.Background(), a.id)
	if err != nil || got != a.wantN {
		t.Fatalf("DeleteBuckets(%q) = %d, %v, want %d, nil", a.id, got, err, a.wantN)
	}
}

// length calls Len() and wants n.
type length int

func (a length) run(t *testing.T, b *Backend, _ *fakeClock) {
	t.Helper()
	if got := b.Len(); got != int(a) {
		t.Fatalf("Len() = %d, want %d", got, int(a))
	}
}

// wait moves the wall clock.
type wait time.Duration

func (a wait) run(_ *testing.T, _ *Backend, clk *fakeClock) { clk.Advance(time.Duration(a)) }

func runSteps(t *testing.T, steps []action) {
	t.Helper()
	clk := newFakeClock()
	b := newTestBackend(t, clk)
	for _, s := range steps {
		s.run(t, b, clk)
	}
}

func TestSemantics(t *testing.T) {
	k := key(28333333, "upload:42")
	tests := []struct {
		name  string
		steps []action
	}{
		{"first hit returns the increment", []action{
			hit{k, 1000, 5, 5},
			hit{k, 1001, 1, 6},
			hit1{k, 1002, 7},
			get{k, info(k, 7, 1000, 1002)},
		}},
		{"CountHit counts one", []action{
			hit1{k, 1000, 1},
			hit1{k, 1000, 2},
			get{k, info(k, 2, 1000, 1000)},
		}},
		{"zero and negative increments are taken as given", []action{
			hit{k, 1, 0, 0},
			get{k, info(k, 0, 1, 1)},
			hit{k, 2, -3, -3},
			hit{k, 3, 10, 7},
			get{k, info(k, 7, 1, 3)},
			hit{key(1, "neg"), 9, -4, -4},
			get{key(1, "neg"), info(key(1, "neg"), -4, 9, 9)},
		}},
		{"created never changes, updated is the latest now as given", []action{
			hit{k, 5000, 1, 1},
			hit{k, 7000, 1, 2},
			hit{k, 3000, 1, 3},
			get{k, info(k, 3, 5000, 3000)},
		}},
		{"buckets and ids count apart", []action{
			hit{key(1, "a"), 10, 1, 1},
			hit{key(2, "a"), 20, 2, 2},
			hit{key(1, "b"), 30, 3, 3},
			hit{key(1, "a"), 40, 1, 2},
			get{key(1, "a"), info(key(1, "a"), 2, 10, 40)},
			get{key(2, "a"), info(key(2, "a"), 2, 20, 20)},
			get{key(1, "b"), info(key(1, "b"), 3, 30, 30)},
			length(3),
		}},
		{"any id and any bucket number", []action{
			hit{key(0, ""), 1, 1, 1},
			hit{key(-1, "x*"), 1, 2, 2},
			hit{key(math.MinInt64, "a:b"), 1, 3, 3},
			hit{key(math.MaxInt64, "\xff\x00{}* "), 1, 4, 4},
			get{key(0, ""), info(key(0, ""), 1, 1, 1)},
			get{key(-1, "x*"), info(key(-1, "x*"), 2, 1, 1)},
			get{key(math.MinInt64, "a:b"), info(key(math.MinInt64, "a:b"), 3, 1, 1)},
			get{key(math.MaxInt64, "\xff\x00{}* "), info(key(math.MaxInt64, "\xff\x00{}* "), 4, 1, 1)},
			get{key(1, "x"), nil},
			length(4),
		}},
		{"GetBucket of no bucket is nil and creates nothing", []action{
			get{k, nil},
			length(0),
			hit{k, 1, 5, 5},
		}},
		{"DeleteBuckets deletes exactly one id's buckets", []action{
			hit{key(1, "a"), 1, 1, 1},
			hit{key(2, "a"), 1, 1, 1},
			hit{key(1, "a:b"), 1, 1, 1},
			hit{key(1, "a:1"), 1, 1, 1},
			hit{key(1, "ab"), 1, 1, 1},
			hit{key(1, "*"), 1, 1, 1},
			hit{key(1, ""), 1, 1, 1},
			del{"a", 2},
			get{key(1, "a"), nil},
			get{key(2, "a"), nil},
			get{key(1, "a:b"), info(key(1, "a:b"), 1, 1, 1)},
			length(5),
			del{"a", 0},
			del{"*", 1},
			get{key(1, "ab"), info(key(1, "ab"), 1, 1, 1)},
			del{"", 1},
			del{"nobody", 0},
			length(3),
		}},
		{"a hit after DeleteBuckets starts afresh", []action{
			hit{k, 100, 4, 4},
			del{k.ID, 1},
			hit{k, 200, 1, 1},
			get{k, info(k, 1, 200, 200)},
		}},
		{"an overflowing increment fails and changes nothing", []action{
			hit{k, 1, math.MaxInt64, math.MaxInt64},
			hitFails{k, 2, 1, "increment or decrement would overflow"},
			hitFails{k, 2, math.MaxInt64, "increment or decrement would overflow"},
			get{k, info(k, math.MaxInt64, 1, 1)},
			hit{k, 3, 0, math.MaxInt64},
			hit{k, 4, -1, math.MaxInt64 - 1},
			hit{k, 5, 1, math.MaxInt64},
			get{k, info(k, math.MaxInt64, 1, 5)},
		}},
		{"an overflowing decrement fails and changes nothing", []action{
			hit{k, 1, math.MinInt64, math.MinInt64},
			hitFails{k, 2, -1, "increment or decrement would overflow"},
			hitFails{k, 2, math.MinInt64, "increment or decrement would overflow"},
			get{k, info(k, math.MinInt64, 1, 1)},
			hit{k, 3, math.MaxInt64, -1},
		}},
		{"a failed hit does not push the expiry back", []action{
			hit{k, 1, math.MaxInt64, math.MaxInt64},
			wait(testTTL / 2),
			hitFails{k, 2, 1, "increment or decrement would overflow"},
			wait(testTTL/2 + time.Millisecond),
			get{k, nil},
		}},
		{"a bucket lives round(ExpiryMs/1000 + 1) s after its latest hit, not a moment more", []action{
			hit{k, 1, 1, 1},
			wait(testTTL),
			get{k, info(k, 1, 1, 1)},
			length(1),
			wait(time.Millisecond),
			get{k, nil},
			length(0),
			del{k.ID, 0},
		}},
		{"every hit pushes the expiry back", []action{
			hit{k, 1, 1, 1},
			wait(1600 * time.Millisecond),
			hit{k, 2, 1, 2},
			wait(1600 * time.Millisecond),
			get{k, info(k, 2, 1, 2)},
			wait(401 * time.Millisecond),
			get{k, nil},
		}},
		{"GetBucket does not push the expiry back", []action{
			hit{k, 1, 1, 1},
			wait(1600 * time.Millisecond),
			get{k, info(k, 1, 1, 1)},
			wait(401 * time.Millisecond),
			get{k, nil},
		}},
		{"expiry follows the wall clock, not the caller's now", []action{
			hit{k, 1, 1, 1},
			hit{k, 1_000_000, 1, 2},
			wait(1000 * time.Millisecond),
			hit{k, -1_000_000, 1, 3},
			wait(1800 * time.Millisecond),
			get{k, info(k, 3, 1, -1_000_000)},
		}},
		{"a hit on an expired bucket starts afresh", []action{
			hit{k, 1000, 5, 5},
			wait(testTTL + time.Millisecond),
			hit{k, 9000, 2, 2},
			get{k, info(k, 2, 9000, 9000)},
		}},
		{"an expired bucket at the limit takes a fresh hit", []action{
			hit{k, 1, math.MaxInt64, math.MaxInt64},
			wait(testTTL + time.Millisecond),
			hit{k, 2, 1, 1},
		}},
		{"DeleteBuckets does not count expired buckets", []action{
			hit{key(1, "a"), 1, 1, 1},
			wait(1200 * time.Millisecond),
			hit{key(2, "a"), 2, 1, 1},
			wait(1000 * time.Millisecond),
			length(1),
			del{"a", 1},
			length(0),
		}},
		{"a clock that goes back keeps buckets", []action{
			hit{k, 1, 1, 1},
			wait(-time.Hour),
			get{k, info(k, 1, 1, 1)},
			wait(time.Hour + testTTL),
			get{k, info(k, 1, 1, 1)},
			wait(time.Millisecond),
			get{k, nil},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, tt.steps) })
	}
}

func TestNewValidates(t *testing.T) {
	for _, ms := range []int64{0, -1, math.MinInt64, protocol.MaxExpiryMs + 1, math.MaxInt64} {
		b, err := New(Options{ExpiryMs: ms})
		if b != nil || !errors.Is(err, hammerredis.ErrInvalid) || !strings.Contains(err.Error(), "ExpiryMs") {
			t.Errorf("New(Options{ExpiryMs: %d}) = %v, %v, want nil, an ErrInvalid error naming ExpiryMs", ms, b, err)
		}
	}
	for _, opts := range []Options{
		{ExpiryMs: 1},
		{ExpiryMs: protocol.MaxExpiryMs},
		{ExpiryMs: 60_000, CleanupInterval: -1},
		{ExpiryMs: 60_000, CleanupInterval: time.Nanosecond},
	} {
		b, err := New(opts)
		if err != nil {
			t.Errorf("New(%+v) = _, %v, want no error", opts, err)
			continue
		}
		if got, err := b.CountHit(context.Background(), key(1, "x"), 1); got != 1 || err != nil {
			t.Errorf("New(%+v): CountHit = %d, %v, want 1, nil", opts, got, err)
		}
		b.Close()
	}
}

// TestExpiryIsRedisTTL: a bucket lives exactly the TTL Redis would set on
// its latest hit, round(ExpiryMs/1000 + 1) seconds, up to the longest
// expiry, 100 years.
func TestExpiryIsRedisTTL(t *testing.T) {
	for _, tt := range []struct {
		expiryMs int64
		ttl      time.Duration
	}{
		{1, time.Second},
		{499, time.Second},
		{500, 2 * time.Second},
		{1499, 2 * time.Second},
		{1500, 3 * time.Second},
		{60_000, 61 * time.Second},
		{7_200_000, 7201 * time.Second},
		{protocol.MaxExpiryMs, time.Duration(protocol.MaxExpiryMs/1000+1) * time.Second},
	} {
		clk := newFakeClock()
		b, err := newBackend(Options{ExpiryMs: tt.expiryMs, CleanupInterval: -1}, clk.Now)
		if err != nil {
			t.Fatal(err)
		}
		k := key(1, "x")
		b.CountHit(context.Background(), k, 1)
		clk.Advance(tt.ttl)
		if got, err := b.GetBucket(context.Background(), k); got == nil || err != nil {
			t.Errorf("ExpiryMs %d: GetBucket %v after the hit = %v, %v, want the bucket", tt.expiryMs, tt.ttl, got, err)
		}
		clk.Advance(time.Millisecond)
		if got, err := b.GetBucket(context.Background(), k); got != nil || err != nil {
			t.Errorf("ExpiryMs %d: GetBucket %v after the hit = %v, %v, want nil", tt.expiryMs, tt.ttl+time.Millisecond, got, err)
		}
		b.Close()
	}
}

func TestIDLength(t *testing.T) {
	ctx := context.Background()
	b := newTestBackend(t, newFakeClock())
	long := strings.Repeat("x", protocol.MaxIDBytes+1)
	lk := key(1, long)

	if n, err := b.CountHit(ctx, lk, 1); n != 0 || !errors.Is(err, hammerredis.ErrInvalid) {
		t.Errorf("CountHit with a %d-byte id = %d, %v, want 0, ErrInvalid", len(long), n, err)
	}
	if n, err := b.CountHitN(ctx, lk, 1, 5); n != 0 || !errors.Is(err, hammerredis.ErrInvalid) {
		t.Errorf("CountHitN with a %d-byte id = %d, %v, want 0, ErrInvalid", len(long), n, err)
	}
	if got, err := b.GetBucket(ctx, lk); got != nil || !errors.Is(err, hammerredis.ErrInvalid) {
		t.Errorf("GetBucket with a %d-byte id = %v, %v, want nil, ErrInvalid", len(long), got, err)
	}
	if n, err := b.DeleteBuckets(ctx, long); n != 0 || !errors.Is(err, hammerredis.ErrInvalid) {
		t.Errorf("DeleteBuckets with a %d-byte id = %d, %v, want 0, ErrInvalid", len(long), n, err)
	}
	if n := b.Len(); n != 0 {
		t.Errorf("Len() = %d after rejected calls, want 0", n)
	}

	max := key(1, long[:protocol.MaxIDBytes])
	if n, err := b.CountHit(ctx, max, 1); n != 1 || err != nil {
		t.Errorf("CountHit with a %d-byte id = %d, %v, want 1, nil", len(max.ID), n, err)
	}
	if n, err := b.DeleteBuckets(ctx, max.ID); n != 1 || err != nil {
		t.Errorf("DeleteBuckets with a %d-byte id = %d, %v, want 1, nil", len(max.ID), n, err)
	}
}

// TestDoneContext checks that a call on a done context returns the context's
// error, as the Redis backend does, and does nothing.
func TestDoneContext(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()

	for _, tc := range []struct {
		name string
		ctx  context.Context
		want []error
	}{
		{"cancelled", cancelled, []error{context.Canceled}},
		{"deadline passed", expired, []error{context.DeadlineExceeded, hammerredis.ErrTimeout}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestBackend(t, newFakeClock())
			k := key(1, "x")
			b.CountHitN(context.Background(), k, 1, 10)

			check := func(call string, err error) {
				t.Helper()
				for _, want := range tc.want {
					if !errors.Is(err, want) {
						t.Errorf("%s = %v, want an error matching %v", call, err, want)
					}
				}
			}
			_, err := b.CountHit(tc.ctx, k, 2)
			check("CountHit", err)
			_, err = b.CountHitN(tc.ctx, key(2, "y"), 2, 5)
			check("CountHitN", err)
			got, err := b.GetBucket(tc.ctx, k)
			check("GetBucket", err)
			if got != nil {
				t.Errorf("GetBucket = %+v, want nil", got)
			}
			_, err = b.DeleteBuckets(tc.ctx, k.ID)
			check("DeleteBuckets", err)

			// Nothing changed.
			for _, s := range []action{get{k, info(k, 10, 1, 1)}, get{key(2, "y"), nil}, length(1)} {
				s.run(t, b, nil)
			}
		})
	}
}

func TestClose(t *testing.T) {
	ctx := context.Background()
	for _, interval := range []time.Duration{-1, 0, time.Millisecond} {
		t.Run(fmt.Sprint("CleanupInterval=", interval), func(t *testing.T) {
			b, err := New(Options{ExpiryMs: 60_000, CleanupInterval: interval})
			if err != nil {
				t.Fatal(err)
			}
			k := key(1, "x")
			b.CountHit(ctx, k, 1)

			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					if err := b.Close(); err != nil {
						t.Errorf("Close() = %v, want nil", err)
					}
				})
			}
			wg.Wait()
			if err := b.Close(); err != nil {
				t.Errorf("Close() again = %v, want nil", err)
			}
			if b.sweep != nil {
				select {
				case <-b.sweep.done:
				default:
					t.Error("the sweeper still runs after Close returned")
				}
			}

			if n, err := b.CountHit(ctx, k, 2); n != 0 || !errors.Is(err, hammerredis.ErrStopped) {
				t.Errorf("CountHit after Close = %d, %v, want 0, ErrStopped", n, err)
			}
			if n, err := b.CountHitN(ctx, k, 2, 3); n != 0 || !errors.Is(err, hammerredis.ErrStopped) {
				t.Errorf("CountHitN after Close = %d, %v, want 0, ErrStopped", n, err)
			}
			if got, err := b.GetBucket(ctx, k); got != nil || !errors.Is(err, hammerredis.ErrStopped) {
				t.Errorf("GetBucket after Close = %v, %v, want nil, ErrStopped", got, err)
			}
			if n, err := b.DeleteBuckets(ctx, k.ID); n != 0 || !errors.Is(err, hammerredis.ErrStopped) {
				t.Errorf("DeleteBuckets after Close = %d, %v, want 0, ErrStopped", n, err)
			}
		})
	}
}

// TestForgottenBackendStopsItsSweeper checks that a Backend dropped without
// Close does not leak its sweeper goroutine once it is garbage collected.
func TestForgottenBackendStopsItsSweeper(t *testing.T) {
	sw := func() *sweeper {
		b, err := New(Options{ExpiryMs: 1000, CleanupInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		b.CountHit(context.Background(), key(1, "x"), 1)
		return b.sweep
	}()
	deadline := time.After(10 * time.Second)
	for {
		runtime.GC()
		select {
		case <-sw.done:
			return
		case <-deadline:
			t.Fatal("the sweeper of an unreachable Backend still runs")
		case <-time.After(time.Millisecond):
		}
	}
}

// TestSweeper checks, on synctest's fake clock, that the sweeper runs every
// CleanupInterval (one minute by default), drops expired buckets and empty
// ids, and changes nothing a call can see.
func TestSweeper(t *testing.T) {
	ctx := context.Background()
	a1, a2, c := key(1, "a"), key(2, "a"), key(1, "c")
	wantStored := func(t *testing.T, b *Backend, when string, buckets, ids, live int) {
		t.Helper()
		synctest.Wait() // let a sweep due now finish
		gotB, gotI := b.stored()
		if gotB != buckets || gotI != ids || b.Len() != live {
			t.Errorf("at %s: stored() = %d buckets of %d ids, Len() = %d, want %d, %d, %d",
				when, gotB, gotI, b.Len(), buckets, ids, live)
		}
	}

	for _, tc := range []struct {
		name     string
		interval time.Duration
		step     time.Duration // the sweeps' period
	}{
		{"default interval", 0, time.Minute},
		{"ten seconds", 10 * time.Second, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Buckets expire about 1.5 sweeps after their latest hit:
				// ExpiryMs is 1.5 steps, the TTL a second more (1.52 or
				// 1.6 steps).
				expiry := tc.step * 3 / 2
				b, err := New(Options{ExpiryMs: expiry.Milliseconds(), CleanupInterval: tc.interval})
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				start := time.Now()
				at := func(d time.Duration) {
					time.Sleep(time.Until(start.Add(d)))
				}
				half := tc.step / 2

				b.CountHit(ctx, a1, 1) // expires at 1.5 steps
				at(half + half/2)      // 0.75 steps
				b.CountHit(ctx, a2, 1) // expires at 2.25 steps
				b.CountHit(ctx, c, 1)
				at(tc.step + half/2) // 1.25: one sweep done, nothing expired
				wantStored(t, b, "1.25 steps", 3, 2, 3)
				at(tc.step + half + half/2) // 1.75: a1 expired, not swept
				wantStored(t, b, "1.75 steps", 3, 2, 2)
				if got, _ := b.GetBucket(ctx, a1); got != nil {
					t.Errorf("GetBucket(%+v) after expiry = %+v, want nil", a1, got)
				}
				at(2*tc.step + half/4) // 2.125: second sweep took a1
				wantStored(t, b, "2.125 steps", 2, 2, 2)
				at(3*tc.step + half/2) // 3.25: third sweep took the rest, and the ids
				wantStored(t, b, "3.25 steps", 0, 0, 0)
			})
		})
	}

	t.Run("disabled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, err := New(Options{ExpiryMs: 1000, CleanupInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if b.sweep != nil {
				t.Error("a sweeper was started with CleanupInterval < 0")
			}
			b.CountHit(ctx, a1, 1)
			time.Sleep(time.Hour)
			wantStored(t, b, "an hour", 1, 1, 0)
			if got, _ := b.CountHit(ctx, a1, 2); got != 1 {
				t.Errorf("CountHit on an expired bucket = %d, want 1", got)
			}
		})
	})
}

// TestConcurrentHits counts from many goroutines into one bucket: no hit is
// lost. Run with -race.
func TestConcurrentHits(t *testing.T) {
	const goroutines, hits = 16, 1000
	ctx := context.Background()
	b, err := New(Options{ExpiryMs: 60_000})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	k := key(1, "hot")
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range hits {
				if _, err := b.CountHit(ctx, k, time.Now().UnixMilli()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got, err := b.GetBucket(ctx, k)
	if err != nil || got == nil || got.Count != goroutines*hits {
		t.Fatalf("GetBucket(%+v) = %+v, %v, want count %d", k, got, err, goroutines*hits)
	}
}

// TestConcurrentMix runs every call at once, with a busy sweeper, over keys
// spread across the shards, and checks the counts of the ids nobody deletes.
// Run with -race.
func TestConcurrentMix(t *testing.T) {
	const workers, rounds, ids = 8, 500, 64
	ctx := context.Background()
	b, err := New(Options{ExpiryMs: 60_000, CleanupInterval: 50 * time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	var sum atomic.Int64 // of the increments into the kept ids
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				i := (w*rounds + r) % ids
				inc := int64(r%7 - 2)
				kept := key(int64(r%3), "kept:"+strconv.Itoa(i))
				if _, err := b.CountHitN(ctx, kept, int64(r), inc); err != nil {
					t.Error(err)
					return
				}
				sum.Add(inc)
				gone := key(1, "gone:"+strconv.Itoa(i))
				b.CountHit(ctx, gone, int64(r))
				b.GetBucket(ctx, kept)
				if r%10 == 0 {
					b.DeleteBuckets(ctx, gone.ID)
					b.Len()
				}
			}
		})
	}
	wg.Wait()

	var total int64
	for i := range ids {
		for bucket := range int64(3) {
			got, err := b.GetBucket(ctx, key(bucket, "kept:"+strconv.Itoa(i)))
			if err != nil {
				t.Fatal(err)
			}
			if got != nil {
				total += got.Count
			}
		}
	}
	if total != sum.Load() {
		t.Errorf("sum of the kept counts = %d, want %d", total, sum.Load())
	}
}

// BenchmarkCountHit measures CountHit serially (latency) and from
// GOMAXPROCS goroutines, on one hot key (one shard's lock) and on 1024 keys
// (spread over the shards).
func BenchmarkCountHit(b *testing.B) {
	ctx := context.Background()
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = "user:" + strconv.Itoa(i)
	}
	newBench := func(b *testing.B) *Backend {
		be, err := New(Options{ExpiryMs: 60_000})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { be.Close() })
		for _, id := range ids {
			be.CountHit(ctx, key(1, id), 1)
		}
		return be
	}

	b.Run("serial/one-key", func(b *testing.B) {
		be := newBench(b)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := be.CountHit(ctx, key(1, ids[0]), 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("serial/1024-keys", func(b *testing.B) {
		be := newBench(b)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := be.CountHit(ctx, key(1, ids[i%len(ids)]), 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel/one-key", func(b *testing.B) {
		be := newBench(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := be.CountHit(ctx, key(1, ids[0]), 1); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("parallel/1024-keys", func(b *testing.B) {
		be := newBench(b)
		b.ReportAllocs()
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := n.Add(1) * 97 // each goroutine starts elsewhere
			for pb.Next() {
				i++
				if _, err := be.CountHit(ctx, key(1, ids[i%int64(len(ids))]), 1); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// TestSweepShrinks checks that the sweeper replaces the map of a shard that
// held many ids and now holds few, since Go maps never shrink.
func TestSweepShrinks(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	b := newTestBackend(t, clk)
	const n = 4 * numShards * shrinkMin
	for i := range n {
		b.CountHit(ctx, key(1, strconv.Itoa(i)), 1)
	}
	clk.Advance(testTTL / 2)
	for i := range n / 8 {
		b.CountHit(ctx, key(1, strconv.Itoa(i)), 2) // keeps 1/8 of the ids
	}
	before := make(map[*shard]map[string]map[int64]*entry)
	for i := range b.t.shards {
		before[&b.t.shards[i]] = b.t.shards[i].ids
	}

	clk.Advance(testTTL/2 + time.Millisecond)
	b.t.sweepOnce()
	for s, old := range before {
		if len(s.ids) != s.peak || fmt.Sprintf("%p", s.ids) == fmt.Sprintf("%p", old) {
			t.Errorf("shard of %d ids (peak %d): the map was not replaced", len(s.ids), s.peak)
		}
	}
	if got, want := b.Len(), n/8; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	for i := range n / 8 {
		k := key(1, strconv.Itoa(i))
		if got, err := b.GetBucket(ctx, k); err != nil || got == nil || got.Count != 2 {
			t.Fatalf("GetBucket(%+v) after the shrink = %+v, %v, want count 2", k, got, err)
		}
	}
}
