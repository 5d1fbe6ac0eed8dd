package memory_test

import (
	"context"
	"fmt"
	"log"
	"math"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/memory"
)

func ExampleNew() {
	b, err := memory.New(memory.Options{
		ExpiryMs: 60_000, // buckets live one minute after their latest hit
	})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	// Allow 2 requests per minute to user:42.
	ctx := context.Background()
	const scaleMs, limit = 60_000, 2
	now := int64(1_700_000_000_000) // usually time.Now().UnixMilli()
	key := hammerredis.BucketKey{Bucket: now / scaleMs, ID: "user:42"}
	for range 3 {
		count, err := b.CountHit(ctx, key, now)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("count %d, allowed %t\n", count, count <= limit)
	}
	// Output:
	// count 1, allowed true
	// count 2, allowed true
	// count 3, allowed false
}

func ExampleNew_invalid() {
	_, err := memory.New(memory.Options{})
	fmt.Println(err)
	// Output:
	// hammerredis: invalid argument: missing required option memory.Options.ExpiryMs (Elixir: expiry_ms)
}

func ExampleBackend_CountHitN() {
	b, err := memory.New(memory.Options{ExpiryMs: 60_000})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	ctx := context.Background()
	key := hammerredis.BucketKey{Bucket: 1, ID: "upload:42"}
	for _, inc := range []int64{5, 0, -2} {
		count, err := b.CountHitN(ctx, key, 1000, inc)
		fmt.Println(count, err)
	}
	// The count cannot pass math.MaxInt64: the hit fails as Redis's HINCRBY
	// does, with ErrRedis, and the bucket stays.
	_, err = b.CountHitN(ctx, key, 1001, math.MaxInt64)
	fmt.Println(err)
	bucket, _ := b.GetBucket(ctx, key)
	fmt.Println(bucket.Count)
	// Output:
	// 5 <nil>
	// 5 <nil>
	// 3 <nil>
	// hammerredis: redis error reply (count_hit): increment or decrement would overflow
	// 3
}

func ExampleBackend_GetBucket() {
	b, err := memory.New(memory.Options{ExpiryMs: 60_000})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	ctx := context.Background()
	key := hammerredis.BucketKey{Bucket: 28333333, ID: "user:42"}
	b.CountHit(ctx, key, 1_700_000_000_000)
	b.CountHit(ctx, key, 1_700_000_000_250)

	bucket, err := b.GetBucket(ctx, key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("count %d, created %d, updated %d\n", bucket.Count, bucket.Created, bucket.Updated)

	// No bucket is no error.
	bucket, err = b.GetBucket(ctx, hammerredis.BucketKey{Bucket: 28333333, ID: "user:43"})
	fmt.Println(bucket, err)
	// Output:
	// count 2, created 1700000000000, updated 1700000000250
	// <nil> <nil>
}

func ExampleBackend_DeleteBuckets() {
	b, err := memory.New(memory.Options{ExpiryMs: 60_000})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	ctx := context.Background()
	for bucket := range int64(3) {
		b.CountHit(ctx, hammerredis.BucketKey{Bucket: bucket, ID: "a"}, 1000)
	}
	b.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "a:b"}, 1000)

	// Only id "a"'s buckets go, never those of "a:b".
	n, err := b.DeleteBuckets(ctx, "a")
	fmt.Println(n, err)
	fmt.Println(b.Len())
	// Output:
	// 3 <nil>
	// 1
}

func ExampleBackend_Close() {
	b, err := memory.New(memory.Options{ExpiryMs: 60_000})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(b.Close())
	fmt.Println(b.Close()) // idempotent

	_, err = b.CountHit(context.Background(), hammerredis.BucketKey{Bucket: 1, ID: "x"}, 1000)
	fmt.Println(err)
	// Output:
	// <nil>
	// <nil>
	// hammerredis: backend stopped
}
