package hammerredis_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/hammer"
)

// countHitLua is the backend's count_hit script, for the bare redigo
// baseline.
var countHitLua = redis.NewScript(1, hammerredis.CountHitLua)

var benchIDs = func() []string {
	ids := make([]string, 100_000)
	for i := range ids {
		ids[i] = "user:" + strconv.Itoa(i)
	}
	return ids
}()

// randomID picks uniformly among 100k ids; hotID sends 90% of the hits to
// ten ids.
func randomID(r *rand.Rand) string { return benchIDs[r.IntN(len(benchIDs))] }

func hotID(r *rand.Rand) string {
	if r.IntN(10) < 9 {
		return benchIDs[r.IntN(10)]
	}
	return randomID(r)
}

func startBench(b *testing.B, opts hammerredis.Options) *hammerredis.Backend {
	b.Helper()
	opts.ExpiryMs, opts.RedisURL, opts.KeyPrefix = 60_000, redisURL, "B:"
	opts.Logger = slog.New(slog.DiscardHandler)
	backend, err := hammerredis.Start(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { hammerredis.Stop(backend) })
	if err := backend.WaitConnected(context.Background()); err != nil {
		b.Fatal(err)
	}
	return backend
}

// runCallers counts hits from callers goroutines, on ids from pick.
func runCallers(b *testing.B, backend *hammerredis.Backend, callers int, pick func(*rand.Rand) string) {
	b.ReportAllocs()
	b.SetParallelism(max(callers/runtime.GOMAXPROCS(0), 1))
	bucket := int64(rand.Uint32()) // fresh buckets for every run
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for pb.Next() {
			if _, err := backend.CountHit(context.Background(), hammerredis.BucketKey{Bucket: bucket, ID: pick(r)}, 1); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCountHit compares, in one run on the tests' private
// redis-server, a bare redigo round trip of the count_hit script with the
// backend: serially (latency), and from many callers (throughput), with
// pipelining, hot-key coalescing and the pool on and off.
func BenchmarkCountHit(b *testing.B) {
	b.Run("redigo-conn/serial", func(b *testing.B) {
		c, err := redis.Dial("tcp", shared.Addr())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		r := rand.New(rand.NewPCG(1, 2))
		serial(b, func() error {
			_, err := redis.Int64(countHitLua.Do(c, "B:"+randomID(r)+":1", 1, 1, 61))
			return err
		})
	})
	b.Run("backend/serial", func(b *testing.B) {
		backend := startBench(b, hammerredis.Options{})
		r := rand.New(rand.NewPCG(1, 2))
		serial(b, func() error {
			_, err := backend.CountHit(context.Background(), hammerredis.BucketKey{Bucket: 1, ID: randomID(r)}, 1)
			return err
		})
	})
	for _, cfg := range []struct {
		name string
		opts hammerredis.Options
		pick func(*rand.Rand) string
	}{
		{"random", hammerredis.Options{}, randomID},
		{"random/unpipelined", hammerredis.Options{MaxPipeline: 1}, randomID},
		{"random/pool=4", hammerredis.Options{PoolSize: 4}, randomID},
		{"hot", hammerredis.Options{}, hotID},
		{"hot/uncoalesced", hammerredis.Options{DisableCoalescing: true}, hotID},
	} {
		for _, callers := range []int{4, 16, 64, 256} {
			b.Run(fmt.Sprintf("backend/%s/callers=%d", cfg.name, callers), func(b *testing.B) {
				runCallers(b, startBench(b, cfg.opts), callers, cfg.pick)
			})
		}
	}
}

// serial runs op back to back and reports, besides the mean, the median
// and the 99th percentile of its latency.
func serial(b *testing.B, op func() error) {
	b.ReportAllocs()
	lat := make([]time.Duration, 0, 1<<16)
	for b.Loop() {
		begin := time.Now()
		if err := op(); err != nil {
			b.Fatal(err)
		}
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(begin))
		}
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}

// BenchmarkTransaction compares the two atomic forms of count_hit on one
// connection, pipelined 64 deep: the Lua script the backend runs, and the
// MULTI/EXEC transaction the Elixir library sends. It is why the backend
// uses the script (and the script also leaves a key of another type alone).
func BenchmarkTransaction(b *testing.B) {
	const depth = 64
	c, err := redis.Dial("tcp", shared.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := countHitLua.Load(c); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	run := func(b *testing.B, send func(key string) error, replies int) {
		b.ReportAllocs()
		for b.Loop() {
			for range depth {
				if err := send("T:" + randomID(r) + ":1"); err != nil {
					b.Fatal(err)
				}
			}
			if err := c.Flush(); err != nil {
				b.Fatal(err)
			}
			for range depth * replies {
				if _, err := c.Receive(); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N*depth)/b.Elapsed().Seconds(), "hits/s")
	}
	b.Run("lua", func(b *testing.B) {
		run(b, func(key string) error { return countHitLua.SendHash(c, key, 1, 1, 61) }, 1)
	})
	b.Run("multi-exec", func(b *testing.B) {
		run(b, func(key string) error {
			c.Send("MULTI")
			c.Send("HINCRBY", key, "count", 1)
			c.Send("HSETNX", key, "created", 1)
			c.Send("HSET", key, "updated", 1)
			c.Send("EXPIRE", key, 61)
			return c.Send("EXEC")
		}, 6)
	})
}

// BenchmarkCheck compares, in one run on the tests' private redis-server,
// one request checked against two limits (10/s and 1000/h per id) three
// ways: hammer.Checker's one Check (one script run), the same two limits as
// two CheckRate calls one after the other (two round trips), and one
// CheckRate (one limit), the baseline, from many callers on random ids.
func BenchmarkCheck(b *testing.B) {
	for _, callers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("checker-2-limits/callers=%d", callers), func(b *testing.B) {
			c, err := hammer.NewChecker(startBench(b, hammerredis.Options{}), hammer.Config{Limits: []hammer.Limit{
				{Name: "s", Scale: time.Second, Max: 10}, {Name: "h", Scale: time.Hour, Max: 1000},
			}})
			if err != nil {
				b.Fatal(err)
			}
			runChecks(b, callers, func(id string) error { _, err := c.Check(context.Background(), id); return err })
		})
		b.Run(fmt.Sprintf("checkrate-twice/callers=%d", callers), func(b *testing.B) {
			l := hammer.New(startBench(b, hammerredis.Options{}))
			runChecks(b, callers, func(id string) error {
				if _, err := l.CheckRate(context.Background(), "s:"+id, time.Second, 10); err != nil {
					return err
				}
				_, err := l.CheckRate(context.Background(), "h:"+id, time.Hour, 1000)
				return err
			})
		})
		b.Run(fmt.Sprintf("checkrate-once/callers=%d", callers), func(b *testing.B) {
			l := hammer.New(startBench(b, hammerredis.Options{}))
			runChecks(b, callers, func(id string) error {
				_, err := l.CheckRate(context.Background(), id, time.Second, 10)
				return err
			})
		})
	}
}

// runChecks runs check from callers goroutines on random ids.
func runChecks(b *testing.B, callers int, check func(id string) error) {
	b.ReportAllocs()
	b.SetParallelism(max(callers/runtime.GOMAXPROCS(0), 1))
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for pb.Next() {
			if err := check(randomID(r)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}
