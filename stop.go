package hammerredis

// Stop stops the backend, closes its connection and waits until its
// goroutine is gone; calls after Stop return ErrStopped. A backend started
// with StartLink, or added to a supervisor by hand, also leaves its
// supervisor. Stop is idempotent and safe to call concurrently with calls.
// Elixir: stop/0.
func Stop(b *Backend) error {
	if b == nil {
		return nil
	}
	b.srv.Stop()
	b.mu.Lock()
	r := b.running
	b.mu.Unlock()
	if r != nil {
		r.Stop()
	}
	return nil
}
