package main

import (
	"math/bits"
	"time"
)

// histogram counts latencies in log-spaced buckets: subBits bits of
// resolution under each power of two, so a reported percentile is within
// 1/2^subBits (about 3%) of the true one. Recording allocates nothing.
type histogram struct {
	counts [64 << subBits]uint64
	n      uint64
}

const subBits = 5

// bucketOf returns the bucket holding v.
func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v) // exact below 2^subBits
	}
	// Shift v to keep its top subBits+1 bits: v>>e is in [2^subBits,
	// 2^(subBits+1)), and the buckets of each e follow those of e-1.
	e := bits.Len64(v) - 1 - subBits
	return e<<subBits + int(v>>e)
}

// bucketLow returns the smallest value in bucket i.
func bucketLow(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	e := i>>subBits - 1
	return (uint64(i&(1<<subBits-1)) + 1<<subBits) << e
}

// record adds one latency.
func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
}

// merge adds o's counts to h.
func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the q-quantile (0 < q <= 1), as the middle of its bucket;
// 0 when nothing was recorded.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketLow(i), bucketLow(i+1)
			return time.Duration(lo + (hi-lo)/2)
		}
	}
	return time.Duration(bucketLow(len(h.counts) - 1))
}
