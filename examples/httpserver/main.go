// Command httpserver is a net/http server whose routes are rate limited by
// hammerredis, each route group with limits of its own, as chi-style
// routers arrange them (here with net/http's own method and path
// patterns):
//
//   - /api/...: per API key (the X-API-Key header) 10 requests a second
//     and 1000 an hour, plus 100 a second per client address, all or
//     nothing (a request that one limit denies is counted by none), and a
//     daily limit of 20000 in shadow mode, watched before it is enforced;
//   - POST /login: 5 a minute per client address, failing closed when the
//     limiter is down;
//   - GET /healthz: never limited.
//
// The requests are counted in Redis when -redis is given, with an
// in-process fallback at half of each limit while Redis is away, else in
// process only.
//
//	go run ./examples/httpserver -redis redis://127.0.0.1:6379
//	curl -i -H 'X-API-Key: alice' http://127.0.0.1:8080/api/items/42
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/httplimit"
	"github.com/hammer-go/hammerredis/memory"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8080", "the address to serve HTTP on")
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

// expiryMs keeps the Hammer 6 buckets a little longer than the longest
// window (a day).
const expiryMs = 25 * 3600 * 1000

// run serves on lis until ctx ends, then shuts the server down.
func run(ctx context.Context, lis net.Listener, redisURL string, logger *slog.Logger) error {
	local, err := memory.New(memory.Options{ExpiryMs: expiryMs})
	if err != nil {
		return err
	}
	defer local.Close()
	var backend hammer.CheckBackend = local
	var fallback hammer.CheckBackend
	if redisURL != "" {
		b, err := hammerredis.Start(hammerredis.Options{RedisURL: redisURL, ExpiryMs: expiryMs, Logger: logger})
		if err != nil {
			return err
		}
		defer hammerredis.Stop(b)
		backend, fallback = b, local
	}
	mux, err := routes(backend, fallback, logger)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	stopped := make(chan error, 1)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stopped <- srv.Shutdown(sctx)
	}()
	logger.Info("serving HTTP", "addr", lis.Addr().String(), "redis", redisURL != "")
	if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return <-stopped
}

// routes returns the server's routes, each group behind its limits,
// counted in backend; with a fallback, each instance limits in process at
// half of every limit while backend is away (two instances).
func routes(backend, fallback hammer.CheckBackend, logger *slog.Logger) (http.Handler, error) {
	share := 0.0
	if fallback != nil {
		share = 0.5
	}
	api, err := hammer.NewChecker(backend, hammer.Config{
		Limits: []hammer.Limit{
			{Name: "per-second", Scale: time.Second, Max: 10},
			{Name: "per-hour", Scale: time.Hour, Max: 1000},
			{Name: "ip-per-second", Scale: time.Second, Max: 100},
			{Name: "per-day", Scale: 24 * time.Hour, Max: 20000, Shadow: true},
		},
		AllOrNothing: true,
		Fallback:     fallback, FallbackShare: share,
		Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	apiKey, clientIP := httplimit.Header("X-API-Key"), httplimit.ClientIP(nil)
	apiLimit, err := httplimit.New(httplimit.Config{
		Checker: api,
		// One key per limit, in the order of the checker's limits.
		Keys:   []httplimit.KeyFunc{apiKey, apiKey, clientIP, apiKey},
		Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	login, err := hammer.NewChecker(backend, hammer.Config{
		Limits:   []hammer.Limit{{Name: "login", Scale: time.Minute, Max: 5}},
		Fallback: fallback, FallbackShare: share,
		Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	loginLimit, err := httplimit.New(httplimit.Config{
		Checker: login,
		Key:     clientIP,
		OnError: httplimit.FailClosed, // never guess passwords unlimited
		Logger:  logger,
	})
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.Handle("GET /api/items/{id}", apiLimit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := httplimit.CheckResultFrom(r.Context())
		fmt.Fprintf(w, "item %s (degraded: %v)\n", r.PathValue("id"), d.Degraded)
	})))
	mux.Handle("POST /login", loginLimit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "welcome")
	})))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	return mux, nil
}
