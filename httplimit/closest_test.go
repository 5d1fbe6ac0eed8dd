package httplimit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/hammer-go/hammerredis/hammer"
)

func TestClosest(t *testing.T) {
	allowed := func(name string, remaining int64, reset time.Duration) hammer.LimitResult {
		return hammer.LimitResult{Name: name, Allowed: true, Remaining: remaining, Reset: reset}
	}
	denied := func(name string, wait time.Duration) hammer.LimitResult {
		return hammer.LimitResult{Name: name, RetryAfter: wait, Never: wait == 0}
	}
	shadow := func(l hammer.LimitResult) hammer.LimitResult { l.Shadow = true; return l }
	for _, tt := range []struct {
		name   string
		limits []hammer.LimitResult
		want   string
	}{
		{"the fewest left", []hammer.LimitResult{allowed("a", 5, time.Second), allowed("b", 2, time.Hour), allowed("c", 3, time.Minute)}, "b"},
		{"a tie: the longer reset", []hammer.LimitResult{allowed("a", 2, time.Second), allowed("b", 2, time.Hour)}, "b"},
		{"a full tie: the first", []hammer.LimitResult{allowed("a", 2, time.Second), allowed("b", 2, time.Second)}, "a"},
		{"a denial before any allowance", []hammer.LimitResult{allowed("a", 0, time.Hour), denied("b", time.Second)}, "b"},
		{"the longest wait", []hammer.LimitResult{denied("a", time.Second), denied("b", time.Minute), denied("c", time.Millisecond)}, "b"},
		{"never before any wait", []hammer.LimitResult{denied("a", time.Hour), denied("b", 0)}, "b"},
		{"never a shadow limit", []hammer.LimitResult{shadow(denied("a", time.Hour)), allowed("b", 5, time.Second)}, "b"},
		{"a shadow limit when all are", []hammer.LimitResult{shadow(allowed("a", 5, time.Second)), shadow(denied("b", time.Second))}, "b"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.limits[closest(tt.limits)].Name)
		})
	}
}
