package hammer

import (
	"log/slog"
	"sync"
	"time"

	"github.com/hammer-go/hammerredis/internal/throttle"
)

// throttledLog logs the decisions in which a Shadow limit would have
// denied: the first at once, then at most one line per period, each with
// the number of such decisions since the previous line. Any checking
// goroutine runs note.
type throttledLog struct {
	logger *slog.Logger
	period time.Duration

	mu   sync.Mutex
	gate throttle.Gate
}

func newThrottledLog(logger *slog.Logger, period time.Duration) *throttledLog {
	return &throttledLog{logger: logger, period: period}
}

// note records d, a decision in which a Shadow limit denied, made at now.
func (t *throttledLog) note(now time.Time, d Decision) {
	t.mu.Lock()
	suppressed, ok := t.gate.Pass(now, t.period)
	t.mu.Unlock()
	if !ok {
		return
	}
	var names []string
	for _, l := range d.Limits {
		if l.Shadow && !l.Allowed {
			names = append(names, l.Name)
		}
	}
	t.logger.Info("hammer: a shadow limit would have denied a request", "limits", names,
		"allowed", d.Allowed, "suppressed", suppressed)
}
