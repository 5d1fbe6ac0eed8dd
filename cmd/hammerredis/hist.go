package main

import (
	"math/bits"
	"time"
)

// latencies is a log-bucketed histogram of durations for bench. Each power of
// two is cut into 2^histSubBits equal buckets, so a quantile read from it is
// within 1/2^histSubBits (about 3%) of the true value. Recording allocates
// nothing and takes no lock: every caller goroutine owns one, and they are
// merged once the measurement is over.
type latencies struct {
	counts [histBuckets]uint64
	n      uint64
}

const (
	histSubBits = 5
	histSub     = 1 << histSubBits
	// histBuckets covers every uint64: values under histSub get one bucket
	// each, and each higher power of two histSub more.
	histBuckets = (64 - histSubBits + 1) * histSub
)

// histIndex returns the bucket of v ns.
func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	// v has its top bit at position top >= histSubBits; keep the
	// histSubBits bits below it as the position within its power of two.
	top := bits.Len64(v) - 1
	shift := top - histSubBits
	return (shift+1)*histSub + int(v>>shift) - histSub
}

// histLow returns the smallest value of bucket i, in ns.
func histLow(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	shift := i/histSub - 1
	return uint64(histSub+i%histSub) << shift
}

// record adds one duration; negative ones count as 0.
func (h *latencies) record(d time.Duration) {
	h.counts[histIndex(uint64(max(d, 0)))]++
	h.n++
}

// merge adds o's durations to h.
func (h *latencies) merge(o *latencies) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the q-quantile (0 < q <= 1) as the middle of the bucket
// that holds it, or 0 when nothing was recorded.
func (h *latencies) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := max(uint64(q*float64(h.n)+0.5), 1)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			if i == histBuckets-1 {
				return time.Duration(histLow(i))
			}
			lo, hi := histLow(i), histLow(i+1)
			return time.Duration(lo + (hi-lo)/2)
		}
	}
	return time.Duration(histLow(histBuckets - 1))
}
