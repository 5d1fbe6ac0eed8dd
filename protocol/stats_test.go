package protocol

import (
	"reflect"
	"testing"
	"time"
)

// hist returns a histogram with bounds 1µs, 2µs, 4µs, ... and the given
// cumulative counts, the last one being Count.
func hist(sum time.Duration, counts ...uint64) Histogram {
	h := Histogram{Sum: sum}
	for i, c := range counts {
		h.Buckets = append(h.Buckets, Bucket{UpperBound: time.Microsecond << i, Count: c})
		h.Count = c
	}
	return h
}

func TestHistogramQuantileAndMean(t *testing.T) {
	h := hist(30*time.Microsecond, 2, 2, 7, 10)
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.01, time.Microsecond}, // rank 1 at least
		{0.2, time.Microsecond},
		{0.3, 4 * time.Microsecond},
		{0.7, 4 * time.Microsecond},
		{0.8, 8 * time.Microsecond}, // rank rounds to nearest: 8
		{1, 8 * time.Microsecond},
	}
	for _, tt := range tests {
		if got := h.Quantile(tt.q); got != tt.want {
			t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if got, want := h.Mean(), 3*time.Microsecond; got != want {
		t.Errorf("Mean() = %v, want %v", got, want)
	}
	// Observations past the last bound count only in Count: the estimate is
	// the last bound.
	h.Count = 20
	if got, want := h.Quantile(0.99), 8*time.Microsecond; got != want {
		t.Errorf("Quantile(0.99) past the last bound = %v, want %v", got, want)
	}
	if got := (Histogram{}).Quantile(0.5); got != 0 {
		t.Errorf("Histogram{}.Quantile(0.5) = %v, want 0", got)
	}
	if got := (Histogram{}).Mean(); got != 0 {
		t.Errorf("Histogram{}.Mean() = %v, want 0", got)
	}
}

func TestCountsTotal(t *testing.T) {
	if got := (OpCounts{CountHit: 1, GetBucket: 2, DeleteBuckets: 4, Hit: 8, Inc: 16, Set: 32, Get: 64}).Total(); got != 127 {
		t.Errorf("OpCounts.Total() = %d, want 127", got)
	}
	e := ErrorCounts{Closed: 1, Disconnected: 2, Timeout: 4, Canceled: 8, Stopped: 16,
		Invalid: 32, Redis: 64, BadReply: 128, Other: 256}
	if got := e.Total(); got != 511 {
		t.Errorf("ErrorCounts.Total() = %d, want 511", got)
	}
}

// statsOf returns a snapshot whose every counter is n times a different
// factor, so that a sum of two snapshots is the snapshot of the summed n,
// and a field added into another would show.
func statsOf(n uint64, connected bool) Stats {
	i := int(n)
	return Stats{
		Connected: connected,
		Calls: OpCounts{CountHit: n, GetBucket: 2 * n, DeleteBuckets: 3 * n,
			Hit: 19 * n, Inc: 20 * n, Set: 21 * n, Get: 22 * n},
		Errors: ErrorCounts{Closed: 4 * n, Disconnected: 5 * n, Timeout: 6 * n, Canceled: 7 * n,
			Stopped: 8 * n, Invalid: 9 * n, Redis: 10 * n, BadReply: 11 * n, Other: 12 * n},
		Connects: 13 * n, Restarts: 14 * n, DialFailures: 15 * n,
		QueueDepth: 16 * i, QueueCapacity: 17 * i, InAir: 18 * i,
		Latency: hist(time.Duration(n)*time.Microsecond, n, 2*n),
	}
}

func TestStatsAdd(t *testing.T) {
	a, b := statsOf(1, true), statsOf(10, false)
	if got, want := a.Add(b), statsOf(11, false); !reflect.DeepEqual(got, want) {
		t.Errorf("Add = %+v, want %+v", got, want)
	}
	if got := a.Add(a); !got.Connected {
		t.Errorf("Add of two connected snapshots: Connected = false, want true")
	}
	// Add copies the buckets: the operands are left as they were.
	if a.Latency.Buckets[1].Count != 2 {
		t.Errorf("Add changed its receiver's buckets: %+v", a.Latency.Buckets)
	}
}
