package hammerredis_test

import (
	"context"
	"fmt"
	"log"

	"github.com/thejerf/suture/v4"

	"github.com/hammer-go/hammerredis"
)

// The examples run against the private redis-server of the tests: redisURL
// is its address, e.g. "redis://127.0.0.1:6379".

func ExampleStart() {
	b, err := hammerredis.Start(hammerredis.Options{
		ExpiryMs: 60_000, // buckets live one minute after their latest hit
		RedisURL: redisURL,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer hammerredis.Stop(b)

	ctx := context.Background()
	if err := b.WaitConnected(ctx); err != nil {
		log.Fatal(err)
	}
	// Allow 2 requests per minute to user:42.
	const scaleMs, limit = 60_000, 2
	now := int64(1_700_000_000_000) // usually time.Now().UnixMilli()
	key := hammerredis.BucketKey{Bucket: now / scaleMs, ID: "example:start:user:42"}
	for range 3 {
		count, err := b.CountHit(ctx, key, now)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("count %d, allowed %t\n", count, count <= limit)
	}
	b.DeleteBuckets(ctx, key.ID)
	// Output:
	// count 1, allowed true
	// count 2, allowed true
	// count 3, allowed false
}

func ExampleStartLink() {
	ctx, cancel := context.WithCancel(context.Background())
	app := suture.NewSimple("app")
	done := app.ServeBackground(ctx)

	b, err := hammerredis.StartLink(app, hammerredis.Options{ExpiryMs: 60_000, RedisURL: redisURL})
	if err != nil {
		log.Fatal(err)
	}
	if err := b.WaitConnected(ctx); err != nil {
		log.Fatal(err)
	}
	key := hammerredis.BucketKey{Bucket: 1, ID: "example:startlink"}
	count, err := b.CountHitN(ctx, key, 1_700_000_000_000, 5)
	fmt.Println(count, err)
	b.DeleteBuckets(ctx, key.ID)

	cancel() // the tree stops, and the backend with it
	<-done
	_, err = b.CountHit(context.Background(), key, 1_700_000_000_001)
	fmt.Println(err)
	// Output:
	// 5 <nil>
	// hammerredis: backend stopped
}

func ExampleNew() {
	b, err := hammerredis.New(hammerredis.Options{ExpiryMs: 60_000, RedisURL: redisURL})
	if err != nil {
		log.Fatal(err)
	}
	// *Backend is a suture.Service: add it to any supervisor.
	sup := suture.NewSimple("app")
	sup.Add(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := sup.ServeBackground(ctx)
	defer func() { cancel(); <-done }()

	fmt.Println(b.WaitConnected(ctx))
	// Output: <nil>
}

func ExampleBackend_GetBucket() {
	b, err := hammerredis.Start(hammerredis.Options{ExpiryMs: 60_000, RedisURL: redisURL})
	if err != nil {
		log.Fatal(err)
	}
	defer hammerredis.Stop(b)
	ctx := context.Background()
	b.WaitConnected(ctx)

	key := hammerredis.BucketKey{Bucket: 28333333, ID: "example:get"}
	info, err := b.GetBucket(ctx, key)
	fmt.Println(info, err) // no bucket yet

	b.CountHitN(ctx, key, 1_700_000_000_000, 3)
	b.CountHit(ctx, key, 1_700_000_000_250)
	info, err = b.GetBucket(ctx, key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("count %d, created %d, updated %d\n", info.Count, info.Created, info.Updated)
	b.DeleteBuckets(ctx, key.ID)
	// Output:
	// <nil> <nil>
	// count 4, created 1700000000000, updated 1700000000250
}

func ExampleBackend_DeleteBuckets() {
	b, err := hammerredis.Start(hammerredis.Options{ExpiryMs: 60_000, RedisURL: redisURL})
	if err != nil {
		log.Fatal(err)
	}
	defer hammerredis.Stop(b)
	ctx := context.Background()
	b.WaitConnected(ctx)

	for bucket := range int64(2) {
		b.CountHit(ctx, hammerredis.BucketKey{Bucket: bucket, ID: "example:user"}, 1)
	}
	b.CountHit(ctx, hammerredis.BucketKey{Bucket: 0, ID: "example:user:admin"}, 1)

	n, err := b.DeleteBuckets(ctx, "example:user")
	fmt.Println(n, err)
	// Another id that merely starts with "example:user:" keeps its bucket.
	info, _ := b.GetBucket(ctx, hammerredis.BucketKey{Bucket: 0, ID: "example:user:admin"})
	fmt.Println(info.Count)
	b.DeleteBuckets(ctx, "example:user:admin")
	// Output:
	// 2 <nil>
	// 1
}
