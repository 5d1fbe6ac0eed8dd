package memory_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/hammer-go/hammerredis/memory"
	"github.com/hammer-go/hammerredis/protocol"
)

func ExampleBackend_Hit() {
	b, err := memory.New(memory.Options{ExpiryMs: 60_000})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	// A token bucket of 2 tokens, refilled by 1 a second. Elixir:
	// use Hammer, algorithm: :token_bucket, prefix: "MyApp.RateLimit".
	ctx := context.Background()
	p := protocol.Policy{Algorithm: protocol.TokenBucket, Prefix: "MyApp.RateLimit", Rate: 1, Limit: 2}
	for _, cost := range []int64{2, 2, 3} {
		r, err := b.Hit(ctx, protocol.Hit{Policy: p, ID: "user:42", Cost: cost, Now: time.Now().UnixMilli()})
		if err != nil {
			log.Fatal(err)
		}
		switch {
		case r.Allowed:
			fmt.Printf("cost %d: allowed, %d tokens left\n", cost, r.Count)
		case r.RetryAfterMs == protocol.Never:
			fmt.Printf("cost %d: never allowed\n", cost)
		case r.RetryAfterMs <= 2000: // the 2 tokens are back within 2 s
			fmt.Printf("cost %d: denied, retry within 2 s\n", cost)
		default:
			fmt.Printf("cost %d: denied, retry in %d ms\n", cost, r.RetryAfterMs)
		}
	}
	// Output:
	// cost 2: allowed, 0 tokens left
	// cost 2: denied, retry within 2 s
	// cost 3: never allowed
}
