package latency

import (
	"math"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	if got := h.Quantile(0.5); got != 0 {
		t.Errorf("empty Quantile(0.5) = %v, want 0", got)
	}
	// 1µs to 1000µs, once each, in two halves merged.
	var a, b Histogram
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * time.Microsecond
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	h.Merge(&a)
	h.Merge(&b)
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 500 * time.Microsecond},
		{0.9, 900 * time.Microsecond},
		{0.99, 990 * time.Microsecond},
		{1, 1000 * time.Microsecond},
		{0.001, time.Microsecond},
	} {
		got := h.Quantile(tt.q)
		if math.Abs(float64(got-tt.want)) > float64(tt.want)/SubBuckets {
			t.Errorf("Quantile(%v) = %v, want %v within 1/%d", tt.q, got, tt.want, SubBuckets)
		}
	}
	// The same values recorded in one histogram give the same quantiles,
	// within the 4% the bench module checked.
	var one Histogram
	for i := 1; i <= 1000; i++ {
		one.Record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, 1000 * time.Microsecond}} {
		got := one.Quantile(tc.q)
		if diff := float64(got-tc.want) / float64(tc.want); diff < -0.04 || diff > 0.04 {
			t.Errorf("Quantile(%v) = %v, want %v within 4%%", tc.q, got, tc.want)
		}
		if merged := h.Quantile(tc.q); merged != got {
			t.Errorf("Quantile(%v) = %v recorded at once, %v merged from halves: want equal", tc.q, got, merged)
		}
	}
	// Small values are exact; negative ones count as 0.
	var s Histogram
	for _, d := range []time.Duration{-5, 3, 3, 7} {
		s.Record(d)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.25, 0}, {0.5, 3}, {0.75, 3}, {1, 7}} {
		if got := s.Quantile(tt.q); got != tt.want {
			t.Errorf("Quantile(%v) of -5, 3, 3, 7 ns = %v, want %v", tt.q, got, tt.want)
		}
	}
}

func TestHistogramBuckets(t *testing.T) {
	// Every value lies in its bucket, and the buckets follow each other.
	for _, v := range []uint64{0, 1, 31, 32, 33, 63, 64, 65, 1000, 123456789, 1 << 40, 1<<63 + 12345, math.MaxInt64, math.MaxUint64} {
		i := index(v)
		if i < 0 || i >= buckets || low(i) > v || (i+1 < buckets && low(i+1) <= v) {
			t.Errorf("index(%d) = %d, whose range starts at %d", v, i, low(i))
		}
	}
	for v := uint64(0); v < 1<<20; v += 1 + v/97 {
		i := index(v)
		if lo, hi := low(i), low(i+1); v < lo || v >= hi {
			t.Fatalf("index(%d) = %d, holding [%d, %d): want v inside", v, i, lo, hi)
		}
	}
	for i := 1; i < buckets; i++ {
		if low(i-1) >= low(i) {
			t.Fatalf("low(%d) = %d >= low(%d) = %d: want increasing", i-1, low(i-1), i, low(i))
		}
		if index(low(i)) != i || index(low(i)-1) != i-1 {
			t.Fatalf("bucket %d starts at %d, but index of it is %d", i, low(i), index(low(i)))
		}
	}
}

func TestHistogramRecordAllocatesNothing(t *testing.T) {
	var h Histogram
	h.Record(time.Microsecond)
	if allocs := testing.AllocsPerRun(100, func() { h.Record(time.Millisecond) }); allocs != 0 {
		t.Errorf("Record allocates %v times, want 0", allocs)
	}
}
