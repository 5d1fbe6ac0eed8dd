package memory

import (
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/hammer-go/hammerredis/protocol"
)

// Hammer 7's four algorithms, with the results the Redis backend's scripts
// give: the rules are those at the top of protocol/hammer7.go. Each entry
// stands for one Redis key, named by protocol.Policy.Key, and holds what
// that key holds (a string counter, a sorted set or a hash), so that
// policies sharing a key share its state as they would on Redis, and a key
// of the wrong type fails as Redis's WRONGTYPE does. The entries live in a
// map of their own, apart from Hammer 6's buckets.

// store7 holds the Hammer 7 entries; its zero value is ready.
type store7 struct {
	shards [numShards]shard7
}

// shard7 is one independently locked part of store7. A call holds the lock
// of its key's shard from reading the clock to its last write: one key sees
// its calls one at a time and in clock order, as a Redis script sees them.
type shard7 struct {
	mu   sync.Mutex
	keys map[string]*entry7 // Redis key -> entry; made on first write
	peak int                // most keys held since keys was made, as shard.peak
	_    [40]byte           // pads a shard7 to 64 bytes, as shard
}

// kind7 is the Redis type of an entry.
type kind7 uint8

const (
	kindString kind7 = iota + 1 // fix_window: a counter
	kindZSet                    // sliding_window: members scored by second
	kindHash                    // leaky_bucket and token_bucket: level, last_update
)

// entry7 is one Redis key. A flat struct rather than one type per kind:
// one allocation per key, and a kind check is a byte compare.
type entry7 struct {
	kind kind7
	// expireMs is the key's expiry on the backend's clock, ms: the key is
	// gone once the clock is past it (Redis: now > when).
	expireMs int64
	// n is the counter (string) or the level (hash).
	n int64
	// last is a hash's last_update, whole seconds.
	last int64
	// runs are a sorted set's members, oldest second first, one run per
	// second: Redis keeps a member per unit, the counts are all that a
	// script reads of them.
	runs []run7
	// total is the number of members in runs.
	total int64
}

// run7 is count members scored sec.
type run7 struct {
	sec, count int64
}

// instant is the backend's clock read as a script reads Redis TIME: whole
// seconds s, and ms = s×1000 + µs/1000.
type instant struct {
	s, ms int64
}

// instant reads the clock. Call it with the key's shard locked.
func (t *table) instant() instant { return instantAt(t.now()) }

// instantAt is the instant of now.
func instantAt(now time.Time) instant {
	s := now.Unix() // floor, as nanoseconds are never negative
	return instant{s: s, ms: s*1000 + int64(now.Nanosecond())/1e6}
}

// errWrongType is Redis's reply to a command on a key of another type.
func errWrongType(op string) error {
	return fmt.Errorf("%w (%s): WRONGTYPE Operation against a key holding the wrong kind of value", protocol.ErrRedis, op)
}

// keyBuf is the size of the stack buffer a key is built in; longer keys
// go to the heap.
const keyBuf = 128

// Hit counts a hit of r.Cost units on r.ID under r.Policy and tells whether
// it is allowed, following Hammer 7's rules (protocol/hammer7.go): a denied
// hit has RetryAfterMs of at least 1, or protocol.Never when r.Cost exceeds
// the limit. fix_window reads r.Now; the other algorithms read the
// backend's clock, as the Redis backend reads Redis TIME. Being denied is
// not an error. Requests that fail Validate return its error (wrapping
// protocol.ErrInvalid); a key of another algorithm's type fails with an
// error wrapping protocol.ErrRedis, as Redis's WRONGTYPE. Elixir:
// hit(key, scale|rate, limit|capacity, cost).
func (b *Backend) Hit(ctx context.Context, r protocol.Hit) (protocol.HitReply, error) {
	if err := r.Validate(); err != nil {
		return protocol.HitReply{}, err
	}
	var buf [keyBuf]byte
	k, s, now, err := b.lock7(ctx, r.Op(), r.Policy, r.ID, r.Now, &buf)
	if err != nil {
		return protocol.HitReply{}, err
	}
	defer s.mu.Unlock()
	return s.hit(k, r.Policy, r.Cost, r.Now, now, r.Op())
}

// hit is the hit of cost on key k under the validated policy p, by p's
// algorithm; nowMs is the caller's clock (fix_window's window).
func (s *shard7) hit(k []byte, p protocol.Policy, cost, nowMs int64, now instant, op string) (protocol.HitReply, error) {
	switch p.Algorithm {
	case protocol.FixWindow:
		return s.fixHit(k, p, cost, nowMs, now, op)
	case protocol.SlidingWindow:
		return s.slidingHit(k, p, cost, now, op)
	case protocol.LeakyBucket:
		return s.leakyHit(k, p, cost, now, op)
	default: // protocol.TokenBucket: Validate let no other through
		return s.tokenHit(k, p, cost, now, op)
	}
}

// lock7 checks ctx and the backend for a validated call op, writes the key
// of id under p into buf and locks its shard, which the caller unlocks: the
// call then runs whole under the lock, from reading the clock to its last
// write.
func (b *Backend) lock7(ctx context.Context, op string, p protocol.Policy, id string, nowMs int64,
	buf *[keyBuf]byte) (k []byte, s *shard7, now instant, err error) {
	if err := b.check(ctx, op, id); err != nil {
		return nil, nil, instant{}, err
	}
	k = p.AppendKey(buf[:0], id, nowMs)
	s = b.t.h7.shard(b.t.seed, k)
	s.mu.Lock()
	return k, s, b.t.instant(), nil
}

// Inc adds r.N to a window's count without checking the limit and returns
// the new count (sliding_window: the members in the window after dropping
// the old ones). Windows only. Elixir: inc(key, scale, n), but a sliding
// window counts into its hit's key (protocol/hammer7.go).
func (b *Backend) Inc(ctx context.Context, r protocol.Inc) (int64, error) {
	if err := r.Validate(); err != nil {
		return 0, err
	}
	var buf [keyBuf]byte
	k, s, now, err := b.lock7(ctx, r.Op(), r.Policy, r.ID, r.Now, &buf)
	if err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if r.Policy.Algorithm == protocol.FixWindow {
		return s.fixIncr(k, r.Policy, r.N, r.Now, now, r.Op())
	}
	e, err := s.slidingTrim(k, r.Policy.WindowSeconds(), now, r.Op())
	if err != nil {
		return 0, err
	}
	return s.slidingAdd(k, e, r.Policy.WindowSeconds(), r.N, now), nil
}

// Set sets a window's count to r.Count and returns it; a key of another
// type is an error wrapping protocol.ErrRedis, as Redis's WRONGTYPE. A
// sliding window of count 0 is deleted; a fixed window keeps the count 0
// until its end. Windows only. Elixir: set(key, scale, count).
func (b *Backend) Set(ctx context.Context, r protocol.Set) (int64, error) {
	if err := r.Validate(); err != nil {
		return 0, err
	}
	var buf [keyBuf]byte
	k, s, now, err := b.lock7(ctx, r.Op(), r.Policy, r.ID, r.Now, &buf)
	if err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	// A key of another type is refused, as the script does before its SET
	// or DEL, which would replace any key.
	if e := s.live(k, now); e != nil && e.kind != kindOf(r.Policy.Algorithm) {
		return 0, errWrongType(r.Op())
	}
	if r.Policy.Algorithm == protocol.FixWindow {
		// SET drops the TTL; PEXPIREAT NX then sets the window's end.
		_, end := r.Policy.Window(r.Now)
		s.putExpiring(k, &entry7{kind: kindString, n: r.Count}, end, now)
		return r.Count, nil
	}
	// DEL, then Count new members, then EXPIRE w.
	s.del(k)
	s.slidingAdd(k, nil, r.Policy.WindowSeconds(), r.Count, now)
	return r.Count, nil
}

// Get returns a window's count, a leaky bucket's level or a token bucket's
// tokens, with the leak or refill up to now applied, and changes nothing.
// Without a key it returns 0, or the capacity for a token bucket (a bucket
// without a key is full). Elixir: get(key, scale), but see
// protocol/hammer7.go for how Hammer 7's own get differs.
func (b *Backend) Get(ctx context.Context, r protocol.Get) (int64, error) {
	if err := r.Validate(); err != nil {
		return 0, err
	}
	var buf [keyBuf]byte
	k, s, now, err := b.lock7(ctx, r.Op(), r.Policy, r.ID, r.Now, &buf)
	if err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	p, op := r.Policy, r.Op()
	e := s.live(k, now)
	switch {
	case e == nil && p.Algorithm == protocol.TokenBucket:
		return p.Limit, nil
	case e == nil:
		return 0, nil
	case e.kind != kindOf(p.Algorithm):
		return 0, errWrongType(op)
	}
	switch p.Algorithm {
	case protocol.FixWindow:
		return e.n, nil
	case protocol.SlidingWindow:
		return e.total - e.countUpTo(now.s-p.WindowSeconds()), nil
	case protocol.LeakyBucket:
		return leak(e.n, now.s-e.last, p.Rate), nil
	default:
		return refill(e.n, now.s-e.last, p.Rate, p.Limit), nil
	}
}

// kindOf returns the Redis type of a's keys.
func kindOf(a protocol.Algorithm) kind7 {
	switch a {
	case protocol.FixWindow:
		return kindString
	case protocol.SlidingWindow:
		return kindZSet
	}
	return kindHash
}

// fixHit is fix_window's hit: INCRBY, PEXPIREAT NX, then the decision. The
// denied hit stays counted, as in Hammer.
func (s *shard7) fixHit(k []byte, p protocol.Policy, cost, nowMs int64, now instant, op string) (protocol.HitReply, error) {
	count, err := s.fixIncr(k, p, cost, nowMs, now, op)
	if err != nil {
		return protocol.HitReply{}, err
	}
	if count <= p.Limit {
		return protocol.HitReply{Allowed: true, Count: count}, nil
	}
	if cost > p.Limit {
		return protocol.HitReply{Count: count, RetryAfterMs: protocol.Never}, nil
	}
	// At least 1: the window ends after nowMs. Should end overflow, the
	// difference wraps back to its true value, 1 to the scale.
	_, end := p.Window(nowMs)
	return protocol.HitReply{Count: count, RetryAfterMs: end - nowMs}, nil
}

// fixIncr adds n to the fixed window of nowMs and returns its count.
func (s *shard7) fixIncr(k []byte, p protocol.Policy, n, nowMs int64, now instant, op string) (int64, error) {
	e := s.live(k, now)
	if e == nil {
		_, end := p.Window(nowMs)
		s.putExpiring(k, &entry7{kind: kindString, n: n}, end, now)
		return n, nil
	}
	if e.kind != kindString {
		return 0, errWrongType(op)
	}
	count, ok := add(e.n, n)
	if !ok {
		// INCRBY's error; the script stops there, nothing changes.
		return 0, fmt.Errorf("%w (%s): increment or decrement would overflow", protocol.ErrRedis, op)
	}
	// The key already has its expiry: PEXPIREAT NX keeps it.
	e.n = count
	return count, nil
}

// slidingHit is sliding_window's hit.
func (s *shard7) slidingHit(k []byte, p protocol.Policy, cost int64, now instant, op string) (protocol.HitReply, error) {
	w := p.WindowSeconds()
	e, err := s.slidingTrim(k, w, now, op)
	if err != nil {
		return protocol.HitReply{}, err
	}
	var left int64
	if e != nil {
		left = e.total
	}
	if left+cost <= p.Limit { // no overflow: each call adds at most MaxSlidingAdd
		return protocol.HitReply{Allowed: true, Count: s.slidingAdd(k, e, w, cost, now)}, nil
	}
	if cost > p.Limit {
		return protocol.HitReply{Count: left, RetryAfterMs: protocol.Never}, nil
	}
	// 1 ≤ k ≤ left, as left + cost > limit ≥ cost: e is not nil. The wait
	// is at least 1 ms: the trim left only scores above now.s − w.
	sec := e.kth(left + cost - p.Limit)
	return protocol.HitReply{Count: left, RetryAfterMs: (sec+w)*1000 - now.ms}, nil
}

// slidingTrim drops the members of the sorted set k scored at or below
// now.s − w and returns it, nil when it is missing or left empty (Redis
// deletes an empty sorted set).
func (s *shard7) slidingTrim(k []byte, w int64, now instant, op string) (*entry7, error) {
	e := s.live(k, now)
	if e == nil {
		return nil, nil
	}
	if e.kind != kindZSet {
		return nil, errWrongType(op)
	}
	cut := now.s - w
	i := 0
	for i < len(e.runs) && e.runs[i].sec <= cut {
		e.total -= e.runs[i].count
		i++
	}
	// Reslicing, not copying: the next append that outgrows the array
	// copies only the live runs, and the dropped ones go with the old one.
	e.runs = e.runs[i:]
	if e.total == 0 {
		s.del(k)
		return nil, nil
	}
	return e, nil
}

// slidingAdd adds n members scored now.s to the sorted set k, whose live
// entry is e (nil: none), sets EXPIRE w and returns the members' count.
// With nothing to add to a missing key it writes nothing: EXPIRE on a
// missing key is a no-op.
func (s *shard7) slidingAdd(k []byte, e *entry7, w, n int64, now instant) int64 {
	if n > 0 {
		if e == nil {
			e = &entry7{kind: kindZSet}
			s.put(k, e)
		}
		e.add(now.s, n)
	}
	if e == nil {
		return 0
	}
	// EXPIRE w, taken from the whole second s: the key then lives at least
	// as long as its newest members count.
	e.expireMs = (now.s + w) * 1000
	return e.total
}

// add adds n members scored sec, keeping the runs in order. Scores only
// go down when the clock went backwards.
func (e *entry7) add(sec, n int64) {
	e.total += n
	last := len(e.runs) - 1
	switch {
	case last >= 0 && e.runs[last].sec == sec:
		e.runs[last].count += n
	case last < 0 || e.runs[last].sec < sec:
		e.runs = append(e.runs, run7{sec, n})
	default:
		i, found := slices.BinarySearchFunc(e.runs, sec, func(r run7, sec int64) int {
			return compareInt(r.sec, sec)
		})
		if found {
			e.runs[i].count += n
		} else {
			e.runs = slices.Insert(e.runs, i, run7{sec, n})
		}
	}
}

// kth returns the score of the k-th oldest member, 1 ≤ k ≤ e.total.
func (e *entry7) kth(k int64) int64 {
	for _, r := range e.runs {
		if k <= r.count {
			return r.sec
		}
		k -= r.count
	}
	panic("memory: kth past the sorted set") // callers keep k ≤ total
}

// countUpTo returns the number of members scored at or below sec.
func (e *entry7) countUpTo(sec int64) int64 {
	var n int64
	for _, r := range e.runs {
		if r.sec > sec {
			break
		}
		n += r.count
	}
	return n
}

// leakyHit is leaky_bucket's hit.
func (s *shard7) leakyHit(k []byte, p protocol.Policy, cost int64, now instant, op string) (protocol.HitReply, error) {
	e := s.live(k, now)
	level, last := int64(0), now.s
	if e != nil {
		if e.kind != kindHash {
			return protocol.HitReply{}, errWrongType(op)
		}
		level, last = e.n, e.last
	}
	lv := leak(level, now.s-last, p.Rate)
	if cost <= p.Limit && lv <= p.Limit-cost {
		stored := lv + cost
		e = s.hash(k, e)
		e.n, e.last = stored, now.s
		e.expireMs = (now.s + ceilDiv(stored, p.Rate) + 60) * 1000
		return protocol.HitReply{Allowed: true, Count: stored}, nil
	}
	if cost > p.Limit {
		return protocol.HitReply{Count: lv, RetryAfterMs: protocol.Never}, nil
	}
	// The first second at which the stored level has leaked enough: after
	// now.s, since it has not at now.s (even when the clock went back and
	// the formula raised the level), so the wait is at least 1 ms.
	wait := (last+ceilDiv(level+cost-p.Limit, p.Rate))*1000 - now.ms
	return protocol.HitReply{Count: lv, RetryAfterMs: wait}, nil
}

// tokenHit is token_bucket's hit.
func (s *shard7) tokenHit(k []byte, p protocol.Policy, cost int64, now instant, op string) (protocol.HitReply, error) {
	e := s.live(k, now)
	level, last := p.Limit, now.s // a bucket without a key is full
	if e != nil {
		if e.kind != kindHash {
			return protocol.HitReply{}, errWrongType(op)
		}
		level, last = e.n, e.last
	}
	tokens := refill(level, now.s-last, p.Rate, p.Limit)
	if tokens >= cost {
		stored := tokens - cost
		e = s.hash(k, e)
		e.n, e.last = stored, now.s
		e.expireMs = (now.s + ceilDiv(p.Limit-stored, p.Rate) + 60) * 1000
		return protocol.HitReply{Allowed: true, Count: stored}, nil
	}
	if cost > p.Limit {
		return protocol.HitReply{Count: tokens, RetryAfterMs: protocol.Never}, nil
	}
	// The first second at which the stored level has refilled enough:
	// after now.s, as for the leaky bucket.
	wait := (last+ceilDiv(cost-level, p.Rate))*1000 - now.ms
	return protocol.HitReply{Count: tokens, RetryAfterMs: wait}, nil
}

// hash returns e, or a new hash stored as key k when e is nil.
func (s *shard7) hash(k []byte, e *entry7) *entry7 {
	if e == nil {
		e = &entry7{kind: kindHash}
		s.put(k, e)
	}
	return e
}

// leak returns max(0, level − elapsed×rate) without overflow. level is a
// stored level, 0 to protocol.MaxLevel. A negative elapsed (the clock went
// back) counts as none, as in the Redis script.
func leak(level, elapsed, rate int64) int64 {
	if elapsed <= 0 {
		return level
	}
	if elapsed > level/rate {
		return 0 // elapsed×rate > level
	}
	return level - elapsed*rate
}

// refill returns min(limit, level + elapsed×rate) without overflow. level
// is a stored level, 0 to protocol.MaxLevel. A negative elapsed (the clock
// went back) counts as none, as in the Redis script.
func refill(level, elapsed, rate, limit int64) int64 {
	if elapsed <= 0 {
		return min(limit, level)
	}
	need := limit - level
	if need <= 0 || elapsed >= ceilDiv(need, rate) {
		return limit
	}
	return level + elapsed*rate
}

// ceilDiv returns ⌈a/b⌉ for b > 0.
func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a > 0 {
		q++ // Go truncates toward zero: that is the ceiling for a < 0
	}
	return q
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// shard returns the shard of key k.
func (st *store7) shard(seed maphash.Seed, k []byte) *shard7 {
	return &st.shards[shardIndex7(seed, k)]
}

// shardIndex7 returns the index of key k's shard in store7.shards.
func shardIndex7(seed maphash.Seed, k []byte) uint64 { return maphash.Bytes(seed, k) & (numShards - 1) }

// live returns the entry of key k, nil when there is none or it has
// expired; an expired one is deleted, as Redis deletes a key it finds
// expired on access. The sweeper reclaims those nobody reads.
func (s *shard7) live(k []byte, now instant) *entry7 {
	e := s.keys[string(k)]
	if e != nil && e.expired(now.ms) {
		delete(s.keys, string(k))
		return nil
	}
	return e
}

// put stores e as key k.
func (s *shard7) put(k []byte, e *entry7) {
	if s.keys == nil {
		s.keys = make(map[string]*entry7)
	}
	s.keys[string(k)] = e
	s.peak = max(s.peak, len(s.keys))
}

// putExpiring stores e as key k expiring at expireMs, or deletes key k if
// that time has come: PEXPIREAT with a time not after the clock deletes the
// key, as Redis does.
func (s *shard7) putExpiring(k []byte, e *entry7, expireMs int64, now instant) {
	if expireMs <= now.ms {
		s.del(k)
		return
	}
	e.expireMs = expireMs
	s.put(k, e)
}

// del deletes key k.
func (s *shard7) del(k []byte) { delete(s.keys, string(k)) }

// expired reports whether the clock (ms) is past e's expiry.
func (e *entry7) expired(nowMs int64) bool { return nowMs > e.expireMs }

// sweep7 drops the expired Hammer 7 entries one shard at a time, and
// shrinks the maps that emptied most, as sweepOnce does for buckets.
func (t *table) sweep7() {
	for i := range t.h7.shards {
		s := &t.h7.shards[i]
		s.mu.Lock()
		nowMs := t.instant().ms
		for k, e := range s.keys {
			if e.expired(nowMs) {
				delete(s.keys, k)
			}
		}
		if s.peak >= shrinkMin && len(s.keys) <= s.peak/4 {
			keys := make(map[string]*entry7, len(s.keys))
			for k, e := range s.keys {
				keys[k] = e
			}
			s.keys, s.peak = keys, len(keys)
		}
		s.mu.Unlock()
	}
}
