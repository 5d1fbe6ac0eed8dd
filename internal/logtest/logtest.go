// Package logtest records slog output so that tests can wait for a logged
// event (a connection, a restart) instead of sleeping, and can check what was
// logged, for example that no password ever was.
package logtest

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// Recorder is a slog.Handler that keeps every record, formatted as text.
type Recorder struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on every record
	attrs   []slog.Attr
	parent  *Recorder
}

// New returns an empty recorder.
func New() *Recorder { return &Recorder{changed: make(chan struct{})} }

// Logger returns a logger writing to r.
func (r *Recorder) Logger() *slog.Logger { return slog.New(r) }

func (r *Recorder) root() *Recorder {
	if r.parent != nil {
		return r.parent
	}
	return r
}

// Enabled implements slog.Handler: every level is recorded.
func (r *Recorder) Enabled(context.Context, slog.Level) bool { return true }

// Handle implements slog.Handler.
func (r *Recorder) Handle(_ context.Context, rec slog.Record) error {
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
	if err := h.WithAttrs(r.attrs).Handle(context.Background(), rec); err != nil {
		return err
	}
	root := r.root()
	root.mu.Lock()
	root.lines = append(root.lines, strings.TrimSpace(buf.String()))
	close(root.changed)
	root.changed = make(chan struct{})
	root.mu.Unlock()
	return nil
}

// WithAttrs implements slog.Handler.
func (r *Recorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Recorder{parent: r.root(), attrs: append(append([]slog.Attr{}, r.attrs...), attrs...)}
}

// WithGroup implements slog.Handler; groups are flattened.
func (r *Recorder) WithGroup(string) slog.Handler { return r }

// Lines returns every record so far, one formatted line each.
func (r *Recorder) Lines() []string {
	root := r.root()
	root.mu.Lock()
	defer root.mu.Unlock()
	return append([]string(nil), root.lines...)
}

// String returns every record so far, one per line.
func (r *Recorder) String() string { return strings.Join(r.Lines(), "\n") }

// Count returns how many records so far contain substr.
func (r *Recorder) Count(substr string) int {
	n := 0
	for _, l := range r.Lines() {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// WaitCount waits until at least n records contain substr, failing the test
// after timeout. It wakes on each new record: no polling.
func (r *Recorder) WaitCount(t testing.TB, substr string, n int, timeout time.Duration) {
	t.Helper()
	root := r.root()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		root.mu.Lock()
		ch := root.changed
		root.mu.Unlock()
		if r.Count(substr) >= n {
			return
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("logtest: waited %v for %d records containing %q; the log:\n%s", timeout, n, substr, r)
		}
	}
}
