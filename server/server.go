package server

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hammer-go/hammerredis/protocol"
)

// Server is the handle of one connection-owning goroutine. Create it with
// New, run it with Serve (usually under a supervisor), call it with Do. Its
// methods are for the callers' goroutines, except Serve and what Serve calls
// (serve.go), which run on the server goroutine; the state of a connection
// is not here but in conn.
type Server struct {
	cfg      Config
	ttl      int64 // bucket TTL in seconds
	requests chan *call

	// live is non-nil while a Serve holds a working connection.
	live    atomic.Pointer[incarnation]
	lastErr atomic.Pointer[error] // why the latest dial or connection failed

	stopCtx  context.Context
	stopFunc context.CancelFunc

	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced whenever live changes

	// tried is closed when the first connection attempt has ended, either
	// way: calls made before wait for it.
	tried     chan struct{}
	triedOnce sync.Once

	deleting chan struct{} // holds a token while a DeleteBuckets runs

	stats stats

	// Redial asks the serving connection to go: redialGen counts the
	// requests, redialWake wakes an idle conn.serve.
	redialGen    atomic.Uint64
	redialWake   chan struct{}
	redialReason atomic.Pointer[string]

	serveMu   sync.Mutex
	serveDone chan struct{} // non-nil while Serve runs; closed when it returns

	// failures counts consecutive failed dials, and connections that broke
	// at once, for the backoff before the next dial. Unlike the state of a
	// connection (conn), it outlives each connection; only the goroutine
	// running Serve touches it.
	failures int
}

// incarnation is one connected run of Serve. down is closed after every call
// that Serve took has been answered.
type incarnation struct {
	down chan struct{}
}

// New checks cfg (see Config) and returns a server that is not yet running.
// An invalid cfg gives an error matching protocol.ErrInvalid.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		ttl:      protocol.ExpirySeconds(cfg.ExpiryMs),
		requests: make(chan *call, cfg.QueueSize),
		notify:   make(chan struct{}),
		tried:    make(chan struct{}),
		deleting: make(chan struct{}, 1),

		redialWake: make(chan struct{}, 1),
	}
	s.stopCtx, s.stopFunc = context.WithCancel(context.Background())
	return s, nil
}

// layout is the server's key layout.
func (s *Server) layout() protocol.Layout {
	return protocol.Layout{Prefix: s.cfg.KeyPrefix, HashTag: s.cfg.HashTag}
}

// String names the server for supervisor logs. It never holds a password.
func (s *Server) String() string { return "hammerredis(" + s.cfg.Name + ")" }

// Connected reports whether a connection is up right now.
func (s *Server) Connected() bool { return s.live.Load() != nil }

// setLive publishes the running incarnation (nil: not connected) and wakes
// WaitConnected.
func (s *Server) setLive(inc *incarnation) {
	s.live.Store(inc)
	s.notifyMu.Lock()
	close(s.notify)
	s.notify = make(chan struct{})
	s.notifyMu.Unlock()
}

// WaitConnected waits until a connection is up (nil), the server is stopped
// (protocol.ErrStopped) or ctx is done (its error).
func (s *Server) WaitConnected(ctx context.Context) error {
	for {
		s.notifyMu.Lock()
		changed := s.notify
		s.notifyMu.Unlock()
		switch {
		case s.Stopped():
			return protocol.ErrStopped
		case s.Connected():
			return nil
		}
		select {
		case <-changed:
		case <-s.stopCtx.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Redial asks Serve to drop the connection it serves on, if it has one, and
// dial again: the address it dialed is no longer the one to use (the
// sentinels named another master). Calls in the air on that connection get
// ErrDisconnected; queued calls wait for the next connection. A connection
// dialed after Redial was called is kept. Any goroutine may call it; it
// never blocks.
func (s *Server) Redial(reason string) {
	s.redialReason.Store(&reason)
	s.redialGen.Add(1)
	select {
	case s.redialWake <- struct{}{}:
	default:
	}
}

// redialErr reports whether Redial was called since generation gen was
// read, before the serving connection was dialed.
func (s *Server) redialErr(gen uint64) error {
	if s.redialGen.Load() == gen {
		return nil
	}
	why := "asked to redial"
	if p := s.redialReason.Load(); p != nil {
		why = *p
	}
	return fmt.Errorf("replacing the connection: %s", why)
}

// Stopped reports whether the server was stopped for good.
func (s *Server) Stopped() bool { return s.stopCtx.Err() != nil }

// Stop stops the server for good: calls then fail with protocol.ErrStopped,
// and a running Serve closes its connection and returns. Stop waits for
// that. It is idempotent and safe to call concurrently.
func (s *Server) Stop() {
	s.stopFunc()
	s.serveMu.Lock()
	done := s.serveDone
	s.serveMu.Unlock()
	if done != nil {
		<-done
	}
}

func (s *Server) closedErr() error {
	if p := s.lastErr.Load(); p != nil {
		return fmt.Errorf("%w: %w", protocol.ErrClosed, *p)
	}
	return protocol.ErrClosed
}

// downErr is the error of a call that never reached a connection that has
// just gone down.
func (s *Server) downErr() error {
	if s.Stopped() {
		return protocol.ErrStopped
	}
	return s.closedErr()
}
