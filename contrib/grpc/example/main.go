// Command example is a gRPC server whose calls are rate limited by
// hammerredis: per API key (the x-api-key metadata), else per client
// address, at 5 calls a second and 100 a minute. The calls are counted in
// Redis when -redis is given, with an in-process fallback while Redis is
// away, else in process only.
//
//	go run ./example -redis redis://127.0.0.1:6379
//	grpcurl -plaintext -H 'x-api-key: alice' 127.0.0.1:50051 grpc.health.v1.Health/Check
//
// It serves grpc.health.v1.Health; a real server registers its own
// services in the same place.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/hammer-go/hammerredis"
	hammergrpc "github.com/hammer-go/hammerredis/contrib/grpc"
	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/memory"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:50051", "the address to serve gRPC on")
	redisURL := flag.String("redis", "", "the Redis to count in, e.g. redis://127.0.0.1:6379; in process when empty")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if err := run(ctx, lis, *redisURL, slog.Default()); err != nil {
		log.Fatal(err)
	}
}

// run serves on lis until ctx ends, then stops gracefully.
func run(ctx context.Context, lis net.Listener, redisURL string, logger *slog.Logger) error {
	// Buckets live a little longer than the longest window.
	const expiryMs = 2 * 60_000
	local, err := memory.New(memory.Options{ExpiryMs: expiryMs})
	if err != nil {
		return err
	}
	defer local.Close()
	cfg := hammer.Config{
		Limits: []hammer.Limit{
			{Name: "per-second", Scale: time.Second, Max: 5},
			{Name: "per-minute", Scale: time.Minute, Max: 100},
		},
		Logger: logger,
	}
	var backend hammer.CheckBackend = local
	if redisURL != "" {
		b, err := hammerredis.Start(hammerredis.Options{RedisURL: redisURL, ExpiryMs: expiryMs, Logger: logger})
		if err != nil {
			return err
		}
		defer hammerredis.Stop(b)
		backend = b
		// While Redis is away, each instance limits in process at its
		// share of the limits: a half with two instances.
		cfg.Fallback, cfg.FallbackShare = local, 0.5
	}
	checker, err := hammer.NewChecker(backend, cfg)
	if err != nil {
		return err
	}
	limiter, err := hammergrpc.New(hammergrpc.Config{
		Checker: checker,
		Keys:    hammergrpc.FirstOf(hammergrpc.Metadata("x-api-key"), hammergrpc.PeerIP),
		Logger:  logger,
	})
	if err != nil {
		return err
	}

	server := grpc.NewServer(
		grpc.ChainUnaryInterceptor(limiter.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(limiter.StreamServerInterceptor()),
	)
	grpc_health_v1.RegisterHealthServer(server, health.NewServer())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		server.GracefulStop()
	}()
	logger.Info("serving gRPC", "addr", lis.Addr().String(), "redis", redisURL != "")
	err = server.Serve(lis)
	<-stopped
	return err
}
