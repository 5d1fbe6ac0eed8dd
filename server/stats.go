package server

import (
	"context"
	"errors"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/hammer-go/hammerredis/protocol"
)

// Stats is a snapshot of a server's counters since it was created. Counters
// only grow; take differences between snapshots for rates.
type Stats struct {
	// Connected reports whether a connection is up at the snapshot.
	Connected bool
	// Calls counts finished calls by operation, whatever their outcome.
	Calls OpCounts
	// Errors counts failed calls by kind.
	Errors ErrorCounts
	// Connects counts connections established.
	Connects uint64
	// Restarts counts connections lost: each ends Serve with an error so
	// that the supervisor restarts it.
	Restarts uint64
	// DialFailures counts failed connection attempts.
	DialFailures uint64
	// QueueDepth is how many calls wait in the queue at the snapshot, and
	// QueueCapacity how many it holds.
	QueueDepth, QueueCapacity int
	// InAir is how many calls were written to Redis and wait for their
	// replies at the snapshot: 0 whenever the backend is idle.
	InAir int
	// Latency is the distribution of call durations as the callers saw
	// them, from the call to its reply or error.
	Latency Histogram
}

// OpCounts counts calls by operation.
type OpCounts struct {
	CountHit, GetBucket, DeleteBuckets uint64
}

// Total returns the sum over all operations.
func (c OpCounts) Total() uint64 { return c.CountHit + c.GetBucket + c.DeleteBuckets }

// ErrorCounts counts failed calls by the sentinel error they matched.
type ErrorCounts struct {
	Closed, Disconnected, Timeout, Canceled, Stopped, Invalid, Redis, BadReply, Other uint64
}

// Total returns the sum over all kinds.
func (c ErrorCounts) Total() uint64 {
	return c.Closed + c.Disconnected + c.Timeout + c.Canceled + c.Stopped + c.Invalid + c.Redis + c.BadReply + c.Other
}

// Histogram is a latency distribution in power-of-two buckets.
type Histogram struct {
	// Count is the number of observations and Sum their total.
	Count uint64
	Sum   time.Duration
	// Buckets holds, for each upper bound in ascending order, the number of
	// observations at most that long (cumulative, as Prometheus wants). The
	// last bucket's bound is the largest finite one; longer observations
	// count only in Count.
	Buckets []Bucket
}

// Bucket is one cumulative histogram bucket.
type Bucket struct {
	UpperBound time.Duration
	Count      uint64
}

// Quantile estimates the q-quantile (0 < q <= 1) as the upper bound of the
// bucket that holds it: at most twice the true value. It returns 0 without
// observations.
func (h Histogram) Quantile(q float64) time.Duration {
	if h.Count == 0 {
		return 0
	}
	rank := uint64(q*float64(h.Count) + 0.5)
	rank = max(rank, 1)
	for _, b := range h.Buckets {
		if b.Count >= rank {
			return b.UpperBound
		}
	}
	return h.Buckets[len(h.Buckets)-1].UpperBound
}

// Mean returns the average observation, 0 without observations.
func (h Histogram) Mean() time.Duration {
	if h.Count == 0 {
		return 0
	}
	return h.Sum / time.Duration(h.Count)
}

// Latency buckets: 1µs << i for i in [0, latencyBuckets): 1µs up to about
// 34s, the longest a call can take with the default timeouts and then some.
const latencyBuckets = 26

// stats holds the live counters; every field is updated atomically, so
// recording never locks and never allocates.
type stats struct {
	calls        [3]atomic.Uint64 // by opIndex
	errors       [9]atomic.Uint64 // by errIndex
	connects     atomic.Uint64
	restarts     atomic.Uint64
	dialFailures atomic.Uint64
	inAir        atomic.Int64 // a gauge: Server.inAir, published
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

func (st *stats) snapshot() Stats {
	var s Stats
	s.Calls = OpCounts{st.calls[0].Load(), st.calls[1].Load(), st.calls[2].Load()}
	e := &st.errors
	s.Errors = ErrorCounts{e[0].Load(), e[1].Load(), e[2].Load(), e[3].Load(), e[4].Load(),
		e[5].Load(), e[6].Load(), e[7].Load(), e[8].Load()}
	s.Connects = st.connects.Load()
	s.Restarts = st.restarts.Load()
	s.DialFailures = st.dialFailures.Load()
	s.InAir = int(st.inAir.Load())
	s.Latency.Count = st.latCount.Load()
	s.Latency.Sum = time.Duration(st.latSum.Load())
	s.Latency.Buckets = make([]Bucket, latencyBuckets)
	var cum uint64
	for i := range latencyBuckets {
		cum += st.latBuckets[i].Load()
		s.Latency.Buckets[i] = Bucket{UpperBound: time.Microsecond << i, Count: cum}
	}
	return s
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	st := s.stats.snapshot()
	st.Connected = s.Connected()
	st.QueueDepth = len(s.requests)
	st.QueueCapacity = cap(s.requests)
	return st
}

// Add returns the sum of two snapshots, as of a pool of servers: counters,
// queues and histograms add up; Connected holds when both hold.
func (s Stats) Add(o Stats) Stats {
	r := s
	r.Connected = s.Connected && o.Connected
	c, oc := &r.Calls, o.Calls
	c.CountHit, c.GetBucket, c.DeleteBuckets = c.CountHit+oc.CountHit, c.GetBucket+oc.GetBucket, c.DeleteBuckets+oc.DeleteBuckets
	e, oe := &r.Errors, o.Errors
	e.Closed += oe.Closed
	e.Disconnected += oe.Disconnected
	e.Timeout += oe.Timeout
	e.Canceled += oe.Canceled
	e.Stopped += oe.Stopped
	e.Invalid += oe.Invalid
	e.Redis += oe.Redis
	e.BadReply += oe.BadReply
	e.Other += oe.Other
	r.Connects += o.Connects
	r.Restarts += o.Restarts
	r.DialFailures += o.DialFailures
	r.QueueDepth += o.QueueDepth
	r.QueueCapacity += o.QueueCapacity
	r.InAir += o.InAir
	r.Latency.Count += o.Latency.Count
	r.Latency.Sum += o.Latency.Sum
	r.Latency.Buckets = append([]Bucket(nil), s.Latency.Buckets...)
	for i := range r.Latency.Buckets {
		if i < len(o.Latency.Buckets) {
			r.Latency.Buckets[i].Count += o.Latency.Buckets[i].Count
		}
	}
	return r
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
func (r *Recorder) Snapshot() Stats { return r.st.snapshot() }
