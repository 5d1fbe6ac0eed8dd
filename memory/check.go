package memory

import (
	"bytes"
	"context"
	"slices"

	"github.com/hammer-go/hammerredis/protocol"
)

// Check decides the limits of c at once, by the rules of protocol/check.go,
// with the results the Redis backend gives. A Hammer 6 limit counts in the
// buckets CountHitN counts in (GetBucket sees it), a Hammer 7 limit in the
// keys Hit counts in (Get sees it), each as that call would.
//
// The check holds the locks of every shard its keys are in, taken in one
// fixed order (Hammer 6's shards, then Hammer 7's, by index), from reading
// the clock to its last write: no other call on those keys runs between
// its decisions and its writes. It decides every limit on a copy of its
// keys, then writes the copy back when c.Charged allows; a check that fails
// (a key of another type, an overflow) writes nothing.
//
// Requests that fail Validate return its error, wrapping
// protocol.ErrInvalid; a context already done returns its error, and a
// closed backend protocol.ErrStopped.
func (b *Backend) Check(ctx context.Context, c protocol.Check) (protocol.CheckReply, error) {
	if err := c.Validate(); err != nil {
		return protocol.CheckReply{}, err
	}
	if err := b.check(ctx, c.Op(), ""); err != nil {
		return protocol.CheckReply{}, err
	}
	r := b.t.newCheckRun(c)
	r.lock()
	defer r.unlock()
	d, err := r.decide()
	if err != nil {
		return protocol.CheckReply{}, err
	}
	if c.Charged(d) {
		r.commit()
	}
	return protocol.CheckReply{Decisions: d}, nil
}

// checkRun is one Check: its keys, the shards to lock, and what the check
// would leave in its keys.
type checkRun struct {
	t *table
	c protocol.Check
	// Per limit: a Hammer 6 limit's bucket and shard index, or a Hammer 7
	// limit's key and shard index; first is the index of the first limit
	// of the check with the same key, which holds the key's pending state.
	buckets []protocol.BucketKey
	keys    [][]byte
	shard   []uint64
	first   []int
	locks6  [numShards]bool
	locks7  [numShards]bool

	// pending6[first] is a Hammer 6 bucket as the check leaves it;
	// pending7 holds copies of the Hammer 7 keys as the check leaves them.
	pending6 []entry
	pending7 shard7
}

// newCheckRun names the keys and shards of the validated check c.
func (t *table) newCheckRun(c protocol.Check) *checkRun {
	n := len(c.Limits)
	r := &checkRun{t: t, c: c, buckets: make([]protocol.BucketKey, n), keys: make([][]byte, n),
		shard: make([]uint64, n), first: make([]int, n), pending6: make([]entry, n)}
	for i, l := range c.Limits {
		if l.Hammer6 {
			bucket, _ := l.Bucket6(c.Now)
			r.buckets[i] = protocol.BucketKey{ID: l.ID, Bucket: bucket}
			r.shard[i] = t.shardIndex(l.ID)
			r.locks6[r.shard[i]] = true
		} else {
			r.keys[i] = l.Policy.AppendKey(nil, l.ID, c.Now)
			r.shard[i] = shardIndex7(t.seed, r.keys[i])
			r.locks7[r.shard[i]] = true
		}
		r.first[i] = i
		for j := range i {
			if r.sameKey(i, j) {
				r.first[i] = j
				break
			}
		}
	}
	return r
}

// sameKey reports whether limits i and j count in the same bucket or key.
func (r *checkRun) sameKey(i, j int) bool {
	li, lj := r.c.Limits[i], r.c.Limits[j]
	if li.Hammer6 != lj.Hammer6 {
		return false // Hammer 6 buckets and Hammer 7 keys live apart
	}
	if li.Hammer6 {
		return r.buckets[i] == r.buckets[j]
	}
	return bytes.Equal(r.keys[i], r.keys[j])
}

// lock locks the check's shards in the one order every multi-shard call
// takes (single-shard calls hold one lock only): no two calls deadlock.
func (r *checkRun) lock() {
	for i, ok := range r.locks6 {
		if ok {
			r.t.shards[i].mu.Lock()
		}
	}
	for i, ok := range r.locks7 {
		if ok {
			r.t.h7.shards[i].mu.Lock()
		}
	}
}

func (r *checkRun) unlock() {
	for i, ok := range r.locks7 {
		if ok {
			r.t.h7.shards[i].mu.Unlock()
		}
	}
	for i, ok := range r.locks6 {
		if ok {
			r.t.shards[i].mu.Unlock()
		}
	}
}

// decide decides every limit in order on the pending copies, each seeing
// the hits of the limits before it, and returns the decisions. Call it
// with the shards locked.
func (r *checkRun) decide() ([]protocol.HitReply, error) {
	wall := r.t.now()
	clock, now := wall.UnixNano(), instantAt(wall)
	op := r.c.Op()
	d := make([]protocol.HitReply, len(r.c.Limits))
	for i, l := range r.c.Limits {
		f := r.first[i]
		if !l.Hammer6 {
			if f == i {
				// The key's live entry, copied: Hit's code then runs on the copy.
				if e := r.t.h7.shards[r.shard[i]].live(r.keys[i], now); e != nil {
					r.pending7.put(r.keys[i], e.clone())
				}
			}
			var err error
			if d[i], err = r.pending7.hit(r.keys[i], l.Policy, l.Cost, r.c.Now, now, op); err != nil {
				return nil, err
			}
			continue
		}
		base := &r.pending6[f]
		if f == i {
			k := r.buckets[i]
			base = r.t.shards[r.shard[i]].ids[k.ID][k.Bucket]
		}
		e, err := r.t.counted(base, r.c.Now, l.Cost, clock, op)
		if err != nil {
			return nil, err
		}
		r.pending6[f] = e
		d[i] = decide6(l, e.count, r.c.Now)
	}
	return d, nil
}

// commit writes the pending buckets and keys. Call it with the shards
// locked, after decide.
func (r *checkRun) commit() {
	for i, l := range r.c.Limits {
		switch {
		case r.first[i] != i:
		case l.Hammer6:
			r.t.shards[r.shard[i]].store(r.buckets[i], r.pending6[i])
		default:
			s := &r.t.h7.shards[r.shard[i]]
			if e := r.pending7.keys[string(r.keys[i])]; e != nil {
				s.put(r.keys[i], e)
			} else {
				s.del(r.keys[i]) // emptied (a sliding window), or expired
			}
		}
	}
}

// decide6 decides a Hammer 6 limit whose bucket counts count after the
// hit: allowed while count ≤ Limit, else a wait until the bucket ends, or
// Never when the cost alone exceeds the limit.
func decide6(l protocol.CheckLimit, count, nowMs int64) protocol.HitReply {
	switch {
	case count <= l.Policy.Limit:
		return protocol.HitReply{Allowed: true, Count: count}
	case l.Cost > l.Policy.Limit:
		return protocol.HitReply{Count: count, RetryAfterMs: protocol.Never}
	}
	_, wait := l.Bucket6(nowMs)
	return protocol.HitReply{Count: count, RetryAfterMs: wait}
}

// clone returns a copy of e that shares nothing with it.
func (e *entry7) clone() *entry7 {
	c := *e
	c.runs = slices.Clone(e.runs)
	return &c
}
