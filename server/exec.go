package server

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/protocol"
)

func isNoScript(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(string(rerr), "NOSCRIPT")
}

// send writes one call's command to the connection's buffer. The argument
// slice and the key buffer are reused from call to call: redigo encodes the
// arguments before Send returns.
func (s *Server) send(conn redis.Conn, c *call, evalSource bool) error {
	if c.asking {
		// Its reply is read, and dropped, just before the call's (receive).
		if err := conn.Send("ASKING"); err != nil {
			return err
		}
	}
	switch r := c.req.(type) {
	case *protocol.CountHit:
		cmd, script := "EVALSHA", countHitSHA
		if evalSource {
			cmd, script = "EVAL", countHitSource
		}
		s.args = append(s.args[:0], script, 1, s.key(r.Key), s.nowArg(r.Now), r.Increment, s.ttlArg)
		return conn.Send(cmd, s.args...)
	case *protocol.GetBucket:
		s.args = append(s.args[:0], s.key(r.Key), protocol.FieldCount, protocol.FieldCreated, protocol.FieldUpdated)
		return conn.Send("HMGET", s.args...)
	default:
		return fmt.Errorf("%w: %T cannot be pipelined", protocol.ErrInvalid, r)
	}
}

// key writes the Redis key of k into the reused key buffer.
func (s *Server) key(k protocol.BucketKey) []byte {
	s.keyBuf = s.layout().AppendKey(s.keyBuf[:0], k)
	return s.keyBuf
}

// nowArg boxes now, reusing the box while now stays the same: calls that
// arrive together mostly share their millisecond.
func (s *Server) nowArg(now int64) any {
	if s.lastNowArg == nil || now != s.lastNow {
		s.lastNow, s.lastNowArg = now, now
	}
	return s.lastNowArg
}

// finish answers a call from its reply.
func (s *Server) finish(conn redis.Conn, c *call, reply any, err error) {
	if err != nil {
		c.fail(s.callErr(conn, c.req, err))
		return
	}
	switch r := c.req.(type) {
	case *protocol.CountHit:
		n, err := decodeCount(reply)
		if err != nil {
			c.fail(s.callErr(conn, c.req, err))
			return
		}
		c.answer(n, nil, nil)
	case *protocol.GetBucket:
		b, err := decodeBucket(r.Key, reply)
		if err != nil {
			c.fail(s.callErr(conn, c.req, err))
			return
		}
		c.answer(0, b, nil)
	}
}

// failSent answers calls that were written, in whole or in part, to a
// connection that then broke: their outcome is unknown.
func (s *Server) failSent(conn redis.Conn, calls []*call, err error) {
	for _, c := range calls {
		c.fail(s.callErr(conn, c.req, err))
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
func (s *Server) callErr(conn redis.Conn, req protocol.Request, err error) error {
	op := req.Op()
	var rerr redis.Error
	switch {
	case conn.Err() != nil && isTimeout(err):
		return fmt.Errorf("%w (%s): no reply from redis, the outcome is unknown: %w", protocol.ErrTimeout, op, err)
	case conn.Err() != nil:
		return fmt.Errorf("%w (%s): the outcome is unknown: %w", protocol.ErrDisconnected, op, err)
	case isReadOnly(err):
		// A replica now (a failover demoted this server): the call did not
		// run. Closing the connection makes Serve redial, through the
		// sentinels when they are configured.
		conn.Close()
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
