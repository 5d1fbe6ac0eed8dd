package hammerredis

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/hammer-go/hammerredis/protocol"
	"github.com/hammer-go/hammerredis/server"
	"github.com/hammer-go/hammerredis/supervisor"
	"github.com/thejerf/suture/v4"
)

// BucketKey names one bucket: a window number and the rate-limited id.
// Elixir: {bucket, id}.
type BucketKey = protocol.BucketKey

// BucketInfo is what a bucket holds. Elixir: {key, count, created, updated}.
type BucketInfo = protocol.BucketInfo

// Errors returned by the backend; match them with errors.Is. See package
// protocol for what each means.
var (
	ErrClosed       = protocol.ErrClosed
	ErrDisconnected = protocol.ErrDisconnected
	ErrTimeout      = protocol.ErrTimeout
	ErrStopped      = protocol.ErrStopped
	ErrInvalid      = protocol.ErrInvalid
	ErrRedis        = protocol.ErrRedis
	ErrBadReply     = protocol.ErrBadReply
)

// Backend is a Redis rate-limit backend: the handle of one goroutine that
// owns one Redis connection. It is safe for concurrent use; calls are
// serialised through the goroutine. *Backend is a suture.Service, so
// sup.Add(b) runs it under any suture supervisor.
type Backend struct {
	srv    *server.Server
	svc    suture.Service
	logger *slog.Logger

	mu      sync.Mutex
	running *supervisor.Running // set by Start: the private tree
	parent  *suture.Supervisor  // set by StartLink, with token
	token   suture.ServiceToken
}

// New validates opts and returns a backend that is not running yet: the
// child spec. Run it with sup.Add(b), or use Start or StartLink.
func New(opts Options) (*Backend, error) {
	cfg, err := opts.serverConfig()
	if err != nil {
		return nil, err
	}
	srv, err := server.New(cfg)
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &Backend{srv: srv, svc: supervisor.Service(srv, logger), logger: logger}, nil
}

// Serve runs the backend until ctx is cancelled or Stop is called; it
// returns an error when the connection breaks, so that the supervisor
// restarts it. Do not call it directly: give the backend to a supervisor.
func (b *Backend) Serve(ctx context.Context) error { return b.svc.Serve(ctx) }

// String names the backend in supervisor logs: its Redis address, never a
// password.
func (b *Backend) String() string { return b.srv.String() }

// Connected reports whether the backend has a working connection right now.
func (b *Backend) Connected() bool { return b.srv.Connected() }

// Stats is a snapshot of a backend's counters: calls and errors by kind,
// connections, restarts, queue depth and a latency histogram.
type Stats = server.Stats

// Stats returns a snapshot of the backend's counters. It is cheap: the
// counters are atomic and recording them never blocks a call.
func (b *Backend) Stats() Stats { return b.srv.Stats() }

// WaitConnected waits until the backend has a working connection. It
// returns nil then, ErrStopped if the backend is stopped first, or ctx's
// error. Start returns before the first connection is up (as Elixir with
// sync_connect: false); call WaitConnected to wait for it, at start-up or
// in a readiness probe.
func (b *Backend) WaitConnected(ctx context.Context) error { return b.srv.WaitConnected(ctx) }

// CountHit counts one hit in the bucket key at now (ms since the Unix epoch)
// and returns the bucket's new count. Elixir: count_hit(key, now).
func (b *Backend) CountHit(ctx context.Context, key BucketKey, now int64) (int64, error) {
	return b.CountHitN(ctx, key, now, 1)
}

// CountHitN adds increment to the bucket key at now and returns the new
// count; the first hit of a bucket returns increment. Any increment is passed
// to Redis as given, as in Elixir. Elixir: count_hit(key, now, increment).
func (b *Backend) CountHitN(ctx context.Context, key BucketKey, now, increment int64) (int64, error) {
	r, err := call[protocol.CountHitReply](ctx, b.srv, protocol.CountHit{Key: key, Now: now, Increment: increment})
	return r.Count, err
}

// GetBucket reads the bucket key without changing it (nor its TTL). It
// returns nil and no error when there is no such bucket (Elixir {:ok, nil}).
func (b *Backend) GetBucket(ctx context.Context, key BucketKey) (*BucketInfo, error) {
	r, err := call[protocol.GetBucketReply](ctx, b.srv, protocol.GetBucket{Key: key})
	return r.Bucket, err
}

// DeleteBuckets deletes every bucket of id and returns how many keys it
// deleted. Unlike Elixir, it never deletes another id's buckets (see the
// package docs). It is not atomic; on an error the count is of the keys
// deleted before it. Elixir: delete_buckets(id).
func (b *Backend) DeleteBuckets(ctx context.Context, id string) (int64, error) {
	r, err := call[protocol.DeleteBucketsReply](ctx, b.srv, protocol.DeleteBuckets{ID: id})
	return r.Deleted, err
}

// call sends req and checks that the reply has the type R.
func call[R protocol.Reply](ctx context.Context, srv *server.Server, req protocol.Request) (R, error) {
	var zero R
	rep, err := srv.Do(ctx, req)
	r, ok := rep.(R)
	if rep != nil && !ok {
		return zero, fmt.Errorf("%w: %s answered with %T", ErrBadReply, req.Op(), rep)
	}
	return r, err
}
