package httplimit_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/hammer7"
	"github.com/hammer-go/hammerredis/httplimit"
	"github.com/hammer-go/hammerredis/memory"
)

// The examples that use Redis run against the private redis-server of the
// tests: redisURL is its address, e.g. "redis://127.0.0.1:6379".

func Example() {
	b, err := hammerredis.Start(hammerredis.Options{
		ExpiryMs:  60_000, // at least the longest Scale
		RedisURL:  redisURL,
		KeyPrefix: "example:httplimit:",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer hammerredis.Stop(b)
	if err := b.WaitConnected(context.Background()); err != nil {
		log.Fatal(err)
	}

	// A fixed clock keeps the example's window from ending between its two
	// requests; a service uses hammer.New(b) as it is.
	now := time.Date(2030, 1, 1, 12, 0, 30, 0, time.UTC)
	limiter := hammer.New(b).WithClock(func() time.Time { return now })

	limit, err := httplimit.New(httplimit.Config{
		Limiter: limiter,
		Scale:   time.Minute,
		Limit:   1, // one request per client IP per minute
	})
	if err != nil {
		log.Fatal(err)
	}
	h := limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	}))

	for range 2 {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "192.0.2.1:1234"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Printf("%d RateLimit-Policy: %s\n    RateLimit: %s\n    Retry-After: %q body=%q\n", w.Code,
			w.Header().Get("RateLimit-Policy"), w.Header().Get("RateLimit"),
			w.Header().Get("Retry-After"), w.Body.String())
	}
	limiter.DeleteBuckets(context.Background(), "http:ip:192.0.2.1")
	// Output:
	// 200 RateLimit-Policy: "default";q=1;w=60
	//     RateLimit: "default";r=0;t=30
	//     Retry-After: "" body="hello\n"
	// 429 RateLimit-Policy: "default";q=1;w=60
	//     RateLimit: "default";r=0;t=30
	//     Retry-After: "30" body="Too Many Requests: rate limit exceeded\n"
}

// A Hammer 7 limiter (here a fixed window, in package memory's backend;
// hammer7.SlidingWindow, LeakyBucket and TokenBucket plug in the same way)
// holds the numbers, so the Config needs nothing else. An allowed response
// carries no t: a Hammer 7 result only says when a denied request would
// fit.
func ExampleConfig_hammer7() {
	backend, err := memory.New(memory.Options{ExpiryMs: 60_000}) // or hammerredis.Start(...)
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	limiter, err := hammer7.New(backend, hammer7.FixWindow{Prefix: "MyApp.HTTP", Window: time.Minute, Limit: 1})
	if err != nil {
		log.Fatal(err)
	}
	// A fixed clock keeps the example's window from ending between its two
	// requests; a service uses the limiter as it is.
	now := time.Date(2100, 1, 1, 12, 0, 30, 0, time.UTC)
	limiter = limiter.WithClock(func() time.Time { return now })

	limit, err := httplimit.New(httplimit.Config{Hammer7: limiter, PolicyName: "api"}) // one request per client IP per minute
	if err != nil {
		log.Fatal(err)
	}
	h := limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := httplimit.Hammer7ResultFrom(r.Context())
		fmt.Fprintln(w, "hello, request", res.Count)
	}))

	for range 2 {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "192.0.2.1:1234"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Printf("%d policy=%s ratelimit=%s retry-after=%q body=%q\n", w.Code,
			w.Header().Get("RateLimit-Policy"), w.Header().Get("RateLimit"),
			w.Header().Get("Retry-After"), w.Body.String())
	}
	// Output:
	// 200 policy="api";q=1;w=60 ratelimit="api";r=0 retry-after="" body="hello, request 1\n"
	// 429 policy="api";q=1;w=60 ratelimit="api";r=0;t=30 retry-after="30" body="Too Many Requests: rate limit exceeded\n"
}
