package memory

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hammer-go/hammerredis/protocol"
)

func TestOptionsClockDrivesTheBackend(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	b, err := New(Options{ExpiryMs: 60_000, CleanupInterval: -1, Clock: func() time.Time { return time.Unix(0, now.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	p := protocol.Policy{Algorithm: protocol.TokenBucket, Prefix: "P", Limit: 10, Rate: 1}
	if _, err := b.Hit(ctx, protocol.Hit{Policy: p, ID: "k", Cost: 10}); err != nil {
		t.Fatal(err)
	}
	now.Add(int64(3 * time.Second))
	if n, err := b.Get(ctx, protocol.Get{Policy: p, ID: "k"}); err != nil || n != 3 {
		t.Errorf("Get after 3 s of the clock = %d, %v; want 3 tokens", n, err)
	}
	// Hammer 6's buckets expire on the same clock.
	key := protocol.BucketKey{Bucket: 1, ID: "h6"}
	if _, err := b.CountHit(ctx, key, 1); err != nil {
		t.Fatal(err)
	}
	now.Add(int64(62 * time.Second))
	if got, err := b.GetBucket(ctx, key); err != nil || got != nil {
		t.Errorf("GetBucket after the TTL on the clock = %v, %v; want none", got, err)
	}
}

func TestHammer7HitAllocatesNothing(t *testing.T) {
	b, err := New(Options{ExpiryMs: 60_000, CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	for _, p := range []protocol.Policy{
		{Algorithm: protocol.FixWindow, Prefix: "P", ScaleMs: 60_000, Limit: 1 << 40},
		{Algorithm: protocol.SlidingWindow, Prefix: "P", ScaleMs: 60_000, Limit: 1 << 40},
		{Algorithm: protocol.LeakyBucket, Prefix: "P", Limit: 1 << 40, Rate: 1},
		{Algorithm: protocol.TokenBucket, Prefix: "P", Limit: 1 << 40, Rate: 1},
	} {
		r := protocol.Hit{Policy: p, ID: "hot", Cost: 1, Now: time.Now().UnixMilli()}
		if _, err := b.Hit(ctx, r); err != nil { // creates the key
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { b.Hit(ctx, r) }); n != 0 {
			t.Errorf("%s: Hit allocates %v times on a hot key, want 0", p.Algorithm, n)
		}
	}
}
