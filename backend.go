package hammerredis

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"

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

// Backend is a Redis rate-limit backend: the handle of PoolSize server
// goroutines, each owning one Redis connection, under the backend's own
// suture supervisor. It is safe for concurrent use. Calls are routed to a
// server by id, so the calls of one id are served in order; each server
// pipelines the calls queued for it. *Backend is a suture.Service, so
// sup.Add(b) runs it under any suture supervisor.
type Backend struct {
	servers []*server.Server
	tree    *suture.Supervisor // one child per server
	name    string
	logger  *slog.Logger
	serving atomic.Bool

	stopCtx  context.Context // cancelled by Stop
	stopFunc context.CancelFunc

	cluster *clusterRouter  // with Options.Cluster: servers per master, not servers
	layout  protocol.Layout // the key layout, for routing by slot

	mu      sync.Mutex
	running *supervisor.Running // set by Start: the tree runs on its own
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
	size := opts.PoolSize
	switch {
	case size < 0 || size > MaxPoolSize:
		return nil, fmt.Errorf("%w: PoolSize %d is not in 1-%d", ErrInvalid, size, MaxPoolSize)
	case size == 0:
		size = 1
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	b := &Backend{name: "hammerredis(" + cfg.Name + ")", logger: logger}
	if size > 1 {
		b.name = fmt.Sprintf("hammerredis(%s, pool %d)", cfg.Name, size)
	}
	b.stopCtx, b.stopFunc = context.WithCancel(context.Background())
	// The servers back off by themselves (at most MaxBackoff between dials,
	// lost connections counted like failed dials), so the tree must not add
	// suture's thrash pause on top: it would hold a recovery past MaxBackoff.
	b.tree = supervisor.New(b.name, supervisor.Spec{Logger: logger, FailureThreshold: math.Inf(1)})
	if opts.Cluster != nil {
		if err := opts.Cluster.validate(); err != nil {
			return nil, err
		}
		rc, err := opts.redisConfig()
		if err != nil {
			return nil, err
		}
		// A cluster node refuses SELECT, so a database other than 0 would
		// keep every connection from being made; and the nodes come from the
		// slot map, not from sentinels.
		switch {
		case rc.Database != 0:
			return nil, fmt.Errorf("%w: Database %d with Cluster: a Redis Cluster has only database 0", ErrInvalid, rc.Database)
		case opts.Sentinel != nil:
			return nil, fmt.Errorf("%w: Sentinel with Cluster: a Redis Cluster finds its masters by itself", ErrInvalid)
		}
		b.name = fmt.Sprintf("hammerredis(cluster %s)", strings.Join(opts.Cluster.Addrs, ","))
		if _, err := server.New(cfg); err != nil { // the servers come later: check now
			return nil, err
		}
		b.layout = protocol.Layout{Prefix: cfg.KeyPrefix, HashTag: cfg.HashTag}
		if b.layout.Prefix == "" {
			b.layout.Prefix = protocol.DefaultKeyPrefix
		}
		b.cluster = newClusterRouter(opts.Cluster, rc, rc.target().opts, cfg, b.tree, logger)
		b.tree.Add(topology{b.cluster})
		return b, nil
	}
	var watcher *sentinelWatcher
	if opts.Sentinel != nil {
		// One watcher follows the master for every server of the backend.
		rc, err := opts.redisConfig()
		if err != nil {
			return nil, err
		}
		watcher = newSentinelWatcher(*opts.Sentinel, rc, rc.target().opts, opts.HealthCheckInterval, logger)
	}
	name := cfg.Name
	for i := range size {
		if size > 1 {
			cfg.Name = fmt.Sprintf("%s#%d", name, i+1)
		}
		var d *sentinelDialer
		if watcher != nil {
			d = watcher.dialer()
			cfg.Dial = d.dial
		}
		srv, err := server.New(cfg)
		if err != nil {
			return nil, err
		}
		if d != nil {
			d.bind(srv)
		}
		b.servers = append(b.servers, srv)
		b.tree.Add(supervisor.Service(srv, logger))
	}
	if watcher != nil {
		b.tree.Add(watcher)
	}
	return b, nil
}

// MaxPoolSize bounds Options.PoolSize.
const MaxPoolSize = 256

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
	if b.cluster != nil {
		b.cluster.stop()
	}
	for _, s := range b.servers {
		s.Stop()
	}
}

// String names the backend in supervisor logs: its Redis address, never a
// password.
func (b *Backend) String() string { return b.name }

// Connected reports whether every server of the backend has a working
// connection right now.
func (b *Backend) Connected() bool {
	servers := b.servers
	if b.cluster != nil {
		select {
		case <-b.cluster.ready:
		default:
			return false
		}
		if b.cluster.isStopped() {
			return false
		}
		servers = b.cluster.servers()
	}
	for _, s := range servers {
		if !s.Connected() {
			return false
		}
	}
	return true
}

// route returns the server for id: FNV-1a of the id, so that one id always
// goes to the same server and its calls stay in order.
func (b *Backend) route(id string) *server.Server {
	if len(b.servers) == 1 {
		return b.servers[0]
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return b.servers[h%uint64(len(b.servers))]
}

// Stats is a snapshot of a backend's counters: calls and errors by kind,
// connections, restarts, queue depth and a latency histogram.
type Stats = protocol.Stats

// Stats returns a snapshot of the backend's counters, summed over its
// servers. It is cheap: the counters are atomic and recording them never
// blocks a call. On a cluster, each call counts once, however many masters
// a redirect sent it to, and the counters of masters that left the slot
// map stay in the sums.
func (b *Backend) Stats() Stats {
	if b.cluster != nil {
		return b.cluster.stats()
	}
	servers := b.servers
	st := servers[0].Stats()
	for _, s := range servers[1:] {
		st = st.Add(s.Stats())
	}
	return st
}

// WaitConnected waits until the backend has a working connection. It
// returns nil then, ErrStopped if the backend is stopped first, or ctx's
// error. Start returns before the first connection is up (as Elixir with
// sync_connect: false); calls made meanwhile wait for the first attempt
// only. Call WaitConnected to wait for the connection, at start-up or in a
// readiness probe.
func (b *Backend) WaitConnected(ctx context.Context) error {
	if b.cluster != nil {
		return b.cluster.waitConnected(ctx)
	}
	for _, s := range b.servers {
		if err := s.WaitConnected(ctx); err != nil {
			return err
		}
	}
	return nil
}

// CountHit counts one hit in the bucket key at now (ms since the Unix epoch)
// and returns the bucket's new count. Elixir: count_hit(key, now).
func (b *Backend) CountHit(ctx context.Context, key BucketKey, now int64) (int64, error) {
	return b.CountHitN(ctx, key, now, 1)
}

// CountHitN adds increment to the bucket key at now and returns the new
// count; the first hit of a bucket returns increment. Any increment is passed
// to Redis as given, as in Elixir. Elixir: count_hit(key, now, increment).
func (b *Backend) CountHitN(ctx context.Context, key BucketKey, now, increment int64) (int64, error) {
	if b.cluster != nil {
		return clusterCall(ctx, b.cluster, opCountHit, key, b.layout, func(s *server.Server, asking bool) (int64, error) {
			if asking {
				return s.CountHitAsking(ctx, key, now, increment)
			}
			return s.CountHit(ctx, key, now, increment)
		})
	}
	return b.route(key.ID).CountHit(ctx, key, now, increment)
}

// GetBucket reads the bucket key without changing it (nor its TTL). It
// returns nil and no error when there is no such bucket (Elixir {:ok, nil}).
func (b *Backend) GetBucket(ctx context.Context, key BucketKey) (*BucketInfo, error) {
	if b.cluster != nil {
		return clusterCall(ctx, b.cluster, opGetBucket, key, b.layout, func(s *server.Server, asking bool) (*BucketInfo, error) {
			if asking {
				return s.GetBucketAsking(ctx, key)
			}
			return s.GetBucket(ctx, key)
		})
	}
	return b.route(key.ID).GetBucket(ctx, key)
}

// DeleteBuckets deletes every bucket of id and returns how many keys it
// deleted. Unlike Elixir, it never deletes another id's buckets (see the
// package docs). It is not atomic; on an error the count is of the keys
// deleted before it. Elixir: delete_buckets(id).
func (b *Backend) DeleteBuckets(ctx context.Context, id string) (int64, error) {
	if b.cluster != nil {
		// On a cluster, the masters scan at once, under one timeout.
		return b.cluster.deleteBuckets(ctx, id)
	}
	return b.route(id).DeleteBuckets(ctx, id)
}
