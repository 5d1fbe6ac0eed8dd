// Package server runs the goroutine that owns one Redis connection and
// answers hammerredis calls over a request channel.
//
// # Concurrency
//
// A [Server] is a handle: its methods are safe for concurrent use by any
// number of goroutines. The redis.Conn never leaves the goroutine running
// [Server.Serve]; callers only send typed requests (package protocol) on the
// handle's channel and wait for the reply. The channel lives on the handle,
// not in Serve, so callers keep the same handle while Serve is restarted.
//
// # Lifecycle
//
// Serve dials Redis, retrying with capped exponential backoff while Redis is
// unreachable, then serves requests until the connection breaks, its context
// is cancelled or [Server.Stop] is called. A broken connection ends Serve
// with an error so that its supervisor restarts it; the restarted Serve dials
// again. While no connection is up, calls fail at once with
// protocol.ErrClosed.
//
// Package server does not import suture: *Server satisfies suture.Service by
// shape (Serve and String); package supervisor wires it into a tree.
//
// # Errors
//
// An error reply from Redis goes back to its caller (protocol.ErrRedis) and
// the connection stays. A request whose connection broke after it was taken
// gets protocol.ErrDisconnected or protocol.ErrTimeout: its outcome is
// unknown, and it is never re-sent.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/protocol"
)

// Defaults for the zero values of Config.
const (
	DefaultCallTimeout          = 5 * time.Second
	DefaultDeleteBucketsTimeout = 5 * time.Second
	DefaultHealthCheckInterval  = time.Second
	DefaultMinBackoff           = 50 * time.Millisecond
	DefaultMaxBackoff           = time.Second
	DefaultQueueSize            = 1024
)

// stableAfter is how long a connection must live for the next reconnection
// to start without backoff: a flapping connection backs off like a dead one.
const stableAfter = time.Second

// Config configures a Server. Zero values mean the documented defaults.
type Config struct {
	// Dial opens a new connection to Redis. Required.
	Dial func(ctx context.Context) (redis.Conn, error)
	// Name identifies the server in logs and String, e.g. "127.0.0.1:6379".
	// It must not hold a password.
	Name string
	// ExpiryMs is the bucket expiry in ms; the TTL is ExpirySeconds of it.
	// Required, > 0.
	ExpiryMs int64
	// KeyPrefix is prepended to every key; "" means protocol.DefaultKeyPrefix.
	KeyPrefix string
	// CallTimeout bounds a call when the caller's context has no earlier
	// deadline; default DefaultCallTimeout.
	CallTimeout time.Duration
	// DeleteBucketsTimeout replaces CallTimeout for DeleteBuckets; default
	// DefaultDeleteBucketsTimeout.
	DeleteBucketsTimeout time.Duration
	// HealthCheckInterval is how often an idle connection is PINGed so that
	// a dead one is replaced before a caller needs it; default
	// DefaultHealthCheckInterval, negative disables.
	HealthCheckInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait between failed dials; it
	// doubles from MinBackoff up to MaxBackoff, with jitter. Defaults
	// DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// QueueSize bounds the requests waiting for the server; default
	// DefaultQueueSize.
	QueueSize int
	// Logger receives connection events; default slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Dial == nil {
		return fmt.Errorf("%w: server.Config.Dial is nil", protocol.ErrInvalid)
	}
	if c.ExpiryMs <= 0 {
		return fmt.Errorf("%w: ExpiryMs must be > 0, got %d", protocol.ErrInvalid, c.ExpiryMs)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"CallTimeout", &c.CallTimeout, DefaultCallTimeout},
		{"DeleteBucketsTimeout", &c.DeleteBucketsTimeout, DefaultDeleteBucketsTimeout},
		{"MinBackoff", &c.MinBackoff, DefaultMinBackoff},
		{"MaxBackoff", &c.MaxBackoff, DefaultMaxBackoff},
	} {
		if *d.v < 0 {
			return fmt.Errorf("%w: %s must not be negative, got %v", protocol.ErrInvalid, d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.MaxBackoff < c.MinBackoff {
		return fmt.Errorf("%w: MaxBackoff %v is less than MinBackoff %v", protocol.ErrInvalid, c.MaxBackoff, c.MinBackoff)
	}
	if c.HealthCheckInterval == 0 {
		c.HealthCheckInterval = DefaultHealthCheckInterval
	}
	if c.QueueSize < 0 {
		return fmt.Errorf("%w: QueueSize must not be negative, got %d", protocol.ErrInvalid, c.QueueSize)
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = protocol.DefaultKeyPrefix
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Server is the handle of one connection-owning goroutine. Create it with
// New, run it with Serve (usually under a supervisor), call it with Do.
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

	stats stats

	serveMu   sync.Mutex
	serveDone chan struct{} // non-nil while Serve runs; closed when it returns
	failures  int           // consecutive dial failures; owned by Serve
}

// incarnation is one connected run of Serve. down is closed after every call
// that Serve took has been answered.
type incarnation struct {
	down chan struct{}
}

// New validates cfg, applies its defaults and returns a server that is not
// yet running.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		ttl:      protocol.ExpirySeconds(cfg.ExpiryMs),
		requests: make(chan *call, cfg.QueueSize),
		notify:   make(chan struct{}),
	}
	s.stopCtx, s.stopFunc = context.WithCancel(context.Background())
	return s, nil
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

// Do sends req to the server goroutine and waits for its reply, at most until
// ctx is done or the call timeout passes. The reply's type matches req's.
func (s *Server) Do(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	if req == nil {
		return nil, fmt.Errorf("%w: nil request", protocol.ErrInvalid)
	}
	begin := time.Now()
	rep, err := s.do(ctx, req)
	s.stats.record(req, err, time.Since(begin))
	return rep, err
}

func (s *Server) do(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if s.Stopped() {
		return nil, protocol.ErrStopped
	}
	inc := s.live.Load()
	if inc == nil {
		return nil, s.closedErr()
	}
	timeout := s.cfg.CallTimeout
	if _, ok := req.(protocol.DeleteBuckets); ok {
		timeout = s.cfg.DeleteBucketsTimeout
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && !d.After(deadline) {
		deadline = d // the caller's deadline comes first: its error is the caller's
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadlineCause(ctx, deadline, errCallTimeout)
		defer cancel()
	}

	c := newCall(req, deadline)
	select {
	case s.requests <- c:
	case <-inc.down:
		return nil, s.downErr()
	case <-ctx.Done():
		return nil, waitErr(ctx, req)
	}
	select {
	case r := <-c.reply:
		return r.rep, r.err
	case <-inc.down:
		if c.abandon() {
			return nil, s.downErr()
		}
		// Taken: Serve answered it before closing down.
		select {
		case r := <-c.reply:
			return r.rep, r.err
		case <-ctx.Done():
			return nil, waitErr(ctx, req)
		}
	case <-ctx.Done():
		// Whether or not the server has taken it, the caller leaves now; an
		// abandoned call is never sent.
		c.abandon()
		return nil, waitErr(ctx, req)
	}
}

var errCallTimeout = errors.New("call timeout")

// waitErr says why a caller stopped waiting. A deadline, the caller's own or
// the call timeout, matches ErrTimeout; the caller's own also matches
// context.DeadlineExceeded. A cancellation is the context's error.
func waitErr(ctx context.Context, req protocol.Request) error {
	cause := context.Cause(ctx)
	switch {
	case cause == errCallTimeout:
		return fmt.Errorf("%w (%s): no reply within the call timeout", protocol.ErrTimeout, req.Op())
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w (%s): %w", protocol.ErrTimeout, req.Op(), context.DeadlineExceeded)
	default:
		return fmt.Errorf("hammerredis (%s): %w", req.Op(), ctx.Err())
	}
}

func (s *Server) closedErr() error {
	if p := s.lastErr.Load(); p != nil {
		return fmt.Errorf("%w: %v", protocol.ErrClosed, *p)
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

// Serve runs the server: it dials, serves requests, and returns when the
// connection breaks (an error, so a supervisor restarts it), when ctx is
// cancelled, or after Stop. Once ctx is cancelled or Stop is called, the
// server is stopped for good, as an Elixir process linked to its supervisor
// dies with it; Serve then returns an error matching protocol.ErrStopped.
// Only one Serve runs at a time; a second one returns an error at once.
func (s *Server) Serve(ctx context.Context) (err error) {
	s.serveMu.Lock()
	if s.serveDone != nil {
		s.serveMu.Unlock()
		return fmt.Errorf("hammerredis: %s is already being served", s)
	}
	done := make(chan struct{})
	s.serveDone = done
	s.serveMu.Unlock()
	defer func() {
		s.serveMu.Lock()
		s.serveDone = nil
		s.serveMu.Unlock()
		close(done)
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.stopCtx, cancel)()
	defer func() {
		if ctx.Err() != nil {
			// Cancelled by Stop or by the supervisor: stopped for good.
			s.stopFunc()
			err = fmt.Errorf("%w: %w", protocol.ErrStopped, context.Cause(ctx))
		}
	}()

	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	// Closing the connection on cancellation unblocks a round trip in
	// progress, so Stop does not wait for a read timeout.
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()

	inc := &incarnation{down: make(chan struct{})}
	var taken []*call // calls taken and not yet answered
	defer func() {
		// Also on panic: no taken call is left without an answer.
		for _, c := range taken {
			c.answer(nil, fmt.Errorf("%w (%s): the server goroutine ended", protocol.ErrDisconnected, c.req.Op()))
		}
		s.setLive(nil)
		close(inc.down)
	}()
	s.lastErr.Store(nil)
	s.setLive(inc)
	s.stats.connects.Add(1)
	born := time.Now()
	s.cfg.Logger.Info("hammerredis: connected to redis", "redis", s.cfg.Name)

	err = s.loop(ctx, conn, &taken)
	if time.Since(born) >= stableAfter {
		s.failures = 0
	}
	if ctx.Err() == nil {
		s.stats.restarts.Add(1)
		s.lastErr.Store(&err)
		s.cfg.Logger.Error("hammerredis: connection to redis lost", "redis", s.cfg.Name, "error", err)
	}
	return err
}

// connect dials until it succeeds or ctx is done, backing off after failures.
func (s *Server) connect(ctx context.Context) (redis.Conn, error) {
	for {
		if s.failures > 0 {
			d := s.backoff(s.failures)
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		conn, err := s.cfg.Dial(ctx)
		if err == nil {
			// Dialing does AUTH and SELECT; PING also proves the server
			// answers commands (not LOADING, not frozen).
			if _, err = conn.Do("PING"); err != nil {
				conn.Close()
			}
		}
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.failures++
		s.stats.dialFailures.Add(1)
		s.lastErr.Store(&err)
		s.cfg.Logger.Warn("hammerredis: cannot connect to redis", "redis", s.cfg.Name,
			"error", err, "attempt", s.failures, "retry_in", s.backoff(s.failures))
	}
}

// backoff returns the wait before dial attempt n+1 after n failures:
// MinBackoff doubled n-1 times, capped at MaxBackoff, minus up to 20% jitter
// so that many backends do not redial in step.
func (s *Server) backoff(n int) time.Duration {
	d := s.cfg.MinBackoff
	for i := 1; i < n && d < s.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.cfg.MaxBackoff)
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

// loop serves requests on conn until it breaks or ctx is done.
func (s *Server) loop(ctx context.Context, conn redis.Conn, taken *[]*call) error {
	var tick <-chan time.Time
	if s.cfg.HealthCheckInterval > 0 {
		t := time.NewTicker(s.cfg.HealthCheckInterval)
		defer t.Stop()
		tick = t.C
	}
	busy := false
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case c := <-s.requests:
			if !c.take() {
				continue // its caller has left: never send it
			}
			*taken = append((*taken)[:0], c)
			s.execute(conn, c)
			*taken = (*taken)[:0]
			if err := conn.Err(); err != nil {
				return err
			}
			busy = true
		case <-tick:
			if !busy {
				if _, err := conn.Do("PING"); err != nil {
					return fmt.Errorf("health check: %w", err)
				}
			}
			busy = false
		}
	}
}

// MaxBackoff returns the configured cap on the wait between dial attempts.
func (s *Server) MaxBackoff() time.Duration { return s.cfg.MaxBackoff }
