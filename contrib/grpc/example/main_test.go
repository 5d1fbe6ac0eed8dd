package main

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/hammer-go/hammerredis/internal/redistest"
)

func TestRunInProcess(t *testing.T) { testRun(t, "") }

func TestRunOnRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a redis-server")
	}
	testRun(t, redistest.New(t).URL())
}

// testRun serves the example and calls it with one API key until a limit
// denies, then stops it.
func testRun(t *testing.T, redisURL string) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, lis, redisURL, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := grpc_health_v1.NewHealthClient(conn)
	callCtx, callCancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, "x-api-key", "test"), 10*time.Second)
	defer callCancel()
	// 5 a second and 100 a minute: one of the first 101 calls is denied,
	// wherever the windows' edges fall; none of the first 2, which even
	// the fallback's half share allows (Redis may not be connected yet).
	for i := 1; i <= 101; i++ {
		_, err := client.Check(callCtx, &grpc_health_v1.HealthCheckRequest{})
		if err == nil {
			continue
		}
		st := status.Convert(err)
		if st.Code() != codes.ResourceExhausted || i <= 2 {
			t.Fatalf("call %d: %v", i, err)
		}
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok && ri.RetryDelay.AsDuration() <= time.Minute {
				return
			}
		}
		t.Fatalf("call %d: %v without a RetryInfo of a minute at most", i, err)
	}
	t.Fatal("no call was denied")
}
