package hammer7_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/hammer-go/hammerredis/hammer7"
	"github.com/hammer-go/hammerredis/memory"
)

// A fixed window of 2 hits per minute, Elixir's
//
//	use Hammer, backend: Hammer.Redis, algorithm: :fix_window, prefix: "MyApp.RateLimit"
//	MyApp.RateLimit.hit("user:42", 60_000, 2)
func Example() {
	backend, err := memory.New(memory.Options{ExpiryMs: 60_000}) // or hammerredis.Start(...)
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	limiter, err := hammer7.New(backend, hammer7.FixWindow{Prefix: "MyApp.RateLimit", Window: time.Minute, Limit: 2})
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	for range 3 {
		r, err := limiter.Hit(ctx, "user:42")
		if err != nil {
			log.Fatal(err) // the backend failed: decide to fail open or closed
		}
		if r.Allowed {
			fmt.Println("allowed, count", r.Count, "remaining", r.Remaining)
		} else {
			fmt.Println("denied until the minute ends:", r.RetryAfter <= time.Minute)
		}
	}
	// Output:
	// allowed, count 1 remaining 1
	// allowed, count 2 remaining 0
	// denied until the minute ends: true
}

// A test steps fix_window's clock. The clock must not be behind the
// backend's: a key expires at its window's end on the backend's clock, so a
// window that ended there counts nothing.
func ExampleLimiter_WithClock() {
	backend, _ := memory.New(memory.Options{ExpiryMs: 60_000})
	defer backend.Close()
	limiter, _ := hammer7.New(backend, hammer7.FixWindow{Prefix: "MyApp.RateLimit", Window: time.Minute, Limit: 1})
	now := time.Date(2100, 1, 1, 0, 0, 20, 250e6, time.UTC) // 20.25 s into a minute
	limiter = limiter.WithClock(func() time.Time { return now })

	ctx := context.Background()
	for _, step := range []time.Duration{0, 30 * time.Second, 9750 * time.Millisecond} {
		now = now.Add(step)
		r, _ := limiter.Hit(ctx, "user:42")
		fmt.Println(now.Format("15:04:05.000"), r.Allowed, r.Count, r.RetryAfter)
	}
	// Output:
	// 00:00:20.250 true 1 0s
	// 00:00:50.250 false 2 9.75s
	// 00:01:00.000 true 1 0s
}

// Ten hits in any ten seconds; each request may cost several.
func ExampleSlidingWindow() {
	backend, _ := memory.New(memory.Options{ExpiryMs: 60_000})
	defer backend.Close()
	limiter, err := hammer7.New(backend, hammer7.SlidingWindow{Prefix: "MyApp.SW", Window: 10 * time.Second, Limit: 10})
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	for _, cost := range []int64{6, 4, 1, 11} {
		r, _ := limiter.HitN(ctx, "user:42", cost)
		// A denied hit waits until enough units leave the window: at most
		// ten seconds here.
		fmt.Println(r.Allowed, r.Count, r.RetryAfter <= 10*time.Second, r.Never)
	}
	// Output:
	// true 6 true false
	// true 10 true false
	// false 10 true false
	// false 10 true true
}

// A bucket of 10 that leaks one unit per second: a burst of 10, then one
// per second.
func ExampleLeakyBucket() {
	backend, _ := memory.New(memory.Options{ExpiryMs: 60_000})
	defer backend.Close()
	limiter, err := hammer7.New(backend, hammer7.LeakyBucket{Prefix: "MyApp.LB", LeakPerSecond: 1, Capacity: 10})
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	r, _ := limiter.HitN(ctx, "queue:mail", 8)
	fmt.Println(r.Allowed, r.Count, r.Remaining)
	r, _ = limiter.HitN(ctx, "queue:mail", 5) // 3 units must leak first
	fmt.Println(r.Allowed, r.Count, r.RetryAfter > 2*time.Second && r.RetryAfter <= 3*time.Second)
	r, _ = limiter.HitN(ctx, "queue:mail", 11) // more than the bucket holds
	fmt.Println(r.Allowed, r.Never)
	// Output:
	// true 8 2
	// false 8 true
	// false true
}

// A bucket of 10 tokens, refilled at 2 per second; an export costs 4.
func ExampleTokenBucket() {
	backend, _ := memory.New(memory.Options{ExpiryMs: 60_000})
	defer backend.Close()
	limiter, err := hammer7.New(backend, hammer7.TokenBucket{Prefix: "MyApp.TB", RefillPerSecond: 2, Capacity: 10})
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	for range 3 {
		r, _ := limiter.HitN(ctx, "export:acme", 4)
		// The third waits for 2 more tokens: one second.
		fmt.Println(r.Allowed, r.Remaining, r.RetryAfter <= time.Second)
	}
	tokens, _ := limiter.Get(ctx, "export:acme")
	fmt.Println("tokens left:", tokens)
	// Output:
	// true 6 true
	// true 2 true
	// false 2 true
	// tokens left: 2
}

// Inc, Set and Get adjust a window's count without a limit check, for
// instance to charge work done elsewhere or to forgive a client.
func ExampleLimiter_Inc() {
	backend, _ := memory.New(memory.Options{ExpiryMs: 60_000})
	defer backend.Close()
	limiter, _ := hammer7.New(backend, hammer7.FixWindow{Prefix: "MyApp.Quota", Window: time.Hour, Limit: 100})
	ctx := context.Background()

	n, _ := limiter.Inc(ctx, "tenant:7", 120) // charged by a batch job
	fmt.Println("count", n)
	r, _ := limiter.Hit(ctx, "tenant:7")
	fmt.Println(r.Allowed, r.Count)
	n, _ = limiter.Set(ctx, "tenant:7", 0) // forgiven
	fmt.Println("count", n)
	r, _ = limiter.Hit(ctx, "tenant:7")
	fmt.Println(r.Allowed, r.Count)
	n, _ = limiter.Get(ctx, "tenant:7")
	fmt.Println("count", n)
	// Output:
	// count 120
	// false 121
	// count 0
	// true 1
	// count 1
}
