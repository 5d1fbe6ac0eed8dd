package hammer_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/memory"
)

func Example() {
	backend, err := memory.New(memory.Options{ExpiryMs: 60_000}) // or hammerredis.Start(...)
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	limiter := hammer.New(backend)

	ctx := context.Background()
	for range 3 {
		r, err := limiter.CheckRate(ctx, "upload:user:42", time.Minute, 2)
		if err != nil {
			log.Fatal(err) // the backend failed: decide to fail open or closed
		}
		fmt.Println(r.Allowed, r.Count, r.Remaining)
	}
	// Output:
	// true 1 1
	// true 2 0
	// false 3 0
}

func ExampleLimiter_MakeRateChecker() {
	backend, _ := memory.New(memory.Options{ExpiryMs: 1000})
	defer backend.Close()
	limiter := hammer.New(backend).WithClock(func() time.Time { return time.UnixMilli(1_700_000_000_250) })

	login := limiter.MakeRateChecker("login:", time.Second, 1)
	r, _ := login(context.Background(), "alice")
	fmt.Println(r.Allowed, r.ResetAfter)
	r, _ = login(context.Background(), "alice")
	fmt.Println(r.Allowed, r.ResetAfter)
	// Output:
	// true 750ms
	// false 750ms
}

func ExampleLimiter_InspectBucket() {
	backend, _ := memory.New(memory.Options{ExpiryMs: 60_000})
	defer backend.Close()
	limiter := hammer.New(backend).WithClock(func() time.Time { return time.UnixMilli(1_700_000_045_000) })
	ctx := context.Background()

	in, _ := limiter.InspectBucket(ctx, "api-key:abc", time.Minute, 100)
	fmt.Printf("count %d, remaining %d, next window in %dms, exists %t\n", in.Count, in.Remaining, in.MsToNextBucket, in.Exists)
	limiter.CheckRateInc(ctx, "api-key:abc", time.Minute, 100, 40)
	in, _ = limiter.InspectBucket(ctx, "api-key:abc", time.Minute, 100)
	fmt.Printf("count %d, remaining %d, created %d\n", in.Count, in.Remaining, in.Created)
	// Output:
	// count 0, remaining 100, next window in 55000ms, exists false
	// count 40, remaining 60, created 1700000045000
}
