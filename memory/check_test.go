package memory

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/hammer-go/hammerredis/internal/checkrules"
	"github.com/hammer-go/hammerredis/internal/rules7"
	"github.com/hammer-go/hammerredis/protocol"
)

// TestCheckRules runs the rule table of Check that the Redis backend runs
// too (internal/checkrules).
func TestCheckRules(t *testing.T) {
	checkrules.Run(t, func(t *testing.T) checkrules.Env {
		clk := &rules7.Clock{} // Run sets it
		b, err := newBackend(Options{ExpiryMs: 60_000, CleanupInterval: -1}, clk.Now)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return checkrules.Env{Backend: b, Clock: clk}
	})
}

// newCheckBackend returns a backend reading a clock at 2100-01-01 plus
// 250 ms, and that clock.
func newCheckBackend(t *testing.T) (*Backend, *rules7.Clock) {
	t.Helper()
	clk := rules7.NewClock(time.Unix(4_102_444_800, 250e6))
	b, err := newBackend(Options{ExpiryMs: 60_000, CleanupInterval: -1}, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, clk
}

// TestCheckCountsWhereTheSingleCallsDo: a check's Hammer 6 limit counts in
// CountHitN's bucket, its Hammer 7 limit in Hit's key, each seeing the
// other's hits.
func TestCheckCountsWhereTheSingleCallsDo(t *testing.T) {
	b, clk := newCheckBackend(t)
	ctx := context.Background()
	now := clk.Now().UnixMilli()
	six := protocol.CheckLimit{Hammer6: true, Policy: protocol.Policy{ScaleMs: 60_000, Limit: 10}, ID: "u", Cost: 2}
	seven := protocol.CheckLimit{Policy: protocol.Policy{Algorithm: protocol.TokenBucket, Prefix: "p", Rate: 1, Limit: 10}, ID: "u", Cost: 3}
	key := protocol.BucketKey{ID: "u", Bucket: now / 60_000}
	if _, err := b.CountHitN(ctx, key, now, 4); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Hit(ctx, protocol.Hit{Policy: seven.Policy, ID: "u", Cost: 1, Now: now}); err != nil {
		t.Fatal(err)
	}
	rep, err := b.Check(ctx, protocol.Check{Now: now, Limits: []protocol.CheckLimit{six, seven}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rep.Decisions, []protocol.HitReply{{Allowed: true, Count: 6}, {Allowed: true, Count: 6}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Check = %v, want %v", got, want)
	}
	if info, err := b.GetBucket(ctx, key); err != nil || info == nil || info.Count != 6 || info.Created != now || info.Updated != now {
		t.Errorf("GetBucket after the check = %+v, %v; want count 6, created and updated %d", info, err, now)
	}
	if n, err := b.Get(ctx, protocol.Get{Policy: seven.Policy, ID: "u", Now: now}); err != nil || n != 6 {
		t.Errorf("Get after the check = %d, %v; want 6", n, err)
	}
	if n, err := b.CountHit(ctx, key, now); err != nil || n != 7 {
		t.Errorf("CountHit after the check = %d, %v; want 7", n, err)
	}
}

func TestCheckErrors(t *testing.T) {
	b, clk := newCheckBackend(t)
	c := protocol.Check{Now: clk.Now().UnixMilli(), Limits: []protocol.CheckLimit{
		{Hammer6: true, Policy: protocol.Policy{ScaleMs: 1000, Limit: 1}, ID: "x", Cost: 1}}}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Check(ctx, c); !errors.Is(err, context.Canceled) {
		t.Errorf("Check with a canceled context: %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	if _, err := b.Check(ctx, c); !errors.Is(err, protocol.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Check past its deadline: %v, want protocol.ErrTimeout and context.DeadlineExceeded", err)
	}
	if _, err := b.Check(context.Background(), protocol.Check{Now: c.Now}); !errors.Is(err, protocol.ErrInvalid) {
		t.Errorf("Check of no limits: %v, want protocol.ErrInvalid", err)
	}
	if info, _ := b.GetBucket(context.Background(), protocol.BucketKey{ID: "x", Bucket: c.Now / 1000}); info != nil {
		t.Errorf("the failed checks counted: %+v", info)
	}
	b.Close()
	if _, err := b.Check(context.Background(), c); !errors.Is(err, protocol.ErrStopped) {
		t.Errorf("Check after Close: %v, want protocol.ErrStopped", err)
	}
}

// TestCheckLocksInOneOrder runs checks of the same keys listed in random
// orders, with single calls on them, from several goroutines: locking the
// shards in the limits' order would deadlock.
func TestCheckLocksInOneOrder(t *testing.T) {
	b, clk := newCheckBackend(t)
	now := clk.Now().UnixMilli()
	var limits []protocol.CheckLimit
	for i := range 3 {
		id := fmt.Sprintf("id-%d", i)
		limits = append(limits,
			protocol.CheckLimit{Hammer6: true, Policy: protocol.Policy{ScaleMs: 60_000, Limit: 1 << 40}, ID: id, Cost: 1},
			protocol.CheckLimit{Policy: protocol.Policy{Algorithm: protocol.LeakyBucket, Prefix: "p", Rate: 1, Limit: 1 << 40}, ID: id, Cost: 1})
	}
	const goroutines, checks = 16, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			ctx := context.Background()
			for range checks {
				c := protocol.Check{Now: now, AllOrNothing: rng.IntN(2) == 0}
				for _, i := range rng.Perm(len(limits))[:2+rng.IntN(len(limits)-1)] {
					c.Limits = append(c.Limits, limits[i])
				}
				if _, err := b.Check(ctx, c); err != nil {
					t.Errorf("Check: %v", err)
					return
				}
				l := limits[rng.IntN(len(limits))]
				if l.Hammer6 {
					_, err := b.CountHit(ctx, protocol.BucketKey{ID: l.ID, Bucket: now / 60_000}, now)
					if err != nil {
						t.Errorf("CountHit: %v", err)
					}
				} else if _, err := b.Hit(ctx, protocol.Hit{Policy: l.Policy, ID: l.ID, Cost: 1, Now: now}); err != nil {
					t.Errorf("Hit: %v", err)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the checks did not finish in a minute: deadlocked")
	}
}
