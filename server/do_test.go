package server

import (
	"context"
	"fmt"

	"github.com/hammer-go/hammerredis/protocol"
)

// The tests send typed requests (package protocol) through one entry point.

// do sends req to the server goroutine and waits for its reply, at most until
// ctx is done or the call timeout passes. The reply's type matches req's.
// CountHit, GetBucket and DeleteBuckets are the same calls without boxing.
func (s *Server) do(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	switch r := req.(type) {
	case protocol.CountHit:
		n, err := s.CountHit(ctx, r.Key, r.Now, r.Increment)
		if err != nil {
			return nil, err
		}
		return protocol.CountHitReply{Count: n}, nil
	case protocol.GetBucket:
		b, err := s.GetBucket(ctx, r.Key)
		if err != nil {
			return nil, err
		}
		return protocol.GetBucketReply{Bucket: b}, nil
	case protocol.DeleteBuckets:
		n, err := s.DeleteBuckets(ctx, r.ID)
		return protocol.DeleteBucketsReply{Deleted: n}, err
	case protocol.Hit:
		h, err := s.Hit(ctx, r, false)
		if err != nil {
			return nil, err
		}
		return h, nil
	case protocol.Inc:
		return countReply(s.Inc(ctx, r, false))
	case protocol.Set:
		return countReply(s.Set(ctx, r, false))
	case protocol.Get:
		return countReply(s.Get(ctx, r, false))
	case protocol.Check:
		rep, err := s.Check(ctx, r, false)
		if err != nil {
			return nil, err
		}
		return rep, nil
	default:
		return nil, fmt.Errorf("%w: request %T", protocol.ErrInvalid, req)
	}
}

func countReply(n int64, err error) (protocol.Reply, error) {
	if err != nil {
		return nil, err
	}
	return protocol.CountReply{Count: n}, nil
}
