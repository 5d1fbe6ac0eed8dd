package server

import (
	"context"
	"errors"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/hammer-go/hammerredis/protocol"
)

// Latency buckets: 1µs << i for i in [0, latencyBuckets): 1µs up to about
// 34s, the longest a call can take with the default timeouts and then some.
const latencyBuckets = 26

// stats holds the live counters behind a protocol.Stats snapshot; every field is updated atomically, so
// recording never locks and never allocates.
type stats struct {
	calls        [8]atomic.Uint64 // by opIndex
	errors       [9]atomic.Uint64 // by errIndex
	connects     atomic.Uint64
	restarts     atomic.Uint64
	dialFailures atomic.Uint64
	inAir        atomic.Int64 // a gauge: conn.inAir, published
	latCount     atomic.Uint64
	latSum       atomic.Int64
	latBuckets   [latencyBuckets]atomic.Uint64 // not cumulative
}

// opIndex: calls hold their request by pointer (see call).
func opIndex(req protocol.Request) int {
	switch req.(type) {
	case *protocol.CountHit:
		return 0
	case *protocol.GetBucket:
		return 1
	case *protocol.Hit:
		return 3
	case *protocol.Inc:
		return 4
	case *protocol.Set:
		return 5
	case *protocol.Get:
		return 6
	case *protocol.Check:
		return 7
	default:
		return 2
	}
}

// errIndex orders the checks so that an error matching several kinds (a
// caller's deadline is both a timeout and a context error) counts once.
func errIndex(err error) int {
	switch {
	case errors.Is(err, protocol.ErrClosed):
		return 0
	case errors.Is(err, protocol.ErrDisconnected):
		return 1
	case errors.Is(err, protocol.ErrTimeout):
		return 2
	case errors.Is(err, context.Canceled):
		return 3
	case errors.Is(err, protocol.ErrStopped):
		return 4
	case errors.Is(err, protocol.ErrInvalid):
		return 5
	case errors.Is(err, protocol.ErrRedis):
		return 6
	case errors.Is(err, protocol.ErrBadReply):
		return 7
	default:
		return 8
	}
}

// record counts one finished call.
func (st *stats) record(req protocol.Request, err error, took time.Duration) {
	st.calls[opIndex(req)].Add(1)
	if err != nil {
		st.errors[errIndex(err)].Add(1)
	}
	st.latCount.Add(1)
	st.latSum.Add(int64(took))
	us := uint64(max(took/time.Microsecond, 1))
	// The smallest i with 1µs<<i >= took.
	i := bits.Len64(us - 1)
	if i < latencyBuckets {
		st.latBuckets[i].Add(1)
	}
}

func (st *stats) snapshot() protocol.Stats {
	var s protocol.Stats
	c := &st.calls
	s.Calls = protocol.OpCounts{CountHit: c[0].Load(), GetBucket: c[1].Load(), DeleteBuckets: c[2].Load(),
		Hit: c[3].Load(), Inc: c[4].Load(), Set: c[5].Load(), Get: c[6].Load(), Check: c[7].Load()}
	e := &st.errors
	s.Errors = protocol.ErrorCounts{Closed: e[0].Load(), Disconnected: e[1].Load(), Timeout: e[2].Load(),
		Canceled: e[3].Load(), Stopped: e[4].Load(), Invalid: e[5].Load(), Redis: e[6].Load(),
		BadReply: e[7].Load(), Other: e[8].Load()}
	s.Connects = st.connects.Load()
	s.Restarts = st.restarts.Load()
	s.DialFailures = st.dialFailures.Load()
	s.InAir = int(st.inAir.Load())
	s.Latency.Count = st.latCount.Load()
	s.Latency.Sum = time.Duration(st.latSum.Load())
	s.Latency.Buckets = make([]protocol.Bucket, latencyBuckets)
	var cum uint64
	for i := range latencyBuckets {
		cum += st.latBuckets[i].Load()
		s.Latency.Buckets[i] = protocol.Bucket{UpperBound: time.Microsecond << i, Count: cum}
	}
	return s
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() protocol.Stats {
	st := s.stats.snapshot()
	st.Connected = s.Connected()
	st.QueueDepth = len(s.requests)
	st.QueueCapacity = cap(s.requests)
	return st
}

// Recorder counts calls made above the servers, as a Redis Cluster router
// does: a call that a redirect sent to two servers is one call of the
// router's. Its zero value is ready; it is safe for concurrent use.
type Recorder struct{ st stats }

// Record counts one finished call; req is held by pointer, as the servers'
// calls hold theirs.
func (r *Recorder) Record(req protocol.Request, err error, took time.Duration) {
	r.st.record(req, err, took)
}

// Snapshot returns the calls, errors and latencies recorded so far; the
// connection and queue fields are zero.
func (r *Recorder) Snapshot() protocol.Stats { return r.st.snapshot() }
