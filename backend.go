package hammerredis

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hammer-go/hammerredis/internal/sentinel"
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
	ErrUnsupported  = protocol.ErrUnsupported
)

// Backend is a Redis rate-limit backend: the handle of PoolSize server
// goroutines, each owning one Redis connection, under the backend's own
// suture supervisor. It is safe for concurrent use. Calls are routed to a
// server by id, so the calls of one id are served in order; each server
// pipelines the calls queued for it. *Backend is a suture.Service, so
// sup.Add(b) runs it under any suture supervisor.
type Backend struct {
	router    router             // the servers, and which call goes to which
	tree      *suture.Supervisor // the servers and the router's services
	name      string
	keyPrefix string
	logger    *slog.Logger
	serving   atomic.Bool

	stopCtx  context.Context // cancelled by Stop
	stopFunc context.CancelFunc

	mu      sync.Mutex
	running *supervisor.Running // set by Start: the tree runs on its own
	parent  *suture.Supervisor  // set by StartLink, with token
	token   suture.ServiceToken
}

// router sends every call of a backend to the server that serves it: pool
// (one server, or a pool routed by id) or a Redis Cluster's
// cluster.Router (routed by slot). Its methods are the Backend's, whose
// docs they follow.
type router interface {
	CountHit(ctx context.Context, key BucketKey, now, increment int64) (int64, error)
	GetBucket(ctx context.Context, key BucketKey) (*BucketInfo, error)
	DeleteBuckets(ctx context.Context, id string) (int64, error)
	Hit(ctx context.Context, r protocol.Hit) (protocol.HitReply, error)
	Inc(ctx context.Context, r protocol.Inc) (int64, error)
	Set(ctx context.Context, r protocol.Set) (int64, error)
	Get(ctx context.Context, r protocol.Get) (int64, error)
	Check(ctx context.Context, r protocol.Check) (protocol.CheckReply, error)
	Connected() bool
	WaitConnected(ctx context.Context) error
	Stats() Stats
	// Stop stops every server for good and waits for their goroutines.
	Stop()
}

// New validates opts and returns a backend that is not running yet: the
// child spec. Run it with sup.Add(b), or use Start or StartLink.
func New(opts Options) (*Backend, error) {
	r, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	b := &Backend{name: r.name, keyPrefix: r.server.KeyPrefix, logger: r.logger, tree: supervisor.New(r.name, r.spec)}
	b.stopCtx, b.stopFunc = context.WithCancel(context.Background())
	if b.router, err = r.newRouter(b.tree); err != nil {
		return nil, err
	}
	return b, nil
}

// poolConfig is a resolved pool: size servers of config server, dialing
// the master that a sentinel watcher follows when sentinel is set.
type poolConfig struct {
	size     int
	server   server.Config // Name numbered per server when size > 1
	sentinel *sentinel.Config
	logger   *slog.Logger
}

// newRouter makes c's servers (not running yet) children of tree, with
// their sentinel watcher.
func (c poolConfig) newRouter(tree *suture.Supervisor) (router, error) {
	var watcher *sentinel.Watcher
	if c.sentinel != nil {
		// One watcher follows the master for every server of the backend.
		watcher = sentinel.NewWatcher(*c.sentinel)
	}
	p := make(pool, 0, c.size)
	for i := range c.size {
		cfg := c.server
		if c.size > 1 {
			cfg.Name = fmt.Sprintf("%s#%d", c.server.Name, i+1)
		}
		var d *sentinel.Dialer
		if watcher != nil {
			d = watcher.Dialer()
			cfg.Dial = d.Dial
		}
		srv, err := server.New(cfg)
		if err != nil {
			return nil, err
		}
		if d != nil {
			d.Bind(srv)
		}
		p = append(p, srv)
		tree.Add(supervisor.Service(srv, c.logger))
	}
	if watcher != nil {
		tree.Add(watcher)
	}
	return p, nil
}

// Serve runs the backend's servers under its own supervisor, which restarts
// a server whose connection breaks, until ctx is cancelled or Stop is
// called; the backend is then stopped for good. Do not call it directly:
// give the backend to a supervisor.
func (b *Backend) Serve(ctx context.Context) error {
	if !b.serving.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: %s is already being served", ErrInvalid, b.name)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(b.stopCtx, cancel)()
	err := b.tree.Serve(ctx)
	if ctx.Err() != nil {
		b.stop()
		return fmt.Errorf("%w: %w", suture.ErrDoNotRestart, ErrStopped)
	}
	return err
}

// stop stops every server for good and waits for their goroutines.
func (b *Backend) stop() {
	b.stopFunc()
	b.router.Stop()
}

// String names the backend in supervisor logs: its Redis address, never a
// password.
func (b *Backend) String() string { return b.name }

// Connected reports whether every server of the backend has a working
// connection right now.
func (b *Backend) Connected() bool { return b.router.Connected() }

// Stats is a snapshot of a backend's counters: calls and errors by kind,
// connections, restarts, queue depth and a latency histogram.
type Stats = protocol.Stats

// Stats returns a snapshot of the backend's counters, summed over its
// servers. It is cheap: the counters are atomic and recording them never
// blocks a call. On a cluster, each call counts once, however many masters
// a redirect sent it to, and the counters of masters that left the slot
// map stay in the sums.
func (b *Backend) Stats() Stats { return b.router.Stats() }

// WaitConnected waits until the backend has a working connection. It
// returns nil then, ErrStopped if the backend is stopped first, or ctx's
// error. Start returns before the first connection is up (as Elixir with
// sync_connect: false); calls made meanwhile wait for the first attempt
// only. Call WaitConnected to wait for the connection, at start-up or in a
// readiness probe.
func (b *Backend) WaitConnected(ctx context.Context) error { return b.router.WaitConnected(ctx) }

// CountHit counts one hit in the bucket key at now (ms since the Unix epoch)
// and returns the bucket's new count. Elixir: count_hit(key, now).
func (b *Backend) CountHit(ctx context.Context, key BucketKey, now int64) (int64, error) {
	return b.CountHitN(ctx, key, now, 1)
}

// CountHitN adds increment to the bucket key at now and returns the new
// count; the first hit of a bucket returns increment. Any increment is passed
// to Redis as given, as in Elixir. Elixir: count_hit(key, now, increment).
func (b *Backend) CountHitN(ctx context.Context, key BucketKey, now, increment int64) (int64, error) {
	return b.router.CountHit(ctx, key, now, increment)
}

// GetBucket reads the bucket key without changing it (nor its TTL). It
// returns nil and no error when there is no such bucket (Elixir {:ok, nil}).
func (b *Backend) GetBucket(ctx context.Context, key BucketKey) (*BucketInfo, error) {
	return b.router.GetBucket(ctx, key)
}

// DeleteBuckets deletes every bucket of id and returns how many keys it
// deleted. Unlike Elixir, it never deletes another id's buckets (see the
// package docs). It is not atomic; on an error the count is of the keys
// deleted before it. Elixir: delete_buckets(id).
func (b *Backend) DeleteBuckets(ctx context.Context, id string) (int64, error) {
	return b.router.DeleteBuckets(ctx, id)
}

// KeyPrefix returns the prefix of the backend's Hammer 6 bucket keys
// (Options.KeyPrefix): package hammer7 refuses a Hammer 7 prefix whose keys
// would mix with them.
func (b *Backend) KeyPrefix() string { return b.keyPrefix }

// Hit runs one hit of a Hammer 7 limiter (see package hammer7, which calls
// it): the request is allowed, or denied with the time to wait. Elixir:
// hit(key, scale|rate, limit|capacity, cost) of `use Hammer, backend:
// Hammer.Redis`.
func (b *Backend) Hit(ctx context.Context, r protocol.Hit) (protocol.HitReply, error) {
	return b.router.Hit(ctx, r)
}

// Inc adds r.N to a Hammer 7 window's count, without a limit check, and
// returns the count. Elixir: inc(key, scale, n).
func (b *Backend) Inc(ctx context.Context, r protocol.Inc) (int64, error) {
	return b.router.Inc(ctx, r)
}

// Set sets a Hammer 7 window's count and returns it. Elixir: set(key,
// scale, count).
func (b *Backend) Set(ctx context.Context, r protocol.Set) (int64, error) {
	return b.router.Set(ctx, r)
}

// Get returns a Hammer 7 window's count, or a bucket's level with the leak
// or refill up to now applied, writing nothing. Elixir: get(key, scale).
func (b *Backend) Get(ctx context.Context, r protocol.Get) (int64, error) {
	return b.router.Get(ctx, r)
}

// pool is the router of a backend without Cluster: one server, or a pool
// of them that each id is routed to one of.
type pool []*server.Server

// route returns the server for id: FNV-1a of the id, so that one id always
// goes to the same server and its calls stay in order.
func (p pool) route(id string) *server.Server {
	if len(p) == 1 {
		return p[0]
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return p[h%uint64(len(p))]
}

func (p pool) CountHit(ctx context.Context, key BucketKey, now, increment int64) (int64, error) {
	return p.route(key.ID).CountHit(ctx, key, now, increment)
}

func (p pool) GetBucket(ctx context.Context, key BucketKey) (*BucketInfo, error) {
	return p.route(key.ID).GetBucket(ctx, key)
}

func (p pool) DeleteBuckets(ctx context.Context, id string) (int64, error) {
	return p.route(id).DeleteBuckets(ctx, id)
}

func (p pool) Hit(ctx context.Context, r protocol.Hit) (protocol.HitReply, error) {
	return p.route(r.ID).Hit(ctx, r, false)
}

func (p pool) Inc(ctx context.Context, r protocol.Inc) (int64, error) {
	return p.route(r.ID).Inc(ctx, r, false)
}

func (p pool) Set(ctx context.Context, r protocol.Set) (int64, error) {
	return p.route(r.ID).Set(ctx, r, false)
}

func (p pool) Get(ctx context.Context, r protocol.Get) (int64, error) {
	return p.route(r.ID).Get(ctx, r, false)
}

func (p pool) Connected() bool {
	for _, s := range p {
		if !s.Connected() {
			return false
		}
	}
	return true
}

func (p pool) WaitConnected(ctx context.Context) error {
	for _, s := range p {
		if err := s.WaitConnected(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Stats sums the servers' counters.
func (p pool) Stats() Stats {
	st := p[0].Stats()
	for _, s := range p[1:] {
		st = st.Add(s.Stats())
	}
	return st
}

func (p pool) Stop() {
	for _, s := range p {
		s.Stop()
	}
}
