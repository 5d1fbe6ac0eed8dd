package server

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/protocol"
)

// conn is one connection to Redis and the state of serving it. Serve creates
// it once a dial succeeds and drops it with the connection; nothing of it
// outlives its connection. Two goroutines share it, as redigo allows (one
// writing, one reading):
//
//   - the writer, the server goroutine running Serve (this file): it takes
//     queued calls, plans them (coalesce.go) and writes them as flights;
//   - the reader (reader.go), started by serve: it reads the replies of the
//     flights in order and answers their calls.
//
// A flight belongs to the writer until it is handed to the reader on sent,
// and to the reader after; the fields below say which goroutine touches
// them. Buffers are reused from flight to flight so that the hot path does
// not allocate.
type conn struct {
	srv *Server
	rc  redis.Conn
	gen uint64 // the Redial generation read before rc was dialed

	// The writer's.
	batch      []*call // calls taken, to go out in the next flight
	args       []any   // the arguments of the command being written
	keyBuf     []byte  // the key of the command being written
	ttlArg     any     // the TTL, boxed once
	lastNow    int64   // see nowArg
	lastNowArg any
	lead, next []int32                      // see plan
	sum        []int64                      // see plan
	last       map[protocol.BucketKey]int32 // see plan
	lastFix    map[fixKey]int32             // see plan
	// evalCoalesced sends the next coalesced group as EVAL with the
	// script's source: Redis lost the script (SCRIPT FLUSH, a failover) or
	// the user may not run SCRIPT LOAD, and EVAL puts it back in the cache.
	// evalMulti, evalMulti7 and evalMultiCheck do the same for the next
	// multi-key run of their kind.
	evalCoalesced, evalMulti, evalMulti7, evalMultiCheck bool
	// tooOld7 says why this server cannot run Hammer 7's calls, "" when
	// it can (see tooOld7).
	tooOld7  string
	others   []*call                     // see order
	readSet  map[protocol.BucketKey]bool // see readKeys
	multiBuf []byte                      // see sendMulti
	multiOff []int
	boxes    [32]boxed // see box
	// readAtWrite is replies when the writer last wrote, busySince when it
	// last wrote with nothing in the air (see mayWrite).
	readAtWrite uint64
	busySince   time.Duration
	stallAfter  time.Duration // stallAfter, or the test's Config.stallAfter
	stall       *time.Timer   // fires when the calls in the air stall

	// Between the two.
	sent    chan *flight  // flights written, oldest first, for the reader
	poke    chan struct{} // the reader read a reply (see mayWrite)
	resend  chan struct{} // the reader queued calls to send again
	dead    chan struct{} // closed by the reader when the connection broke
	readEnd chan struct{} // closed when the reader returns
	replies atomic.Uint64 // groups whose reply the reader has read
	readAt  atomic.Int64  // when the reader last read one (clock)
	mu      sync.Mutex    // guards spare and again
	spare   []*flight     // landed flights, for reuse
	again   []*flight     // landed flights with calls to send again

	// The reader's; the writer reads them once dead is closed.
	readErr  error // why the connection broke
	panicked any   // what the reader panicked with, if it did
}

// The write policy (mayWrite). While few calls are in the air and Redis
// answers, the writer writes each call as soon as it is queued, so that Redis
// always has the next command waiting. With eagerBelow calls in the air,
// Redis has work waiting, and the writer gathers the calls that queue until
// the reader has read a reply: fewer, larger flights, so fewer reads and
// writes for Redis per call when it is the bottleneck. Once no reply has come
// for stallAfter, the writer also stops taking calls until one comes: the
// calls queued behind a Redis that has stopped answering (paused, failing
// over, cut off) stay in the queue, where their callers can still withdraw
// them, rather than join the calls whose outcome is unknown.
const (
	eagerBelow = 8
	stallAfter = time.Millisecond
)

// newConn wraps rc, just dialed and prepared, for serving s.
func newConn(s *Server, rc redis.Conn, gen uint64, evalCoalesced bool) *conn {
	return &conn{
		srv: s, rc: rc, gen: gen, ttlArg: s.ttl, evalCoalesced: evalCoalesced, evalMulti: evalCoalesced,
		stallAfter: cmp.Or(s.cfg.stallAfter, stallAfter),
		sent:       make(chan *flight, s.cfg.MaxPipeline+1),
		poke:       make(chan struct{}, 1),
		resend:     make(chan struct{}, 1),
		dead:       make(chan struct{}),
		readEnd:    make(chan struct{}),
	}
}

// serve serves requests until the connection breaks or ctx is done. It runs
// on the server goroutine and writes; the reader it starts reads. It only
// takes calls it writes at once (mayWrite), so that a call is queued, and
// may be withdrawn, until it goes out.
func (cn *conn) serve(ctx context.Context) error {
	s := cn.srv
	go cn.read()
	defer cn.shutdown()
	var tick <-chan time.Time
	if s.cfg.HealthCheckInterval > 0 {
		t := time.NewTicker(s.cfg.HealthCheckInterval)
		defer t.Stop()
		tick = t.C
	}
	cn.stall = time.NewTimer(time.Hour)
	cn.stall.Stop()
	defer cn.stall.Stop()
	busy := false
	for {
		if err := s.redialErr(cn.gen); err != nil {
			return err
		}
		cn.sendAgain()
		eager := cn.mayWrite()
		if eager && cn.write() {
			busy = true
			if err := cn.rc.Err(); err != nil {
				return err
			}
			continue
		}
		// Nothing queued, or no call may go out yet: wait for a call while
		// one may go out at once, else for a reply.
		var requests <-chan *call
		var poke <-chan struct{}
		if eager && cn.room() > 0 {
			requests = s.requests
			if cn.inAir() > 0 {
				cn.stall.Reset(cn.stallAfter - cn.sinceProgress())
			}
		} else {
			poke = cn.poke
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-cn.dead:
			if cn.panicked != nil {
				panic(cn.panicked)
			}
			return cn.readErr
		case c := <-requests:
			cn.take(c)
			cn.write()
			busy = true
			if err := cn.rc.Err(); err != nil {
				return err
			}
		case <-poke:
		case <-cn.stall.C:
		case <-cn.resend:
		case <-s.redialWake:
		case <-tick:
			if !busy && cn.inAir() == 0 {
				// Nothing in the air: the reader is not receiving, so the
				// writer may use the connection whole.
				if _, err := cn.rc.Do("PING"); err != nil {
					return fmt.Errorf("health check: %w", err)
				}
			}
			busy = false
		}
		cn.stall.Stop()
	}
}

// mayWrite reports whether queued calls may go out now: with nothing in the
// air, once a reply has been read since the last write, or while few calls
// are in the air and Redis answers.
func (cn *conn) mayWrite() bool {
	n := cn.inAir()
	return n == 0 || cn.replies.Load() != cn.readAtWrite ||
		(n < eagerBelow && cn.sinceProgress() < cn.stallAfter)
}

// sinceProgress is how long the calls in the air have waited for a reply:
// since the last reply read or, if later, since the write that put the
// first of them in the air.
func (cn *conn) sinceProgress() time.Duration {
	return clock() - max(time.Duration(cn.readAt.Load()), cn.busySince)
}

// write takes the calls queued, up to the room there is, and sends them, with
// any already taken, as one flight. It reports whether it sent any.
func (cn *conn) write() bool {
	cn.drain()
	if len(cn.batch) == 0 {
		return false
	}
	if cn.inAir() == 0 {
		cn.busySince = clock()
	}
	cn.readAtWrite = cn.replies.Load()
	cn.launch(cn.batch, false, true)
	clear(cn.batch) // the calls go back to a pool once answered
	cn.batch = cn.batch[:0]
	return true
}

// clock reads the monotonic clock.
func clock() time.Duration { return time.Since(clockBase) }

var clockBase = time.Now()

// room is how many more calls the writer may take: MaxPipeline bounds the
// calls in the air and in the batch.
func (cn *conn) room() int { return cn.srv.cfg.MaxPipeline - cn.inAir() - len(cn.batch) }

// inAir is the count of calls written and not yet read, which MaxPipeline
// bounds; it is published for Stats as it changes.
func (cn *conn) inAir() int { return int(cn.srv.stats.inAir.Load()) }

func (cn *conn) addInAir(n int) { cn.srv.stats.inAir.Add(int64(n)) }

// take adds c to the batch unless its caller has left: an abandoned call is
// never sent. A Hammer 7 call or a check (whose script is built on Hammer
// 7's) that the server cannot run fails unsent.
func (cn *conn) take(c *call) {
	if !c.take() {
		return
	}
	if _, check := c.req.(*protocol.Check); cn.tooOld7 != "" && (check || isHammer7(c.req)) {
		c.fail(fmt.Errorf("%w (%s): %s", protocol.ErrUnsupported, c.req.Op(), cn.tooOld7))
		return
	}
	cn.batch = append(cn.batch, c)
}

// drain takes the calls already queued, without waiting, while there is
// room.
func (cn *conn) drain() {
	for cn.room() > 0 {
		select {
		case c := <-cn.srv.requests:
			cn.take(c)
		default:
			return
		}
	}
}

// sendAgain writes the calls the reader handed back: Redis said they did
// not run (NOSCRIPT, a coalesced group refused before its first write).
func (cn *conn) sendAgain() {
	cn.mu.Lock()
	again := cn.again
	cn.again = nil
	cn.mu.Unlock()
	for _, f := range again {
		if f.lostScript {
			cn.evalCoalesced = true
		}
		if f.lostMulti {
			cn.evalMulti = true
		}
		if f.lostMulti7 {
			cn.evalMulti7 = true
		}
		if f.lostMultiCheck {
			cn.evalMultiCheck = true
		}
		cn.launch(f.noScript, true, false)
		cn.launch(f.singly, false, false)
		cn.freeFlight(f)
	}
}

// shutdown ends the connection on the writer's way out: it waits for the
// reader to answer every call in the air, closing the connection first if
// the reader may be in a read, and answers the calls never written. Safe to
// retry, they get ErrClosed. Serve closes the connection in the end.
func (cn *conn) shutdown() {
	select {
	case <-cn.dead: // the reader reads no more
	default:
		cn.rc.Close()
	}
	close(cn.sent)
	<-cn.readEnd
	cn.eachTaken(func(c *call) { failUnsent([]*call{c}) })
	clear(cn.batch)
	cn.batch = cn.batch[:0]
	cn.mu.Lock()
	cn.again = nil
	cn.mu.Unlock()
}

// eachTaken calls f for every call the connection has taken and that the
// reader does not hold: the batch, and the calls handed back to be sent
// again.
func (cn *conn) eachTaken(f func(*call)) {
	cn.mu.Lock()
	again := cn.again
	cn.mu.Unlock()
	for _, fl := range again {
		for _, c := range fl.noScript {
			f(c)
		}
		for _, c := range fl.singly {
			f(c)
		}
	}
	for _, c := range cn.batch {
		f(c)
	}
}
