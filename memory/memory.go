package memory

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hammer-go/hammerredis/protocol"
)

// DefaultCleanupInterval is how often expired buckets are swept when
// Options.CleanupInterval is zero; Hammer's ETS cleanup_interval_ms default.
const DefaultCleanupInterval = time.Minute

// numShards is the number of independently locked parts of a Backend; a power
// of two, so that a hash picks one with a mask.
const numShards = 32

// Options configure a Backend. The zero value of every field but ExpiryMs
// means its documented default.
type Options struct {
	// ExpiryMs sets how long a bucket lives after its latest hit, as for
	// the Redis backend: round(ExpiryMs/1000 + 1) seconds of wall-clock
	// time (protocol.ExpirySeconds), the TTL Redis sets on every hit.
	// Required, 1 to protocol.MaxExpiryMs (100 years); set it to at least
	// the longest scale you check with.
	ExpiryMs int64

	// CleanupInterval is how often expired buckets are swept from memory;
	// default one minute (DefaultCleanupInterval). Negative disables the
	// sweeper: expired buckets then still stop counting, but their memory is
	// reclaimed only when the same bucket is hit again or its id deleted, so
	// memory grows with every new window. Disable it only for a short-lived
	// backend, such as one in a unit test.
	CleanupInterval time.Duration

	// Clock is the clock the backend reads: expiries, and the time of
	// Hammer 7's sliding windows and buckets (what Redis TIME is to the
	// Redis backend); default time.Now. Set it to step time in tests and
	// simulations.
	Clock func() time.Time
}

// Backend is an in-memory rate-limit backend: buckets in sharded maps of this
// process. It is safe for concurrent use. Create it with New and stop it with
// Close.
type Backend struct {
	t     *table
	sweep *sweeper // nil when the sweeper is disabled

	cleanup runtime.Cleanup // stops the sweeper of a Backend dropped unclosed
	closed  atomic.Bool
}

// table holds the buckets. The sweeper goroutine refers to it, never to the
// Backend, so that a Backend its owner forgot to Close can still be garbage
// collected (and its sweeper stopped by a cleanup).
type table struct {
	// now is the wall clock; a seam for tests, set before any goroutine
	// starts and never changed after.
	now func() time.Time
	// ttl is how long a bucket lives after its latest hit, in ns:
	// protocol.ExpirySeconds(ExpiryMs) seconds.
	ttl    int64
	seed   maphash.Seed
	shards [numShards]shard
	// h7 holds Hammer 7's entries (hammer7.go), apart from the buckets.
	h7 store7
}

// shard is one independently locked part of the table. All buckets of one id
// are in the same shard, in one inner map, so that DeleteBuckets finds them
// with one lookup.
type shard struct {
	mu  sync.Mutex
	ids map[string]map[int64]*entry // id -> bucket number -> entry
	// peak is the most ids held since ids was made. Go maps never shrink,
	// so the sweeper copies ids into a new map once most of them are gone.
	peak int
	// Pads a shard to 64 bytes: the next shard's mutex is on another cache
	// line.
	_ [40]byte
}

// shrinkMin is the least peak of a shard's ids map for the sweeper to
// shrink it; smaller maps are not worth a copy.
const shrinkMin = 1024

// entry is one bucket.
type entry struct {
	count   int64
	created int64 // caller's now of the first hit, ms
	updated int64 // caller's now of the latest hit, ms
	touched int64 // wall clock of the latest hit, ns since the Unix epoch
}

// sweeper is the goroutine that reclaims expired buckets.
type sweeper struct {
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// New validates opts and returns a running backend. Errors wrap
// protocol.ErrInvalid (hammerredis.ErrInvalid) and name the field.
func New(opts Options) (*Backend, error) {
	now := opts.Clock
	if now == nil {
		now = time.Now
	}
	return newBackend(opts, now)
}

// newBackend is New with a clock, for tests.
func newBackend(opts Options, now func() time.Time) (*Backend, error) {
	if opts.ExpiryMs == 0 {
		return nil, fmt.Errorf("%w: missing required option memory.Options.ExpiryMs (Elixir: expiry_ms)", protocol.ErrInvalid)
	}
	if opts.ExpiryMs < 0 || opts.ExpiryMs > protocol.MaxExpiryMs {
		return nil, fmt.Errorf("%w: memory.Options.ExpiryMs %d is not in 1-%d (100 years)",
			protocol.ErrInvalid, opts.ExpiryMs, protocol.MaxExpiryMs)
	}
	interval := opts.CleanupInterval
	if interval == 0 {
		interval = DefaultCleanupInterval
	}

	// At most about 3.2e9 s (100 years), 3.2e18 ns: no overflow.
	ttl := protocol.ExpirySeconds(opts.ExpiryMs) * int64(time.Second)
	t := &table{now: now, ttl: ttl, seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].ids = make(map[string]map[int64]*entry)
	}

	b := &Backend{t: t}
	if interval > 0 {
		sw := &sweeper{stop: make(chan struct{}), done: make(chan struct{})}
		b.sweep = sw
		go sw.run(t, interval)
		// A Backend dropped without Close must not keep its goroutine, nor
		// through it the table, alive forever.
		b.cleanup = runtime.AddCleanup(b, (*sweeper).halt, sw)
	}
	return b, nil
}

// CountHit counts one hit in the bucket key at now (ms since the Unix epoch)
// and returns the bucket's new count. Elixir: count_hit(key, now).
func (b *Backend) CountHit(ctx context.Context, key protocol.BucketKey, now int64) (int64, error) {
	return b.countHit(ctx, key, now, 1)
}

// CountHitN adds increment to the bucket key at now and returns the new
// count; the first hit of a bucket, or the first after it expired, returns
// increment. Any increment is taken as given, zero and negative ones too. An
// increment that would overflow the count fails as in Redis (HINCRBY's
// error): an error wrapping protocol.ErrRedis that says "increment or
// decrement would overflow", and the bucket, its expiry included, is left
// unchanged. Elixir: count_hit(key, now, increment).
func (b *Backend) CountHitN(ctx context.Context, key protocol.BucketKey, now, increment int64) (int64, error) {
	return b.countHit(ctx, key, now, increment)
}

func (b *Backend) countHit(ctx context.Context, key protocol.BucketKey, now, increment int64) (int64, error) {
	const op = "count_hit"
	if err := b.check(ctx, op, key.ID); err != nil {
		return 0, err
	}
	clock := b.t.now().UnixNano()
	s := b.t.shard(key.ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := b.t.counted(s.ids[key.ID][key.Bucket], now, increment, clock, op)
	if err != nil {
		return 0, err
	}
	s.store(key, e)
	return e.count, nil
}

// counted returns what bucket e (nil: none) becomes when increment is
// added at now (the caller's ms) and clock (the wall clock, ns): e's next
// count, or a fresh bucket when e is missing or has expired. An overflow
// is HINCRBY's error, as Redis answers it; the script stops there, so
// neither the bucket nor its expiry changes. It changes nothing itself.
func (t *table) counted(e *entry, now, increment, clock int64, op string) (entry, error) {
	if e == nil || t.expired(e, clock) {
		return entry{count: increment, created: now, updated: now, touched: clock}, nil
	}
	count, ok := add(e.count, increment)
	if !ok {
		return entry{}, fmt.Errorf("%w (%s): increment or decrement would overflow", protocol.ErrRedis, op)
	}
	return entry{count: count, created: e.created, updated: now, touched: clock}, nil
}

// store sets bucket key to e, in place when it exists (expired or not).
// Call it with s locked.
func (s *shard) store(key protocol.BucketKey, e entry) {
	buckets := s.ids[key.ID]
	if old := buckets[key.Bucket]; old != nil {
		*old = e
		return
	}
	if buckets == nil {
		buckets = make(map[int64]*entry, 1)
		// A copy, so that an id sliced from a larger string does not keep
		// all of it alive.
		s.ids[strings.Clone(key.ID)] = buckets
		s.peak = max(s.peak, len(s.ids))
	}
	fresh := new(entry) // here only: an in-place store allocates nothing
	*fresh = e
	buckets[key.Bucket] = fresh
}

// GetBucket reads the bucket key without changing it, nor its expiry. It
// returns nil and no error when there is no such bucket, or it has expired
// (Elixir {:ok, nil}). Elixir: get_bucket(key).
func (b *Backend) GetBucket(ctx context.Context, key protocol.BucketKey) (*protocol.BucketInfo, error) {
	if err := b.check(ctx, "get_bucket", key.ID); err != nil {
		return nil, err
	}
	clock := b.t.now().UnixNano()
	s := b.t.shard(key.ID)
	s.mu.Lock()
	e := s.ids[key.ID][key.Bucket]
	if e == nil || b.t.expired(e, clock) {
		s.mu.Unlock()
		return nil, nil
	}
	info := &protocol.BucketInfo{Key: key, Count: e.count, Created: e.created, Updated: e.updated}
	s.mu.Unlock()
	return info, nil
}

// DeleteBuckets deletes every bucket of id, and only those, and returns how
// many unexpired buckets it deleted (expired ones go too, uncounted).
// Elixir: delete_buckets(id).
func (b *Backend) DeleteBuckets(ctx context.Context, id string) (int64, error) {
	if err := b.check(ctx, "delete_buckets", id); err != nil {
		return 0, err
	}
	clock := b.t.now().UnixNano()
	s := b.t.shard(id)
	s.mu.Lock()
	buckets := s.ids[id]
	delete(s.ids, id)
	s.mu.Unlock()

	// The inner map is no longer reachable from the table: count it unlocked.
	var n int64
	for _, e := range buckets {
		if !b.t.expired(e, clock) {
			n++
		}
	}
	return n, nil
}

// Len returns the number of unexpired buckets. It locks one shard at a time
// and takes time proportional to the number of buckets held, so it is meant
// for tests and occasional metrics, not for every request. It works after
// Close too.
func (b *Backend) Len() int {
	clock := b.t.now().UnixNano()
	n := 0
	for i := range b.t.shards {
		s := &b.t.shards[i]
		s.mu.Lock()
		for _, buckets := range s.ids {
			for _, e := range buckets {
				if !b.t.expired(e, clock) {
					n++
				}
			}
		}
		s.mu.Unlock()
	}
	return n
}

// Close stops the sweeper goroutine and waits for it to exit. Calls made
// after Close return protocol.ErrStopped (hammerredis.ErrStopped). Close is
// idempotent and safe to call concurrently; it always returns nil.
func (b *Backend) Close() error {
	b.closed.Store(true)
	if b.sweep != nil {
		b.cleanup.Stop()
		b.sweep.halt()
		<-b.sweep.done
	}
	return nil
}

// check does what every call does first: the context, the id, then whether
// the backend is closed. Its errors match those of the Redis backend.
func (b *Backend) check(ctx context.Context, op, id string) error {
	if err := ctx.Err(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w (%s): %w", protocol.ErrTimeout, op, err)
		}
		return fmt.Errorf("hammerredis/memory (%s): %w", op, err)
	}
	if len(id) > protocol.MaxIDBytes {
		return fmt.Errorf("%w (%s): id is %d bytes long, the limit is %d", protocol.ErrInvalid, op, len(id), protocol.MaxIDBytes)
	}
	if b.closed.Load() {
		return protocol.ErrStopped
	}
	return nil
}

// shard returns the shard of id.
func (t *table) shard(id string) *shard { return &t.shards[t.shardIndex(id)] }

// shardIndex returns the index of id's shard in t.shards.
func (t *table) shardIndex(id string) uint64 { return maphash.String(t.seed, id) & (numShards - 1) }

// expired reports whether more than the TTL has passed between e's latest
// hit and clock (ns), as Redis expires a key once its clock is past the
// key's expiry time. A clock that went backwards keeps buckets alive.
func (t *table) expired(e *entry, clock int64) bool {
	// With clock > touched the difference fits in a uint64, whatever the values.
	return clock > e.touched && uint64(clock)-uint64(e.touched) > uint64(t.ttl)
}

// sweepOnce drops the expired buckets, and the ids left without buckets, one
// shard at a time, and shrinks the shards that emptied most; then the same
// for Hammer 7's entries.
func (t *table) sweepOnce() {
	for i := range t.shards {
		clock := t.now().UnixNano()
		s := &t.shards[i]
		s.mu.Lock()
		for id, buckets := range s.ids {
			for bucket, e := range buckets {
				if t.expired(e, clock) {
					delete(buckets, bucket)
				}
			}
			if len(buckets) == 0 {
				delete(s.ids, id)
			}
		}
		if s.peak >= shrinkMin && len(s.ids) <= s.peak/4 {
			ids := make(map[string]map[int64]*entry, len(s.ids))
			for id, buckets := range s.ids {
				ids[id] = buckets
			}
			s.ids, s.peak = ids, len(ids)
		}
		s.mu.Unlock()
	}
	t.sweep7()
}

// run sweeps t every interval until halted.
func (sw *sweeper) run(t *table, interval time.Duration) {
	defer close(sw.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			t.sweepOnce()
		case <-sw.stop:
			return
		}
	}
}

// halt tells the sweeper to stop, without waiting; idempotent.
func (sw *sweeper) halt() {
	sw.stopOnce.Do(func() { close(sw.stop) })
}

// add returns a+b and whether it did not overflow.
func add(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}
