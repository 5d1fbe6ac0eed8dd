package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis/protocol"
)

func TestStatsCountCallsErrorsAndConnections(t *testing.T) {
	calls := 0
	conn := &fakeConn{}
	conn.do = func(cmd string, args ...any) (any, error) {
		if cmd == "PING" {
			return "PONG", nil
		}
		calls++
		switch calls {
		case 1:
			return int64(1), nil
		case 2:
			return nil, redis.Error("WRONGTYPE x")
		case 3:
			return "odd", nil
		default:
			return nil, conn.breakWith(io.EOF)
		}
	}
	h := run(t, nil, conn)
	h.connected(t)
	ctx := context.Background()
	h.s.do(ctx, countHit("a"))                                           // ok
	h.s.do(ctx, countHit("a"))                                           // ErrRedis
	h.s.do(ctx, protocol.GetBucket{})                                    // ErrBadReply
	h.s.do(ctx, protocol.DeleteBuckets{ID: string(make([]byte, 2<<20))}) // ErrInvalid
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	h.s.do(cancelled, countHit("a")) // Canceled, or sent and then broken
	h.s.do(ctx, countHit("a"))       // ErrDisconnected
	<-h.errc
	h.s.do(ctx, countHit("a")) // ErrClosed

	st := h.s.Stats()
	assert.False(t, st.Connected)
	assert.Equal(t, protocol.OpCounts{CountHit: 5, GetBucket: 1, DeleteBuckets: 1}, st.Calls)
	e := st.Errors
	assert.Equal(t, uint64(1), e.Redis)
	assert.Equal(t, uint64(1), e.BadReply)
	assert.Equal(t, uint64(1), e.Invalid)
	assert.Equal(t, uint64(1), e.Closed)
	assert.Equal(t, uint64(2), e.Canceled+e.Disconnected)
	assert.Equal(t, uint64(6), e.Total())
	assert.Equal(t, uint64(1), st.Connects)
	assert.Equal(t, uint64(1), st.Restarts)
	assert.Equal(t, uint64(7), st.Latency.Count)
	assert.Equal(t, testConfig(nil).QueueSize, st.QueueCapacity)
	assert.Equal(t, uint64(7), st.Latency.Buckets[len(st.Latency.Buckets)-1].Count)
}

func TestStatsCountDialFailures(t *testing.T) {
	h := run(t, func(c *Config) { c.MinBackoff, c.MaxBackoff = time.Millisecond, time.Millisecond })
	h.log.WaitCount(t, "cannot connect", 3, 10*time.Second)
	assert.GreaterOrEqual(t, h.s.Stats().DialFailures, uint64(3))
}

func TestHistogram(t *testing.T) {
	var st stats
	for _, d := range []time.Duration{0, time.Microsecond, 3 * time.Microsecond, 100 * time.Microsecond, time.Millisecond, time.Hour} {
		st.record(protocol.GetBucket{}, nil, d)
	}
	h := st.snapshot().Latency
	assert.Equal(t, uint64(6), h.Count)
	assert.Equal(t, time.Microsecond, h.Buckets[0].UpperBound)
	assert.Equal(t, uint64(2), h.Buckets[0].Count, "0 and 1µs")
	assert.Equal(t, uint64(3), h.Buckets[2].Count, "3µs is in the 4µs bucket")
	assert.Equal(t, uint64(5), h.Buckets[len(h.Buckets)-1].Count, "an hour is past the last bound")
	assert.Equal(t, time.Microsecond, h.Quantile(0.2))
	assert.Equal(t, 128*time.Microsecond, h.Quantile(0.6))
	assert.Equal(t, 1024*time.Microsecond, h.Quantile(0.8))
	assert.Equal(t, (time.Hour+time.Millisecond+104*time.Microsecond)/6, h.Mean())
	assert.Zero(t, protocol.Histogram{}.Quantile(0.5))
	for i := 1; i < len(h.Buckets); i++ {
		require.Equal(t, 2*h.Buckets[i-1].UpperBound, h.Buckets[i].UpperBound)
	}
}

func BenchmarkStatsRecord(b *testing.B) {
	var st stats
	err := fmt.Errorf("x: %w", errors.New("y"))
	b.ReportAllocs()
	for b.Loop() {
		st.record(protocol.CountHit{}, err, 150*time.Microsecond)
	}
}
