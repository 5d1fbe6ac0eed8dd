package hammergrpc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	hammergrpc "github.com/hammer-go/hammerredis/contrib/grpc"
	"github.com/hammer-go/hammerredis/hammer"
)

// A Limiter plugs into go-grpc-middleware's ratelimit interceptors.
var _ ratelimit.Limiter = (*hammergrpc.Limiter)(nil)

func TestGoGRPCMiddlewareInterceptors(t *testing.T) {
	// Skip reads the method through grpc.Method, as Limit gets none.
	l := newLimiter(t, hammergrpc.Config{Skip: hammergrpc.SkipMethods(watchMethod)},
		hammer.Limit{Name: "per-second", Scale: time.Second, Max: 1})
	client, hs := serve(t,
		grpc.ChainUnaryInterceptor(ratelimit.UnaryServerInterceptor(l)),
		grpc.ChainStreamInterceptor(ratelimit.StreamServerInterceptor(l)))
	ctx := context.Background()

	var md metadata.MD
	if _, err := client.Check(ctx, req, grpc.Header(&md)); err != nil {
		t.Fatal(err)
	}
	wantMD(t, md, `"per-second";q=1;w=1`, `"per-second";r=0;t=1`)
	_, err := client.Check(ctx, req)
	wantCode(t, err, codes.ResourceExhausted)
	// The interceptor keeps only the text, which still says when to retry.
	if msg := status.Convert(err).Message(); !strings.Contains(msg, checkMethod) ||
		!strings.Contains(msg, `hammergrpc: rate limit exceeded ("per-second"); retry in 750ms`) {
		t.Errorf("message %q", msg)
	}
	for range 3 {
		s, err := client.Watch(ctx, req)
		if err == nil {
			_, err = s.Recv()
		}
		if err != nil {
			t.Fatalf("a skipped stream: %v", err)
		}
	}
	if n, _ := hs.last(); n != 4 {
		t.Errorf("the handlers ran %d times, want 4", n)
	}
}

func TestGoGRPCMiddlewareStreamDenied(t *testing.T) {
	l := newLimiter(t, hammergrpc.Config{}, hammer.Limit{Name: "closed", Scale: time.Second, Max: 0})
	client, hs := serve(t, grpc.ChainStreamInterceptor(ratelimit.StreamServerInterceptor(l)))
	s, err := client.Watch(context.Background(), req)
	if err == nil {
		_, err = s.Recv()
	}
	wantCode(t, err, codes.ResourceExhausted)
	if n, _ := hs.last(); n != 0 {
		t.Error("the handler ran")
	}
}
