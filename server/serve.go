package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/protocol"
)

// Serve's loop: dial with backoff, serve one connection (conn.go) until it
// ends, and report how it ended. All of it runs on the goroutine running
// Serve.

// stableAfter is how long a connection must live for the next reconnection
// to start without backoff: a flapping connection backs off like a dead one.
// The wait before a redial never passes MaxBackoff, so the backend serves
// again within MaxBackoff (plus a dial) of Redis being reachable.
const stableAfter = time.Second

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
	cn, err := s.connect(ctx, gen)
	if err != nil {
		return err
	}
	// Closing the connection on cancellation unblocks a round trip in
	// progress, so Stop does not wait for a read timeout.
	defer cn.rc.Close()
	defer context.AfterFunc(ctx, func() { cn.rc.Close() })()

	inc := &incarnation{down: make(chan struct{})}
	defer func() {
		// Also on panic: no taken call is left without an answer.
		cn.eachTaken(func(c *call) {
			c.fail(fmt.Errorf("%w (%s): the server goroutine ended", protocol.ErrDisconnected, c.req.Op()))
		})
		s.stats.inAir.Store(0)
		s.setLive(nil)
		close(inc.down)
	}()
	s.lastErr.Store(nil)
	s.setLive(inc)
	s.markTried()
	s.stats.connects.Add(1)
	born := time.Now()
	s.cfg.Logger.Info("hammerredis: connected to redis", "redis", s.cfg.Name)

	err = cn.serve(ctx)
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

// connect dials until it succeeds or ctx is done, backing off after
// failures, and returns the new connection's state; gen is the Redial
// generation read before.
func (s *Server) connect(ctx context.Context, gen uint64) (*conn, error) {
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
		rc, err := s.cfg.Dial(ctx)
		var ready readiness
		if err == nil {
			ready, err = prepare(ctx, rc)
		}
		if err == nil {
			cn := newConn(s, rc, gen, !ready.coalescedLoaded)
			cn.tooOld7 = tooOld7(ready.version)
			return cn, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.failures++
		s.stats.dialFailures.Add(1)
		s.lastErr.Store(&err)
		s.markTried()
		s.cfg.Logger.Warn("hammerredis: cannot connect to redis", "redis", s.cfg.Name,
			"error", err, "attempt", s.failures, "retry_in", s.backoff(s.failures))
	}
}

// readiness is what prepare learned of a new connection.
type readiness struct {
	// coalescedLoaded: the coalesced and multi-key scripts are loaded.
	coalescedLoaded bool
	// version is the server's redis_version, "" when INFO was refused.
	version string
}

// prepare readies a new connection. Dialing did AUTH and SELECT; PING proves
// the server answers commands (not LOADING, not frozen), INFO tells its
// version (Hammer 7's calls need 7.0), and loading the scripts saves the
// first EVALSHA a NOSCRIPT. A user without the right to run SCRIPT LOAD
// or INFO still works: count_hit falls back to EVAL after NOSCRIPT, and
// coalesced and multi-key scripts go out as EVAL first (coalescedLoaded
// false); Hammer 7's scripts are left to the NOSCRIPT fallback. Stop
// interrupts it, closing rc.
func prepare(ctx context.Context, rc redis.Conn) (ready readiness, err error) {
	defer context.AfterFunc(ctx, func() { rc.Close() })()
	_, err = rc.Do("PING")
	if err == nil {
		var info string
		info, err = redis.String(rc.Do("INFO", "server"))
		if err != nil && rc.Err() == nil {
			info, err = "", nil // refused (NOPERM): the version stays unknown
		}
		ready.version = versionOf(info)
	}
	if err == nil {
		_, err = loadScript(rc, countHitScript)
	}
	if err == nil {
		ready.coalescedLoaded, err = loadScript(rc, coalescedScript)
	}
	if err == nil && ready.coalescedLoaded {
		ready.coalescedLoaded, err = loadScript(rc, multiKeyScript)
	}
	if err == nil && tooOld7(ready.version) == "" {
		err = loadScripts7(rc)
	}
	if err != nil {
		rc.Close()
	}
	return ready, err
}

// loadScript loads script; an error reply (such as NOPERM) is not an error
// of the connection.
func loadScript(rc redis.Conn, script *redis.Script) (loaded bool, err error) {
	if err := script.Load(rc); err != nil {
		return false, rc.Err()
	}
	return true, nil
}

// loadScripts7 loads Hammer 7's scripts and the check scripts in one round
// trip, so that a new server does not answer the first calls NOSCRIPT (a
// coalesced group would then run one by one). A refusal leaves them to the
// NOSCRIPT fallback.
func loadScripts7(rc redis.Conn) error {
	all := append(scripts7[1:len(scripts7):len(scripts7)], multi7, checkScript, multiCheck)
	for _, sc := range all {
		if err := rc.Send("SCRIPT", "LOAD", sc.source); err != nil {
			return err
		}
	}
	if err := rc.Flush(); err != nil {
		return err
	}
	for range all {
		if _, err := rc.Receive(); err != nil && rc.Err() != nil {
			return err
		}
	}
	return nil
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

// markTried records that a connection attempt has ended, well or not: the
// calls waiting for the first one go on.
func (s *Server) markTried() { s.triedOnce.Do(func() { close(s.tried) }) }
