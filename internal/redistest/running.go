package redistest

import (
	"errors"
	"os"
	"sync"
)

// running is the process of a Server or a Sentinel, restarted in place: its
// methods are safe for concurrent use.
type running struct {
	mu sync.Mutex
	p  process // cmd is nil while the process is not running
}

// set records a freshly launched process.
func (r *running) set(p process) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.p = p
}

// Log returns the tail of the process's log.
func (r *running) Log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p.log == nil {
		return ""
	}
	return r.p.log.String()
}

// Pid returns the process id, or 0 when the process is not running.
func (r *running) Pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p.cmd == nil {
		return 0
	}
	return r.p.cmd.Process.Pid
}

// Kill sends SIGKILL and waits for the process to end. A server's data is
// lost unless it runs with Options.AppendOnly.
func (r *running) Kill() {
	r.mu.Lock()
	cmd, done := r.p.cmd, r.p.done
	r.p.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	cmd.Wait()
	<-done
}

// Signal sends sig (e.g. SIGSTOP, SIGCONT) to the running process.
func (r *running) Signal(sig os.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p.cmd == nil {
		return errors.New("redistest: the process is not running")
	}
	return r.p.cmd.Process.Signal(sig)
}
