package server

import (
	"context"
	"fmt"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/protocol"
)

// conn is one connection to Redis and the state of serving it. Serve creates
// it once a dial succeeds and drops it with the connection: only the
// goroutine running Serve touches it, so it needs no lock, and nothing of it
// outlives its connection. Its buffers are reused from batch to batch so
// that the hot path does not allocate.
type conn struct {
	srv *Server
	rc  redis.Conn
	gen uint64 // the Redial generation read before rc was dialed

	batch   []*call   // calls taken, to go out in the next flight
	flights []*flight // written, waiting for replies, oldest first
	inAir   int       // calls in flights and not yet answered
	spare   []*flight // landed flights, for reuse

	args       []any  // the arguments of the command being written
	keyBuf     []byte // the key of the command being written
	ttlArg     any    // the TTL, boxed once
	lastNow    int64  // see nowArg
	lastNowArg any

	lead, next []int32                      // see plan
	sum        []int64                      // see plan
	last       map[protocol.BucketKey]int32 // see plan
	// evalCoalesced sends the next coalesced group as EVAL with the
	// script's source: Redis lost the script (SCRIPT FLUSH, a failover) or
	// the user may not run SCRIPT LOAD, and EVAL puts it back in the cache.
	evalCoalesced bool
}

// newConn wraps rc, just dialed and prepared, for serving s.
func newConn(s *Server, rc redis.Conn, gen uint64, evalCoalesced bool) *conn {
	return &conn{srv: s, rc: rc, gen: gen, ttlArg: s.ttl, evalCoalesced: evalCoalesced}
}

// serve serves requests until the connection breaks or ctx is done. While
// nothing is in the air it waits for a call; then it keeps taking the calls
// already queued, writing them as flights and reading replies, so that a
// lone caller is served at once and callers that queue up meanwhile share
// writes (see flight.go).
func (cn *conn) serve(ctx context.Context) error {
	s := cn.srv
	var tick <-chan time.Time
	if s.cfg.HealthCheckInterval > 0 {
		t := time.NewTicker(s.cfg.HealthCheckInterval)
		defer t.Stop()
		tick = t.C
	}
	busy := false
	for {
		if !cn.airborne() {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case c := <-s.requests:
				cn.take(c)
				busy = true
			case <-tick:
				if !busy {
					if _, err := cn.rc.Do("PING"); err != nil {
						return fmt.Errorf("health check: %w", err)
					}
				}
				busy = false
				continue
			case <-s.redialWake:
				if err := s.redialErr(cn.gen); err != nil {
					return err
				}
				continue
			}
		} else {
			if err := s.redialErr(cn.gen); err != nil {
				cn.rc.Close()
				cn.failTaken(err)
				return err
			}
		}
		cn.drain()
		cn.launch(cn.batch, false, true)
		clear(cn.batch) // the calls go back to a pool once answered
		cn.batch = cn.batch[:0]
		switch {
		case cn.rc.Err() != nil:
		case cn.airborne():
			cn.receive()
		}
		if err := cn.rc.Err(); err != nil {
			cn.failTaken(err)
			return err
		}
	}
}

// take adds c to the batch unless its caller has left: an abandoned call is
// never sent.
func (cn *conn) take(c *call) {
	if c.take() {
		cn.batch = append(cn.batch, c)
	}
}

// drain takes the calls already queued, without waiting, until the flights
// in the air and the batch hold MaxPipeline calls.
func (cn *conn) drain() {
	for cn.inAir+len(cn.batch) < cn.srv.cfg.MaxPipeline {
		select {
		case c := <-cn.srv.requests:
			cn.take(c)
		default:
			return
		}
	}
}

// failTaken answers every call the connection holds when it goes: those in
// the air have an unknown outcome, the others were never sent.
func (cn *conn) failTaken(err error) {
	cn.failAirborne(err)
	failUnsent(cn.batch)
	clear(cn.batch)
	cn.batch = cn.batch[:0]
}

// eachTaken calls f for every call the connection has taken and not
// answered.
func (cn *conn) eachTaken(f func(*call)) {
	for _, fl := range cn.flights {
		fl.eachUnanswered(f)
	}
	for _, c := range cn.batch {
		f(c)
	}
}
