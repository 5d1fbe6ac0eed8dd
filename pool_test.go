package hammerredis_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis"
)

// hammer runs callers goroutines that each count hits hits on the ids, and
// returns once all are done.
func hammerIDs(t *testing.T, b *hammerredis.Backend, ids []string, callers, hits int) {
	t.Helper()
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range hits {
				id := ids[(c+i)%len(ids)]
				if _, err := b.CountHit(context.Background(), hammerredis.BucketKey{Bucket: 1, ID: id}, int64(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestConcurrentCallsCountExactly(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts hammerredis.Options
	}{
		{"pipelined", hammerredis.Options{}},
		{"unpipelined", hammerredis.Options{MaxPipeline: 1}},
		{"small batches", hammerredis.Options{MaxPipeline: 3}},
		{"pool of 4", hammerredis.Options{PoolSize: 4}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, nil, tt.opts)
			ids := []string{"hot", "a", "b", "c", "d", "e", "f", "g"}
			const callers, hits = 64, 40
			hammerIDs(t, f.b, ids, callers, hits)
			var total int64
			for _, id := range ids {
				info, err := f.b.GetBucket(context.Background(), hammerredis.BucketKey{Bucket: 1, ID: id})
				require.NoError(t, err)
				require.NotNil(t, info, id)
				total += info.Count
				assert.Equal(t, int64(callers*hits/len(ids)), info.Count, "id %q", id)
			}
			assert.Equal(t, int64(callers*hits), total)
			st := f.b.Stats()
			assert.Equal(t, uint64(callers*hits), st.Calls.CountHit)
			assert.Zero(t, st.Errors.Total())
		})
	}
}

func TestPoolSpreadsIDsOverItsConnections(t *testing.T) {
	f := start(t, nil, hammerredis.Options{PoolSize: 4, RedixConfig: named("pool")})
	ids := make([]string, 64)
	for i := range ids {
		ids[i] = fmt.Sprint("user:", i)
	}
	hammerIDs(t, f.b, ids, 8, 64)
	list, err := redis.String(f.admin.Do("CLIENT", "LIST"))
	require.NoError(t, err)
	assert.Equal(t, 4, strings.Count(list, " name=pool "), "four connections")
	st := f.b.Stats()
	assert.Equal(t, uint64(4), st.Connects)
	assert.Equal(t, 4*1024, st.QueueCapacity)
	assert.True(t, st.Connected)
	assert.Equal(t, "hammerredis("+shared.Addr()+", pool 4)", f.b.String())

	// One connection dies: only its server redials, and every id still counts.
	killClient(t, f.admin, "pool")
	f.log.WaitCount(t, connectedMsg, 5, waitLong)
	require.NoError(t, f.b.WaitConnected(context.Background()))
	for _, id := range ids {
		_, err := f.b.CountHit(context.Background(), hammerredis.BucketKey{Bucket: 2, ID: id}, 1)
		require.NoError(t, err, id)
	}
	assert.Equal(t, uint64(5), f.b.Stats().Connects)
}

func TestPoolOptionsValidated(t *testing.T) {
	for _, opts := range []hammerredis.Options{
		{ExpiryMs: 1, PoolSize: -1},
		{ExpiryMs: 1, PoolSize: hammerredis.MaxPoolSize + 1},
		{ExpiryMs: 1, MaxPipeline: -1},
	} {
		_, err := hammerredis.New(opts)
		assert.ErrorIs(t, err, hammerredis.ErrInvalid, "%v", opts)
	}
}

func TestHotKeyCallersGetDistinctCountsAsIfOneByOne(t *testing.T) {
	for _, disable := range []bool{false, true} {
		t.Run(fmt.Sprint("DisableCoalescing=", disable), func(t *testing.T) {
			f := start(t, nil, hammerredis.Options{DisableCoalescing: disable})
			const callers, hits = 64, 20
			key := hammerredis.BucketKey{Bucket: 7, ID: "hot"}
			seen := make([]bool, callers*hits+1)
			var mu sync.Mutex
			var wg sync.WaitGroup
			for c := range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range hits {
						n, err := f.b.CountHit(context.Background(), key, int64(1000+c*hits+i))
						if !assert.NoError(t, err) {
							return
						}
						mu.Lock()
						assert.False(t, seen[n], "count %d returned twice", n)
						seen[n] = true
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			for n := 1; n <= callers*hits; n++ {
				assert.True(t, seen[n], "no caller got count %d", n)
			}
			fields, err := redis.Strings(f.admin.Do("HGETALL", f.key("hot", 7)))
			require.NoError(t, err)
			require.Len(t, fields, 6)
			assert.Equal(t, []string{"count", fmt.Sprint(callers * hits), "created"}, fields[:3])
			assert.Equal(t, "updated", fields[4])
			assert.Equal(t, int64(61), do(t, f.admin, "TTL", f.key("hot", 7)))
		})
	}
}
