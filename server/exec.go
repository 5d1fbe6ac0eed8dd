package server

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/protocol"
)

// scanCount is the SCAN COUNT hint of delete_buckets: large keyspaces take
// few round trips.
const scanCount = 1000

// execute runs one taken call on conn and answers it.
func (s *Server) execute(conn redis.Conn, c *call) {
	switch req := c.req.(type) {
	case protocol.CountHit:
		n, err := s.countHit(conn, req)
		if err != nil {
			c.answer(nil, s.callErr(conn, req, err))
			return
		}
		c.answer(protocol.CountHitReply{Count: n}, nil)
	case protocol.GetBucket:
		b, err := s.getBucket(conn, req)
		if err != nil {
			c.answer(nil, s.callErr(conn, req, err))
			return
		}
		c.answer(protocol.GetBucketReply{Bucket: b}, nil)
	case protocol.DeleteBuckets:
		n, err := s.deleteBuckets(conn, req, c)
		if err != nil {
			err = s.callErr(conn, req, err)
		}
		c.answer(protocol.DeleteBucketsReply{Deleted: n}, err)
	default:
		c.answer(nil, fmt.Errorf("%w: unknown request %T", protocol.ErrInvalid, req))
	}
}

func (s *Server) countHit(conn redis.Conn, req protocol.CountHit) (int64, error) {
	key := protocol.Key(s.cfg.KeyPrefix, req.Key)
	reply, err := countHitScript.Do(conn, key, req.Now, req.Increment, s.ttl)
	if err != nil {
		return 0, err
	}
	return decodeCount(reply)
}

func (s *Server) getBucket(conn redis.Conn, req protocol.GetBucket) (*protocol.BucketInfo, error) {
	key := protocol.Key(s.cfg.KeyPrefix, req.Key)
	reply, err := conn.Do("HMGET", key, protocol.FieldCount, protocol.FieldCreated, protocol.FieldUpdated)
	if err != nil {
		return nil, err
	}
	return decodeBucket(req.Key, reply)
}

// deleteBuckets scans for the id's keys and deletes them batch by batch. It
// stops early, with the count so far, once its caller has stopped waiting.
func (s *Server) deleteBuckets(conn redis.Conn, req protocol.DeleteBuckets, c *call) (int64, error) {
	pattern := protocol.DeletePattern(s.cfg.KeyPrefix, req.ID)
	var deleted int64
	cursor := "0"
	for {
		reply, err := conn.Do("SCAN", cursor, "MATCH", pattern, "COUNT", scanCount)
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
			if protocol.IsBucketOf(s.cfg.KeyPrefix, req.ID, k) {
				args = append(args, k)
			}
		}
		if len(args) > 0 {
			reply, err := conn.Do("DEL", args...)
			if err != nil {
				return deleted, err
			}
			n, err := decodeInt("DEL", reply)
			if err != nil {
				return deleted, err
			}
			deleted += n
		}
		if next == "0" {
			return deleted, nil
		}
		if c.gone(time.Now()) {
			return deleted, fmt.Errorf("%w: stopped after deleting %d keys", errCallGone, deleted)
		}
		cursor = next
	}
}

var errCallGone = errors.New("the caller stopped waiting")

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
	case errors.As(err, &rerr):
		return fmt.Errorf("%w (%s): %w", protocol.ErrRedis, op, err)
	case errors.Is(err, errCallGone):
		return fmt.Errorf("%w (%s): %w", protocol.ErrTimeout, op, err)
	default:
		return fmt.Errorf("hammerredis (%s): %w", op, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
