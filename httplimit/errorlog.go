package httplimit

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hammer-go/hammerredis/internal/throttle"
)

// errorLog logs backend errors without flooding the log during an outage:
// the first error at once, then at most one line a second, each with the
// number of errors not logged since the previous line, and one line when the
// backend answers again after an error was logged.
type errorLog struct {
	logger *slog.Logger
	policy ErrorPolicy
	now    func() time.Time

	dirty atomic.Bool // down, or errors held back: a success has something to do

	mu    sync.Mutex
	gate  throttle.Gate // which errors get a line
	total int64         // errors since the latest recovery line
	down  bool          // an error line was logged and no recovery line since
}

func newErrorLog(logger *slog.Logger, policy ErrorPolicy, now func() time.Time) *errorLog {
	return &errorLog{logger: logger, policy: policy, now: now}
}

// failure records a backend error and logs it unless a line was logged less
// than a second ago.
func (l *errorLog) failure(err error) {
	l.mu.Lock()
	l.dirty.Store(true)
	l.total++
	suppressed, ok := l.gate.Pass(l.now(), time.Second)
	if !ok {
		l.mu.Unlock()
		return
	}
	l.down = true
	l.mu.Unlock()
	l.logger.Error("httplimit: rate limit backend error", "error", err, "policy", l.policy.String(),
		"suppressed", suppressed)
}

// success records a backend call that worked: after an error line, it logs
// that the backend is back.
func (l *errorLog) success() {
	if !l.dirty.Load() {
		return
	}
	l.mu.Lock()
	if !l.down {
		// Errors within a second of an error line, after its recovery line:
		// the next error line reports them.
		l.dirty.Store(false)
		l.mu.Unlock()
		return
	}
	suppressed, total := l.gate.Take(), l.total
	l.total, l.down = 0, false
	l.dirty.Store(false)
	l.mu.Unlock()
	l.logger.Info("httplimit: rate limit backend recovered", "errors", total, "suppressed", suppressed)
}
