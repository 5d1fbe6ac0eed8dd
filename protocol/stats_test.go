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
	if got := (OpCounts{CountHit: 1, GetBucket: 2, DeleteBuckets: 4}).Total(); got != 7 {
		t.Errorf("OpCounts.Total() = %d, want 7", got)
	}
	e := ErrorCounts{Closed: 1, Disconnected: 2, Timeout: 4, Canceled: 8, Stopped: 16,
		Invalid: 32, Redis: 64, BadReply: 128, Other: 256}
	if got := e.Total(); got != 511 {
		t.Errorf("ErrorCounts.Total() = %d, want 511", got)
	}
}

func TestStatsAdd(t *testing.T) {
	a := Stats{
		Connected: true,
		Calls:     OpCounts{CountHit: 1, GetBucket: 2, DeleteBuckets: 3},
		Errors: ErrorCounts{Closed: 1, Disconnected: 1, Timeout: 1, Canceled: 1, Stopped: 1,
			Invalid: 1, Redis: 1, BadReply: 1, Other: 1},
		Connects: 1, Restarts: 2, DialFailures: 3,
		QueueDepth: 4, QueueCapacity: 1024, InAir: 5,
		Latency: hist(10*time.Microsecond, 1, 3),
	}
	b := Stats{
		Connected: false,
		Calls:     OpCounts{CountHit: 10, GetBucket: 20, DeleteBuckets: 30},
		Errors: ErrorCounts{Closed: 2, Disconnected: 3, Timeout: 4, Canceled: 5, Stopped: 6,
			Invalid: 7, Redis: 8, BadReply: 9, Other: 10},
		Connects: 10, Restarts: 20, DialFailures: 30,
		QueueDepth: 40, QueueCapacity: 1024, InAir: 50,
		Latency: hist(5*time.Microsecond, 2, 2),
	}
	want := Stats{
		Connected: false,
		Calls:     OpCounts{CountHit: 11, GetBucket: 22, DeleteBuckets: 33},
		Errors: ErrorCounts{Closed: 3, Disconnected: 4, Timeout: 5, Canceled: 6, Stopped: 7,
			Invalid: 8, Redis: 9, BadReply: 10, Other: 11},
		Connects: 11, Restarts: 22, DialFailures: 33,
		QueueDepth: 44, QueueCapacity: 2048, InAir: 55,
		Latency: hist(15*time.Microsecond, 3, 5),
	}
	if got := a.Add(b); !reflect.DeepEqual(got, want) {
		t.Errorf("Add = %+v, want %+v", got, want)
	}
	if got := a.Add(a); !got.Connected {
		t.Errorf("Add of two connected snapshots: Connected = false, want true")
	}
	// Add copies the buckets: the operands are left as they were.
	if a.Latency.Buckets[1].Count != 3 {
		t.Errorf("Add changed its receiver's buckets: %+v", a.Latency.Buckets)
	}
}
