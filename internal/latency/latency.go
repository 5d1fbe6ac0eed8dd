// Package latency is the latency histogram of the benchmarks (the
// hammerredis bench command and the bench module): log-spaced buckets fine
// enough to read percentiles within about 3%, recorded without locks or
// allocations by one goroutine each and merged at the end.
//
// It is not the backend's own latency histogram (protocol.Histogram), whose
// power-of-two buckets are coarse and fixed for Prometheus.
package latency

import (
	"math/bits"
	"time"
)

// SubBuckets is how many equal buckets each power of two is cut into: a
// quantile read from a [Histogram] is within 1/SubBuckets of the true value.
const SubBuckets = 1 << subBits

const (
	subBits = 5
	// buckets covers every uint64: values under SubBuckets get one bucket
	// each, and each higher power of two SubBuckets more.
	buckets = (64 - subBits + 1) * SubBuckets
)

// Histogram is a log-bucketed histogram of durations. Each power of two is
// cut into SubBuckets equal buckets, so a quantile read from it is within
// 1/SubBuckets (about 3%) of the true value. Recording allocates nothing and
// takes no lock: it is not safe for concurrent use, so every recording
// goroutine owns one, and they are merged once the measurement is over. The
// zero value is empty and ready.
type Histogram struct {
	counts [buckets]uint64
	n      uint64
}

// index returns the bucket of v ns.
func index(v uint64) int {
	if v < SubBuckets {
		return int(v) // exact below SubBuckets
	}
	// v has its top bit at position top >= subBits; keep the subBits bits
	// below it as the position within its power of two.
	top := bits.Len64(v) - 1
	shift := top - subBits
	return (shift+1)*SubBuckets + int(v>>shift) - SubBuckets
}

// low returns the smallest value of bucket i, in ns.
func low(i int) uint64 {
	if i < SubBuckets {
		return uint64(i)
	}
	shift := i/SubBuckets - 1
	return uint64(SubBuckets+i%SubBuckets) << shift
}

// Record adds one duration; negative ones count as 0.
func (h *Histogram) Record(d time.Duration) {
	h.counts[index(uint64(max(d, 0)))]++
	h.n++
}

// Merge adds o's durations to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// Quantile returns the q-quantile (0 < q <= 1) as the middle of the bucket
// that holds it, or 0 when nothing was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := max(uint64(q*float64(h.n)+0.5), 1)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			if i == buckets-1 {
				return time.Duration(low(i))
			}
			lo, hi := low(i), low(i+1)
			return time.Duration(lo + (hi-lo)/2)
		}
	}
	return time.Duration(low(buckets - 1))
}
