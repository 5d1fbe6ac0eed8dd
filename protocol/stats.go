package protocol

import "time"

// Stats is a snapshot of a server's counters since it was created, or of a
// whole backend's (see Add). Counters only grow; take differences between
// snapshots for rates. It is plain data: the server keeps the live counters
// and copies them out.
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

// OpCounts counts calls by operation: Hammer 6's, then Hammer 7's (Hit,
// Inc, Set, Get, over every algorithm), then Check (several limits at once).
type OpCounts struct {
	CountHit, GetBucket, DeleteBuckets uint64
	Hit, Inc, Set, Get                 uint64
	Check                              uint64
}

// Total returns the sum over all operations.
func (c OpCounts) Total() uint64 {
	return c.CountHit + c.GetBucket + c.DeleteBuckets + c.Hit + c.Inc + c.Set + c.Get + c.Check
}

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

// Bucket is one cumulative bucket of a latency [Histogram]; not to be
// confused with a rate-limit bucket ([BucketKey]).
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

// Add returns the sum of two snapshots, as of a pool of servers: counters,
// queues and histograms add up; Connected holds when both hold.
func (s Stats) Add(o Stats) Stats {
	r := s
	r.Connected = s.Connected && o.Connected
	c, oc := &r.Calls, o.Calls
	c.CountHit, c.GetBucket, c.DeleteBuckets = c.CountHit+oc.CountHit, c.GetBucket+oc.GetBucket, c.DeleteBuckets+oc.DeleteBuckets
	c.Hit, c.Inc, c.Set, c.Get = c.Hit+oc.Hit, c.Inc+oc.Inc, c.Set+oc.Set, c.Get+oc.Get
	c.Check += oc.Check
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
