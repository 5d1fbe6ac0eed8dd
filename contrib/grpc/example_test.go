package hammergrpc_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	hammergrpc "github.com/hammer-go/hammerredis/contrib/grpc"
	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/memory"
)

// A gRPC server whose calls are limited per API key (else per client
// address) to 2 a second and 1000 an hour, and a client that goes over.
func Example() {
	backend, err := memory.New(memory.Options{ExpiryMs: 3_600_000}) // or hammerredis.Start(...)
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	checker, err := hammer.NewChecker(backend, hammer.Config{Limits: []hammer.Limit{
		{Name: "per-second", Scale: time.Second, Max: 2},
		{Name: "per-hour", Scale: time.Hour, Max: 1000},
	}})
	if err != nil {
		log.Fatal(err)
	}
	// A fixed clock, for the same output on every run: leave it out.
	checker = checker.WithClock(func() time.Time { return time.UnixMilli(1_700_000_000_250) })
	limiter, err := hammergrpc.New(hammergrpc.Config{
		Checker: checker,
		Keys:    hammergrpc.FirstOf(hammergrpc.Metadata("x-api-key"), hammergrpc.PeerIP),
	})
	if err != nil {
		log.Fatal(err)
	}

	server := grpc.NewServer(
		grpc.ChainUnaryInterceptor(limiter.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(limiter.StreamServerInterceptor()),
	)
	grpc_health_v1.RegisterHealthServer(server, health.NewServer()) // your services here
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go server.Serve(lis)
	defer server.Stop()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := grpc_health_v1.NewHealthClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-api-key", "key-of-alice")
	for range 3 {
		var header metadata.MD
		_, err := client.Check(ctx, &grpc_health_v1.HealthCheckRequest{}, grpc.Header(&header))
		if err != nil {
			st := status.Convert(err)
			for _, d := range st.Details() {
				if ri, ok := d.(*errdetails.RetryInfo); ok {
					fmt.Println(st.Code(), "retry in", ri.RetryDelay.AsDuration())
				}
			}
			continue
		}
		fmt.Println("OK", header.Get("ratelimit")[0])
	}
	// Output:
	// OK "per-second";r=1;t=1, "per-hour";r=999;t=2800
	// OK "per-second";r=0;t=1, "per-hour";r=998;t=2800
	// ResourceExhausted retry in 750ms
}

// With go-grpc-middleware v2, a Limiter is the Limiter of its ratelimit
// interceptors. They refuse a call with ResourceExhausted and the Limit
// error's text only: the Limiter's own interceptors also give RetryInfo,
// Unavailable and InvalidArgument, and DecisionFrom.
func ExampleLimiter_Limit() {
	backend, _ := memory.New(memory.Options{ExpiryMs: 60_000})
	defer backend.Close()
	checker, _ := hammer.NewChecker(backend, hammer.Config{Limits: []hammer.Limit{
		{Name: "per-second", Scale: time.Second, Max: 10},
	}})
	limiter, _ := hammergrpc.New(hammergrpc.Config{Checker: checker})
	server := grpc.NewServer(
		grpc.ChainUnaryInterceptor(ratelimit.UnaryServerInterceptor(limiter)),
		grpc.ChainStreamInterceptor(ratelimit.StreamServerInterceptor(limiter)),
	)
	_ = server // register the services and serve
}

// A handler reads the call's decision, for its own logs or replies.
func ExampleDecisionFrom() {
	handler := func(ctx context.Context) {
		if d, ok := hammergrpc.DecisionFrom(ctx); ok {
			for _, l := range d.Limits {
				fmt.Printf("%s: %d of %d left\n", l.Name, l.Remaining, l.Quota)
			}
		}
	}
	_ = handler
}
