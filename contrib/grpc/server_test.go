package hammergrpc_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	hammergrpc "github.com/hammer-go/hammerredis/contrib/grpc"
	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/memory"
	"github.com/hammer-go/hammerredis/protocol"
)

// The tests serve grpc.health.v1.Health, a service that comes with gRPC
// without code generation: Check is a unary call, Watch a server stream.

const (
	checkMethod = "/grpc.health.v1.Health/Check"
	watchMethod = "/grpc.health.v1.Health/Watch"
)

// t0 is the tests' clock: 250ms into a second, 20.25s into a minute.
var t0 = time.UnixMilli(1_700_000_000_250)

// healthServer answers SERVING and records the Decision its handlers see.
type healthServer struct {
	grpc_health_v1.UnimplementedHealthServer
	mu        sync.Mutex
	calls     int
	decisions []*hammer.Decision // nil where the handler had none
}

func (h *healthServer) record(ctx context.Context) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if d, ok := hammergrpc.DecisionFrom(ctx); ok {
		h.decisions = append(h.decisions, &d)
	} else {
		h.decisions = append(h.decisions, nil)
	}
}

// last returns the number of handled calls and the last one's Decision.
func (h *healthServer) last() (int, *hammer.Decision) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.calls == 0 {
		return 0, nil
	}
	return h.calls, h.decisions[len(h.decisions)-1]
}

func (h *healthServer) Check(ctx context.Context, _ *grpc_health_v1.HealthCheckRequest) (*grpc_health_v1.HealthCheckResponse, error) {
	h.record(ctx)
	return &grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_SERVING}, nil
}

func (h *healthServer) Watch(_ *grpc_health_v1.HealthCheckRequest, s grpc.ServerStreamingServer[grpc_health_v1.HealthCheckResponse]) error {
	h.record(s.Context())
	return s.Send(&grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_SERVING})
}

// serve runs a gRPC server with opts on a loopback TCP listener and returns
// a client connected to it, and the service; both stop when the test ends.
func serve(t *testing.T, opts ...grpc.ServerOption) (grpc_health_v1.HealthClient, *healthServer) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &healthServer{}
	s := grpc.NewServer(opts...)
	grpc_health_v1.RegisterHealthServer(s, hs)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(lis)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		s.Stop()
		<-done
	})
	return grpc_health_v1.NewHealthClient(conn), hs
}

// newChecker returns a Checker of limits on a fresh memory backend, at t0.
func newChecker(t *testing.T, cfg hammer.Config) *hammer.Checker {
	t.Helper()
	b, err := memory.New(memory.Options{ExpiryMs: 3_600_000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return newCheckerOn(t, b, cfg)
}

func newCheckerOn(t *testing.T, b hammer.CheckBackend, cfg hammer.Config) *hammer.Checker {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c, err := hammer.NewChecker(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c.WithClock(func() time.Time { return t0 })
}

// twoLimits are 2 calls a second and 100 a minute.
var twoLimits = []hammer.Limit{
	{Name: "per-second", Scale: time.Second, Max: 2},
	{Name: "per-minute", Scale: time.Minute, Max: 100},
}

// failing is a backend that fails every check, or waits for the context
// to end when block is set.
type failing struct {
	block bool
	mu    sync.Mutex
	calls int
}

var errDown = errDownT{}

type errDownT struct{}

func (errDownT) Error() string { return "backend down (dial tcp 10.0.0.7:6379: connection refused)" }

func (f *failing) Check(ctx context.Context, _ protocol.Check) (protocol.CheckReply, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	if f.block {
		<-ctx.Done()
		return protocol.CheckReply{}, ctx.Err()
	}
	return protocol.CheckReply{}, errDown
}

// syncBuffer is a bytes.Buffer for a logger written by server goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// details returns the RetryInfo and QuotaFailure details of err's status.
func details(t *testing.T, err error) (*errdetails.RetryInfo, *errdetails.QuotaFailure) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("%v is not a gRPC status", err)
	}
	var ri *errdetails.RetryInfo
	var qf *errdetails.QuotaFailure
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.RetryInfo:
			ri = d
		case *errdetails.QuotaFailure:
			qf = d
		case error:
			t.Fatalf("a detail does not decode: %v", d)
		}
	}
	return ri, qf
}

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("code %v (%v), want %v", got, err, want)
	}
}
