package server

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/protocol"
)

// Commands and replies: what a connection writes for a call, and how a reply
// or an error answers it. The conn methods run on the server goroutine.

func isNoScript(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(string(rerr), "NOSCRIPT")
}

// send writes one call's command to the connection's buffer. The argument
// slice and the key buffer are reused from call to call: redigo encodes the
// arguments before Send returns.
func (cn *conn) send(c *call, evalSource bool) error {
	if c.asking {
		// Its reply is read, and dropped, just before the call's (receive).
		if err := cn.rc.Send("ASKING"); err != nil {
			return err
		}
	}
	switch r := c.req.(type) {
	case *protocol.CountHit:
		cmd, script := "EVALSHA", countHitSHA
		if evalSource {
			cmd, script = "EVAL", countHitSource
		}
		cn.args = append(cn.args[:0], script, 1, cn.key(r.Key), cn.nowArg(r.Now), r.Increment, cn.ttlArg)
		return cn.rc.Send(cmd, cn.args...)
	case *protocol.GetBucket:
		cn.args = append(cn.args[:0], cn.key(r.Key), protocol.FieldCount, protocol.FieldCreated, protocol.FieldUpdated)
		return cn.rc.Send("HMGET", cn.args...)
	case *protocol.Hit, *protocol.Inc, *protocol.Set, *protocol.Get:
		return cn.send7(c, -1, evalSource)
	case *protocol.Check:
		return cn.sendCheck(c, evalSource)
	default:
		return fmt.Errorf("%w: %T cannot be pipelined", protocol.ErrInvalid, r)
	}
}

// key writes the Redis key of k into the reused key buffer.
func (cn *conn) key(k protocol.BucketKey) []byte {
	cn.keyBuf = cn.srv.layout().AppendKey(cn.keyBuf[:0], k)
	return cn.keyBuf
}

// nowArg boxes now, reusing the box while now stays the same: calls that
// arrive together mostly share their millisecond.
func (cn *conn) nowArg(now int64) any {
	if cn.lastNowArg == nil || now != cn.lastNow {
		cn.lastNow, cn.lastNowArg = now, now
	}
	return cn.lastNowArg
}

// finish answers a call from its reply.
func (cn *conn) finish(c *call, reply any, err error) {
	if err != nil {
		c.fail(callErr(cn.rc, c.req, err))
		return
	}
	switch r := c.req.(type) {
	case *protocol.CountHit:
		n, err := decodeCount(reply)
		if err != nil {
			c.fail(callErr(cn.rc, c.req, err))
			return
		}
		c.answer(n, nil, nil)
	case *protocol.GetBucket:
		b, err := decodeBucket(r.Key, reply)
		if err != nil {
			c.fail(callErr(cn.rc, c.req, err))
			return
		}
		c.answer(0, b, nil)
	case *protocol.Hit:
		h, err := decodeHit(r, reply)
		if err != nil {
			c.fail(callErr(cn.rc, c.req, err))
			return
		}
		c.answerHit(h)
	case *protocol.Check:
		d, err := decodeCheck(r, reply)
		if err != nil {
			c.fail(callErr(cn.rc, c.req, err))
			return
		}
		c.answerCheck(d)
	default: // Inc, Set, Get
		n, err := decodeCount7(c.req.Op(), reply)
		if err != nil {
			c.fail(callErr(cn.rc, c.req, err))
			return
		}
		c.answer(n, nil, nil)
	}
}

// failSent answers calls that were written, in whole or in part, to a
// connection that then broke: their outcome is unknown.
func (cn *conn) failSent(calls []*call, err error) {
	for _, c := range calls {
		c.fail(callErr(cn.rc, c.req, err))
	}
}

// failUnsent answers calls that were taken but never written: nothing
// happened, and they are safe to retry.
func failUnsent(calls []*call) {
	for _, c := range calls {
		c.fail(fmt.Errorf("%w (%s): the connection broke before the call was sent", protocol.ErrClosed, c.req.Op()))
	}
}

// callErr classifies the error of a taken call. A Redis error reply leaves
// the connection usable; any other failure of a connection means the
// request's outcome is unknown.
func callErr(rc redis.Conn, req protocol.Request, err error) error {
	op := req.Op()
	var rerr redis.Error
	switch {
	case rc.Err() != nil && isTimeout(err):
		return fmt.Errorf("%w (%s): no reply from redis, the outcome is unknown: %w", protocol.ErrTimeout, op, err)
	case rc.Err() != nil:
		return fmt.Errorf("%w (%s): the outcome is unknown: %w", protocol.ErrDisconnected, op, err)
	case isReadOnly(err):
		// A replica now (a failover demoted this server): the call did not
		// run. Closing the connection makes Serve redial, through the
		// sentinels when they are configured.
		rc.Close()
		return fmt.Errorf("%w (%s): %w", protocol.ErrClosed, op, err)
	case errors.As(err, &rerr):
		return fmt.Errorf("%w (%s): %w", protocol.ErrRedis, op, err)
	default:
		return fmt.Errorf("hammerredis (%s): %w", op, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
