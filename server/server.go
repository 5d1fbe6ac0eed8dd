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
// [Server.DeleteBuckets] is the exception: it scans on a connection of its
// own, dialed on the caller's goroutine and closed after it (delete.go), so
// that rate checks never wait behind it.
//
// # Lifecycle
//
// Serve dials Redis, retrying with capped exponential backoff while Redis is
// unreachable, then serves requests until the connection breaks, its context
// is cancelled or [Server.Stop] is called. It pipelines: calls queued while
// others are in the air go out together (flight.go), and hits on one bucket
// queued together are coalesced (coalesce.go). A broken connection ends Serve
// with an error so that its supervisor restarts it; the restarted Serve dials
// again. A call made before the first connection attempt has ended waits for
// it; after that, while no connection is up, calls fail at once with
// protocol.ErrClosed. [Server.Redial] drops a working connection whose
// address is no longer the one to use.
//
// Package server does not import suture: *Server satisfies suture.Service by
// shape (Serve and String); package supervisor wires it into a tree.
//
// # Errors
//
// An error reply from Redis goes back to its caller (protocol.ErrRedis) and
// the connection stays. A request whose connection broke after it was taken
// gets protocol.ErrDisconnected or protocol.ErrTimeout: its outcome is
// unknown, and it is never re-sent. Only a call that Redis says did not run
// is sent again: NOSCRIPT, and a coalesced group refused before its first
// write (script.go).
package server

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
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
	DefaultMaxBackoff           = 800 * time.Millisecond
	DefaultQueueSize            = 1024
	DefaultMaxPipeline          = 256
)

// stableAfter is how long a connection must live for the next reconnection
// to start without backoff: a flapping connection backs off like a dead one.
// The wait before a redial never passes MaxBackoff, so the backend serves
// again within MaxBackoff (plus a dial) of Redis being reachable.
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
	// Cluster says the server talks to a Redis Cluster node: a DEL names
	// keys of one slot only.
	Cluster bool
	// HashTag selects the key layout "<prefix>{<id>}:<bucket>" (see
	// protocol.Layout), not the Elixir library's.
	HashTag bool
	// QueueSize bounds the requests waiting for the server; default
	// DefaultQueueSize.
	QueueSize int
	// MaxPipeline bounds how many queued calls are written before their
	// replies are read; default DefaultMaxPipeline, 1 turns pipelining off.
	MaxPipeline int
	// DisableCoalescing sends every hit on its own, even when several hits
	// on one bucket are queued together (see coalesce.go).
	DisableCoalescing bool
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
	if c.MaxPipeline < 0 {
		return fmt.Errorf("%w: MaxPipeline must not be negative, got %d", protocol.ErrInvalid, c.MaxPipeline)
	}
	if c.MaxPipeline == 0 {
		c.MaxPipeline = DefaultMaxPipeline
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = protocol.DefaultKeyPrefix
	}
	if c.HashTag && strings.Contains(c.KeyPrefix, "{") {
		return fmt.Errorf("%w: KeyPrefix %q holds a '{', which the hash-tag layout cannot have", protocol.ErrInvalid, c.KeyPrefix)
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

	// tried is closed when the first connection attempt has ended, either
	// way: calls made before wait for it.
	tried     chan struct{}
	triedOnce sync.Once

	deleting chan struct{} // holds a token while a DeleteBuckets runs

	stats stats

	// Redial asks the serving connection to go: redialGen counts the
	// requests, redialWake wakes an idle loop.
	redialGen    atomic.Uint64
	redialWake   chan struct{}
	redialReason atomic.Pointer[string]

	serveMu   sync.Mutex
	serveDone chan struct{} // non-nil while Serve runs; closed when it returns

	// Owned by the goroutine running Serve, reused across batches so that
	// the hot path does not allocate.
	failures   int       // consecutive dial failures
	batch      []*call   // calls taken, to go out in the next flight
	flights    []*flight // written, waiting for replies, oldest first
	inAir      int       // calls in flights and not yet answered
	spare      []*flight // landed flights, for reuse
	args       []any     // the arguments of the command being written
	keyBuf     []byte    // the key of the command being written
	ttlArg     any       // the TTL, boxed once
	lastNow    int64     // see nowArg
	lastNowArg any
	lead, next []int32                      // see plan
	sum        []int64                      // see plan
	last       map[protocol.BucketKey]int32 // see plan
	// evalCoalesced sends the next coalesced group as EVAL with the
	// script's source: Redis lost the script (SCRIPT FLUSH, a failover) or
	// the user may not run SCRIPT LOAD, and EVAL puts it back in the cache.
	evalCoalesced bool
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
		tried:    make(chan struct{}),
		deleting: make(chan struct{}, 1),

		redialWake: make(chan struct{}, 1),
	}
	s.ttlArg = s.ttl
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

	gen := s.redialGen.Load() // a Redial from now on replaces this connection
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	// Closing the connection on cancellation unblocks a round trip in
	// progress, so Stop does not wait for a read timeout.
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()

	inc := &incarnation{down: make(chan struct{})}
	defer func() {
		// Also on panic: no taken call is left without an answer.
		s.eachTaken(func(c *call) {
			c.fail(fmt.Errorf("%w (%s): the server goroutine ended", protocol.ErrDisconnected, c.req.Op()))
		})
		s.reset()
		s.setLive(nil)
		close(inc.down)
	}()
	s.lastErr.Store(nil)
	s.setLive(inc)
	s.triedOnce.Do(func() { close(s.tried) })
	s.stats.connects.Add(1)
	born := time.Now()
	s.cfg.Logger.Info("hammerredis: connected to redis", "redis", s.cfg.Name)

	err = s.loop(ctx, conn, gen)
	if time.Since(born) >= stableAfter {
		s.failures = 0
	} else {
		// A connection that breaks at once counts as a failed dial: a
		// flapping server is redialed with the same backoff as a dead one,
		// which is what bounds the restarts (the supervisor does not pause).
		s.failures++
	}
	if ctx.Err() == nil {
		s.stats.restarts.Add(1)
		lost := err // not &err: the deferred functions above rewrite err
		s.lastErr.Store(&lost)
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
			err = s.prepare(ctx, conn)
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
		s.triedOnce.Do(func() { close(s.tried) })
		s.cfg.Logger.Warn("hammerredis: cannot connect to redis", "redis", s.cfg.Name,
			"error", err, "attempt", s.failures, "retry_in", s.backoff(s.failures))
	}
}

// prepare readies a new connection. Dialing did AUTH and SELECT; PING proves
// the server answers commands (not LOADING, not frozen), and loading the
// scripts saves the first EVALSHA a NOSCRIPT. A user without the right to run
// SCRIPT LOAD still works: count_hit falls back to EVAL after NOSCRIPT, and
// coalesced hits go out as EVAL first. Stop interrupts it, closing conn.
func (s *Server) prepare(ctx context.Context, conn redis.Conn) error {
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	_, err := conn.Do("PING")
	if err == nil {
		_, err = loadScript(conn, countHitScript)
	}
	if err == nil {
		var loaded bool
		loaded, err = loadScript(conn, coalescedScript)
		s.evalCoalesced = !loaded
	}
	if err != nil {
		conn.Close()
	}
	return err
}

// loadScript loads script; an error reply (such as NOPERM) is not an error
// of the connection.
func loadScript(conn redis.Conn, script *redis.Script) (loaded bool, err error) {
	if err := script.Load(conn); err != nil {
		return false, conn.Err()
	}
	return true, nil
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

// loop serves requests on conn until it breaks or ctx is done. While
// nothing is in the air it waits for a call; then it keeps taking the calls
// already queued, writing them as flights and reading replies, so that a
// lone caller is served at once and callers that queue up meanwhile share
// writes (see flight.go).
func (s *Server) loop(ctx context.Context, conn redis.Conn, gen uint64) error {
	var tick <-chan time.Time
	if s.cfg.HealthCheckInterval > 0 {
		t := time.NewTicker(s.cfg.HealthCheckInterval)
		defer t.Stop()
		tick = t.C
	}
	busy := false
	for {
		if !s.airborne() {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case c := <-s.requests:
				s.take(c)
				busy = true
			case <-tick:
				if !busy {
					if _, err := conn.Do("PING"); err != nil {
						return fmt.Errorf("health check: %w", err)
					}
				}
				busy = false
				continue
			case <-s.redialWake:
				if err := s.redialErr(gen); err != nil {
					return err
				}
				continue
			}
		} else {
			if err := s.redialErr(gen); err != nil {
				conn.Close()
				s.failTaken(conn, err)
				return err
			}
		}
		s.drain()
		s.launch(conn, s.batch, false, true)
		clear(s.batch) // the calls go back to a pool once answered
		s.batch = s.batch[:0]
		switch {
		case conn.Err() != nil:
		case s.airborne():
			s.receive(conn)
		}
		if err := conn.Err(); err != nil {
			s.failTaken(conn, err)
			return err
		}
	}
}

// failTaken answers every call the server holds when the connection goes:
// those in the air have an unknown outcome, the others were never sent.
func (s *Server) failTaken(conn redis.Conn, err error) {
	s.failAirborne(conn, err)
	failUnsent(s.batch)
	clear(s.batch)
	s.batch = s.batch[:0]
}

// reset drops every reference to calls between connections.
func (s *Server) reset() {
	for _, f := range s.flights {
		s.freeFlight(f)
	}
	clear(s.flights)
	s.flights = s.flights[:0]
	s.setInAir(0)
	clear(s.batch)
	s.batch = s.batch[:0]
}

// take adds c to the batch unless its caller has left: an abandoned call is
// never sent.
func (s *Server) take(c *call) {
	if c.take() {
		s.batch = append(s.batch, c)
	}
}
