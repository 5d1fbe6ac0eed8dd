package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/protocol"
)

// DeleteBuckets does not go through the pipeline. Scanning a keyspace takes
// a round trip per SCAN COUNT keys, a second or more on a large one, and
// rate checks must never wait behind it; so each delete runs on the
// caller's goroutine, on a connection dialed for it (Config.Dial) and closed
// after it. One delete runs at a time per server; the others wait their
// turn within their context.

// scanCount is the SCAN COUNT hint of delete_buckets: large keyspaces take
// few round trips.
const scanCount = 1000

// errDeleteTimeout is the cause of a delete's context when
// DeleteBucketsTimeout ends it.
var errDeleteTimeout = errors.New("DeleteBucketsTimeout passed")

// DeleteBuckets deletes the buckets of id and returns how many keys went;
// on an error, how many went before it. It is bounded by
// DeleteBucketsTimeout, ctx and Stop, whatever Redis does.
func (s *Server) DeleteBuckets(ctx context.Context, id string) (n int64, err error) {
	req := &protocol.DeleteBuckets{ID: id}
	begin := time.Now()
	defer func() { s.stats.record(req, err, time.Since(begin)) }()
	if err := req.Validate(); err != nil {
		return 0, err
	}
	if s.Stopped() {
		return 0, protocol.ErrStopped
	}
	if ctx.Err() != nil {
		return 0, waitErr(ctx, req)
	}
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	dctx, cancelTimeout := context.WithTimeoutCause(dctx, s.cfg.DeleteBucketsTimeout, errDeleteTimeout)
	defer cancelTimeout()
	defer context.AfterFunc(s.stopCtx, func() { cancel(protocol.ErrStopped) })()

	if _, err := s.connection(dctx, nil, req); err != nil {
		return 0, s.deleteErr(dctx, req, 0, err)
	}
	select {
	case s.deleting <- struct{}{}:
		defer func() { <-s.deleting }()
	case <-dctx.Done():
		return 0, s.deleteErr(dctx, req, 0, dctx.Err())
	}
	rc, err := s.cfg.Dial(dctx)
	if err != nil {
		if dctx.Err() == nil {
			err = fmt.Errorf("%w (%s): cannot open its connection: %w", protocol.ErrClosed, req.Op(), err)
		}
		return 0, s.deleteErr(dctx, req, 0, err)
	}
	defer rc.Close()
	// Closing the connection is what interrupts a round trip in progress.
	defer context.AfterFunc(dctx, func() { rc.Close() })()
	n, err = s.deleteBuckets(rc, req.ID)
	if err != nil {
		err = s.deleteErr(dctx, req, n, callErr(rc, req, err))
	}
	return n, err
}

// deleteErr is the error of a delete that failed with err after deleting n
// keys: when its context ended, the reason it ended.
func (s *Server) deleteErr(ctx context.Context, req protocol.Request, n int64, err error) error {
	if ctx.Err() == nil {
		return err
	}
	op := req.Op()
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, protocol.ErrStopped):
		return fmt.Errorf("%w (%s): stopped after deleting %d keys", protocol.ErrStopped, op, n)
	case errors.Is(cause, errDeleteTimeout):
		return fmt.Errorf("%w (%s): %w after deleting %d keys", protocol.ErrTimeout, op, cause, n)
	case errors.Is(cause, context.DeadlineExceeded):
		return fmt.Errorf("%w (%s): deleted %d keys before the deadline: %w", protocol.ErrTimeout, op, n, cause)
	default:
		return fmt.Errorf("hammerredis (%s): deleted %d keys before: %w", op, n, cause)
	}
}

// deleteBuckets scans for the id's keys and deletes them batch by batch.
func (s *Server) deleteBuckets(rc redis.Conn, id string) (int64, error) {
	pattern := s.layout().DeletePattern(id)
	var deleted int64
	cursor := "0"
	for {
		reply, err := rc.Do("SCAN", cursor, "MATCH", pattern, "COUNT", scanCount)
		if err != nil {
			return deleted, err
		}
		next, keys, err := decodeScan(reply)
		if err != nil {
			return deleted, err
		}
		args := make([]any, 0, len(keys))
		for _, k := range keys {
			// The pattern is escaped, but "a:*" still matches id "a:b"'s keys.
			if s.layout().IsBucketOf(id, k) {
				args = append(args, k)
			}
		}
		n, err := s.del(rc, args)
		deleted += n
		if err != nil {
			return deleted, err
		}
		if next == "0" {
			return deleted, nil
		}
		cursor = next
	}
}

// del deletes keys: one DEL, or on a cluster node, where one DEL may only
// name keys of one slot, a DEL per key, pipelined.
func (s *Server) del(rc redis.Conn, keys []any) (int64, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	if !s.cfg.Cluster {
		reply, err := rc.Do("DEL", keys...)
		if err != nil {
			return 0, err
		}
		return decodeInt("DEL", reply)
	}
	for _, k := range keys {
		if err := rc.Send("DEL", k); err != nil {
			return 0, err
		}
	}
	if err := rc.Flush(); err != nil {
		return 0, err
	}
	var deleted int64
	var first error
	for range keys {
		reply, err := rc.Receive()
		if err == nil {
			var n int64
			n, err = decodeInt("DEL", reply)
			deleted += n
		}
		if err != nil && rc.Err() != nil {
			return deleted, err
		}
		if first == nil {
			first = err
		}
	}
	return deleted, first
}
