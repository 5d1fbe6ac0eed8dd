package throttle

import (
	"testing"
	"time"
)

func TestGate(t *testing.T) {
	var g Gate
	t0 := time.Unix(1_800_000_000, 0)
	for _, step := range []struct {
		at     time.Duration
		ok     bool
		missed int64
	}{
		{0, true, 0},                       // the first at once
		{100 * time.Millisecond, false, 0}, // held back
		{999 * time.Millisecond, false, 0}, // held back
		{time.Second, true, 2},             // a period later, with the two held back
		{500 * time.Millisecond, false, 0}, // a clock gone back less than a period
		{-time.Second, true, 1},            // gone back a whole period
		{-time.Second + time.Millisecond, false, 0},
	} {
		missed, ok := g.Pass(t0.Add(step.at), time.Second)
		if ok != step.ok || missed != step.missed {
			t.Errorf("Pass(+%v) = %d, %v; want %d, %v", step.at, missed, ok, step.missed, step.ok)
		}
	}
	if n := g.Take(); n != 1 {
		t.Errorf("Take() = %d; want 1", n)
	}
	if n := g.Take(); n != 0 {
		t.Errorf("Take() again = %d; want 0", n)
	}
}
