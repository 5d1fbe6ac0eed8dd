package hammer

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// health is a Checker's degraded mode: whether Config.Fallback decides,
// and when the backend may be tried again. Any checking goroutine runs its
// methods; they never block.
type health struct {
	probeEvery time.Duration
	degraded   atomic.Bool
	nextTrial  atomic.Int64 // unix ns at which one check may try the backend
}

// connectedReporter is a backend that knows whether it has a connection,
// as *hammerredis.Backend does: while it has none, a trial would fail at
// once and is not made.
type connectedReporter interface {
	Connected() bool
}

// tryBackend reports whether a check at now goes to the backend: always
// when not degraded, else one check per probeEvery (the trial), and none
// while the backend reports itself disconnected.
func (h *health) tryBackend(b CheckBackend, now time.Time) bool {
	if !h.degraded.Load() {
		return true
	}
	next := h.nextTrial.Load()
	if now.UnixNano() < next {
		return false
	}
	if cr, ok := b.(connectedReporter); ok && !cr.Connected() {
		return false
	}
	return h.nextTrial.CompareAndSwap(next, now.UnixNano()+int64(h.probeEvery))
}

// failed records a backend call made at now that failed: the checker is
// degraded until a trial succeeds.
func (h *health) failed(logger *slog.Logger, err error, share float64, now time.Time) {
	h.nextTrial.Store(now.UnixNano() + int64(h.probeEvery))
	if !h.degraded.Swap(true) {
		logger.Warn("hammer: the rate-limit backend failed; limiting in process (degraded mode)",
			"error", err, "share", share)
	}
}

// succeeded records a backend call that worked: it hands back to the
// backend.
func (h *health) succeeded(logger *slog.Logger) {
	if h.degraded.Load() && h.degraded.Swap(false) {
		logger.Info("hammer: the rate-limit backend answers again; degraded mode ends")
	}
}
