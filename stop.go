package hammerredis

import "time"

// removeTimeout bounds the wait for a parent supervisor to drop a stopped
// backend; the backend's goroutine is already gone by then.
const removeTimeout = 10 * time.Second

// Stop stops the backend, closes its connection and waits until its
// goroutine is gone; calls after Stop return ErrStopped. A backend started
// with StartLink, or added to a supervisor by hand, also leaves its
// supervisor. Stop is idempotent and safe to call concurrently with calls.
// Elixir: stop/0.
func Stop(b *Backend) error {
	if b == nil {
		return nil
	}
	b.stop()
	b.mu.Lock()
	r, parent, token := b.running, b.parent, b.token
	b.mu.Unlock()
	if r != nil {
		r.Stop()
	}
	if parent != nil {
		// The stopped Serve already told the parent not to restart it; this
		// waits until the parent has dropped it. A parent that is not
		// running has nothing to drop.
		_ = parent.RemoveAndWait(token, removeTimeout)
	}
	return nil
}
