package hammergrpc_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/hammer-go/hammerredis"
	hammergrpc "github.com/hammer-go/hammerredis/contrib/grpc"
	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/hammer7"
	"github.com/hammer-go/hammerredis/internal/redistest"
)

// TestRedisEndToEnd limits a real gRPC server's calls in a private
// redis-server, through Backend.Check, with a Hammer 6 window and a Hammer
// 7 token bucket; then stops the server: FailOpen lets calls through,
// FailClosed refuses them.
func TestRedisEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a redis-server")
	}
	srv := redistest.New(t)
	b, err := hammerredis.Start(hammerredis.Options{
		ExpiryMs: 60_000,
		RedisURL: srv.URL(),
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hammerredis.Stop(b) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	checker := newCheckerOn(t, b, hammer.Config{Limits: []hammer.Limit{
		{Name: "per-second", Scale: time.Second, Max: 2},
		{Name: "burst", Policy: hammer7.TokenBucket{Prefix: "grpc-e2e", RefillPerSecond: 1, Capacity: 5}},
	}})
	open := newLimiter(t, hammergrpc.Config{Checker: checker})
	closed := newLimiter(t, hammergrpc.Config{Checker: checker, OnError: hammergrpc.FailClosed})
	openClient, hs := serve(t, interceptors(open)...)
	closedClient, _ := serve(t, interceptors(closed)...)

	for i := int64(1); i <= 2; i++ {
		var md metadata.MD
		if _, err := openClient.Check(ctx, req, grpc.Header(&md)); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if _, d := hs.last(); d == nil || !d.Allowed || d.Limits[0].Count != i || d.Degraded {
			t.Fatalf("call %d: decision %+v", i, d)
		}
		if got := md.Get(hammergrpc.MetadataPolicy); len(got) != 1 || got[0] != `"per-second";q=2;w=1, "burst";q=5;w=5` {
			t.Errorf("call %d: policy %q", i, got)
		}
	}
	_, err = closedClient.Check(ctx, req) // the same checker and client address: the same counts
	wantCode(t, err, codes.ResourceExhausted)
	if ri, _ := details(t, err); ri == nil || ri.RetryDelay.AsDuration() != 750*time.Millisecond {
		t.Errorf("RetryInfo %v, want 750ms", ri)
	}

	srv.Stop()
	if _, err := openClient.Check(ctx, req); err != nil {
		t.Errorf("FailOpen without Redis: %v", err)
	}
	if n, d := hs.last(); n != 3 || d != nil {
		t.Errorf("FailOpen without Redis: call %d, decision %+v; want the third call, without a decision", n, d)
	}
	_, err = closedClient.Check(ctx, req)
	wantCode(t, err, codes.Unavailable)
}
