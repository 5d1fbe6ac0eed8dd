package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hammer-go/hammerredis/protocol"
)

// The callers' side: these run on the callers' goroutines, queue a pooled
// call on the request channel and wait for its answer, never past the
// caller's context or the call timeout.

// CountHit adds increment to the bucket key at now and returns its count.
func (s *Server) CountHit(ctx context.Context, key protocol.BucketKey, now, increment int64) (int64, error) {
	return s.countHit(ctx, key, now, increment, false)
}

// CountHitAsking is CountHit preceded by ASKING: for a Redis Cluster slot
// being migrated to this server, after another node answered ASK.
func (s *Server) CountHitAsking(ctx context.Context, key protocol.BucketKey, now, increment int64) (int64, error) {
	return s.countHit(ctx, key, now, increment, true)
}

func (s *Server) countHit(ctx context.Context, key protocol.BucketKey, now, increment int64, asking bool) (int64, error) {
	c := getCall()
	c.asking = asking
	c.hit = protocol.CountHit{Key: key, Now: now, Increment: increment}
	c.req = &c.hit
	err := s.call(ctx, c, s.cfg.CallTimeout)
	var n int64
	if c.received { // else the server may still write the reply
		n = c.count
	}
	c.release()
	return n, err
}

// GetBucket reads the bucket key; nil, nil when there is none.
func (s *Server) GetBucket(ctx context.Context, key protocol.BucketKey) (*protocol.BucketInfo, error) {
	return s.getBucket(ctx, key, false)
}

// GetBucketAsking is GetBucket preceded by ASKING (see CountHitAsking).
func (s *Server) GetBucketAsking(ctx context.Context, key protocol.BucketKey) (*protocol.BucketInfo, error) {
	return s.getBucket(ctx, key, true)
}

func (s *Server) getBucket(ctx context.Context, key protocol.BucketKey, asking bool) (*protocol.BucketInfo, error) {
	c := getCall()
	c.asking = asking
	c.get = protocol.GetBucket{Key: key}
	c.req = &c.get
	err := s.call(ctx, c, s.cfg.CallTimeout)
	var b *protocol.BucketInfo
	if c.received {
		b = c.bucket
	}
	c.release()
	return b, err
}

// call validates c, queues it, waits for its answer and records it in the
// stats. The reply fields of c hold the server's answer when c.received.
func (s *Server) call(ctx context.Context, c *call, timeout time.Duration) error {
	begin := time.Now()
	err := s.wait(ctx, c, begin, timeout)
	s.stats.record(c.req, err, time.Since(begin))
	return err
}

func (s *Server) wait(ctx context.Context, c *call, now time.Time, timeout time.Duration) error {
	if err := s.validate(c); err != nil {
		return err
	}
	if s.Stopped() {
		return protocol.ErrStopped
	}
	if ctx.Err() != nil {
		// Done already: never queue it (the select below might).
		return waitErr(ctx, c.req)
	}
	var expired <-chan time.Time // the call timeout, unless ctx ends first
	if d, ok := ctx.Deadline(); !ok || d.After(now.Add(timeout)) {
		c.timer.Reset(timeout)
		defer c.timer.Stop()
		expired = c.timer.C
	}
	inc, err := s.connection(ctx, expired, c.req)
	if err != nil {
		return err
	}

	select {
	case s.requests <- c:
	case <-inc.down:
		return s.downErr()
	case <-ctx.Done():
		return waitErr(ctx, c.req)
	case <-expired:
		return callTimeoutErr(c.req)
	}
	select {
	case <-c.done:
		c.received = true
		return c.err
	case <-inc.down:
		if c.abandon() {
			return s.downErr()
		}
		// Taken: Serve answered it before closing down.
		select {
		case <-c.done:
			c.received = true
			return c.err
		case <-ctx.Done():
			return waitErr(ctx, c.req)
		case <-expired:
			return callTimeoutErr(c.req)
		}
	case <-ctx.Done():
		// Whether or not the server has taken it, the caller leaves now; an
		// abandoned call is never sent.
		c.abandon()
		return waitErr(ctx, c.req)
	case <-expired:
		c.abandon()
		return callTimeoutErr(c.req)
	}
}

// connection returns the connection's incarnation for a call. Before the
// server's first connection attempt has ended it waits for that attempt, so
// that the calls made right after Start do not fail; after that, while no
// connection is up, the call fails at once with ErrClosed.
func (s *Server) connection(ctx context.Context, expired <-chan time.Time, req protocol.Request) (*incarnation, error) {
	if inc := s.live.Load(); inc != nil {
		return inc, nil
	}
	select {
	case <-s.tried:
	case <-s.stopCtx.Done():
		return nil, protocol.ErrStopped
	case <-ctx.Done():
		return nil, waitErr(ctx, req)
	case <-expired:
		return nil, callTimeoutErr(req)
	}
	if inc := s.live.Load(); inc != nil {
		return inc, nil
	}
	return nil, s.downErr()
}

func callTimeoutErr(req protocol.Request) error {
	return fmt.Errorf("%w (%s): no reply within the call timeout", protocol.ErrTimeout, req.Op())
}

// waitErr says why a caller whose context ended stopped waiting: a deadline
// matches both ErrTimeout and context.DeadlineExceeded; a cancellation is
// the context's error.
func waitErr(ctx context.Context, req protocol.Request) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w (%s): %w", protocol.ErrTimeout, req.Op(), context.DeadlineExceeded)
	}
	return fmt.Errorf("hammerredis (%s): %w", req.Op(), ctx.Err())
}
