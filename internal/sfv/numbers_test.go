package sfv

import (
	"testing"
	"time"
)

func TestSeconds(t *testing.T) {
	for d, want := range map[time.Duration][2]int64{
		0: {0, 0}, -time.Second: {0, 0}, time.Nanosecond: {1, 0}, time.Second: {1, 1},
		1001 * time.Millisecond: {2, 0}, time.Hour: {3600, 3600},
	} {
		if c, w := CeilSeconds(d), WholeSeconds(d); c != want[0] || w != want[1] {
			t.Errorf("%v: CeilSeconds %d, WholeSeconds %d; want %d", d, c, w, want)
		}
	}
}

func TestClamp(t *testing.T) {
	for n, want := range map[int64]int64{-1: 0, 0: 0, 7: 7, MaxInteger: MaxInteger, 1 << 50: MaxInteger} {
		if got := Clamp(n); got != want {
			t.Errorf("Clamp(%d) = %d; want %d", n, got, want)
		}
	}
}
