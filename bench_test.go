package hammerredis_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/hammer-go/hammerredis"
)

// countHitLua is the backend's count_hit script, for the bare redigo
// baseline.
var countHitLua = redis.NewScript(1, `
local count = redis.call('HINCRBY', KEYS[1], 'count', ARGV[2])
redis.call('HSETNX', KEYS[1], 'created', ARGV[1])
redis.call('HSET', KEYS[1], 'updated', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return count
`)

// BenchmarkCountHit compares, in one run on the tests' private
// redis-server, the backend's CountHit with a bare redigo round trip of the
// same script: serially (latency) and from GOMAXPROCS*4 goroutines
// (throughput through the single connection).
func BenchmarkCountHit(b *testing.B) {
	ctx := context.Background()
	backend, err := hammerredis.Start(hammerredis.Options{ExpiryMs: 60_000, RedisURL: redisURL, KeyPrefix: "B:"})
	if err != nil {
		b.Fatal(err)
	}
	defer hammerredis.Stop(backend)
	if err := backend.WaitConnected(ctx); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = "user:" + strconv.Itoa(i)
	}

	b.Run("redigo-conn/serial", func(b *testing.B) {
		c, err := redis.Dial("tcp", shared.Addr())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := redis.Int64(countHitLua.Do(c, "B:"+ids[i%len(ids)]+":1", 1, 1, 61)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("backend/serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := backend.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: ids[i%len(ids)]}, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, callers := range []int{8, 64, 256} {
		b.Run(fmt.Sprintf("backend/callers=%d", callers), func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(callers / runtime.GOMAXPROCS(0))
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					if _, err := backend.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: ids[i%int64(len(ids))]}, 1); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	b.Run("backend/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(4)
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				if _, err := backend.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: ids[i%int64(len(ids))]}, 1); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
