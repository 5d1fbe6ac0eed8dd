package hammerredis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/thejerf/suture/v4"

	"github.com/hammer-go/hammerredis/protocol"
	"github.com/hammer-go/hammerredis/server"
	"github.com/hammer-go/hammerredis/supervisor"
)

// ClusterConfig points a backend at a Redis Cluster. Every call touches one
// key, so the Elixir-compatible layout works on a cluster as it is: the
// backend routes each call to the master that holds its key's slot. The
// nodes' connections use the backend's RedisConfig (password, TLS,
// timeouts; not its host, port or database).
type ClusterConfig struct {
	// Addrs are seed nodes, "host:port": any one that answers gives the
	// slot map. Required.
	Addrs []string
}

func (c *ClusterConfig) validate() error {
	if len(c.Addrs) == 0 {
		return fmt.Errorf("%w: Cluster.Addrs is empty", ErrInvalid)
	}
	for _, a := range c.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("%w: cluster address %q is not host:port", ErrInvalid, a)
		}
	}
	return nil
}

// clusterRouter keeps the slot map and one pipelining server per master,
// each a child of the backend's supervisor, added and stopped as the map
// changes (after a failover, a MOVED, or every HealthCheckInterval).
type clusterRouter struct {
	seeds    []string
	dialOpts []redis.DialOption
	template server.Config // Dial and Name set per master
	tree     *suture.Supervisor
	logger   *slog.Logger
	every    time.Duration
	kick     chan struct{} // a call found its master unreachable: refresh soon

	updating sync.Mutex // one refresh at a time
	mu       sync.RWMutex
	slots    [protocol.SlotCount]*server.Server
	nodes    map[string]*server.Server // master address -> its server
	gen      uint64                    // counts refreshes
	ready    chan struct{}             // closed at the first slot map
	stopped  bool
}

func newClusterRouter(c *ClusterConfig, rc RedisConfig, opts []redis.DialOption, template server.Config,
	tree *suture.Supervisor, logger *slog.Logger) *clusterRouter {
	every := template.HealthCheckInterval
	if every <= 0 {
		every = server.DefaultHealthCheckInterval
	}
	template.Cluster = true
	return &clusterRouter{
		seeds: append([]string(nil), c.Addrs...),
		dialOpts: append([]redis.DialOption{redis.DialConnectTimeout(rc.ConnectTimeout),
			redis.DialReadTimeout(rc.ReadTimeout), redis.DialWriteTimeout(rc.WriteTimeout)}, opts...),
		template: template, tree: tree, logger: logger, every: every,
		nodes: map[string]*server.Server{}, ready: make(chan struct{}), kick: make(chan struct{}, 1),
	}
}

// route returns the server of the master that holds key's slot, and the
// map's generation, or nil before the first slot map.
func (r *clusterRouter) route(key BucketKey, layout protocol.Layout) (*server.Server, uint64) {
	slot := protocol.Slot(layout.Key(key))
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.slots[slot], r.gen
}

// servers returns the current masters' servers.
func (r *clusterRouter) servers() []*server.Server {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*server.Server, 0, len(r.nodes))
	for _, s := range r.nodes {
		out = append(out, s)
	}
	return out
}

// update reads the slot map from the first node that answers, starts a
// server for every new master and stops those of nodes no longer masters.
// A caller that saw generation gen and got a redirect calls it with gen: if
// someone refreshed meanwhile, there is nothing to do.
func (r *clusterRouter) update(ctx context.Context, gen uint64) error {
	r.updating.Lock()
	defer r.updating.Unlock()
	r.mu.RLock()
	if gen != 0 && gen != r.gen {
		r.mu.RUnlock()
		return nil
	}
	addrs := append([]string(nil), r.seeds...)
	for a := range r.nodes {
		addrs = append(addrs, a)
	}
	r.mu.RUnlock()

	ranges, err := r.slotMap(ctx, addrs)
	if err != nil {
		return err
	}
	var slots [protocol.SlotCount]*server.Server
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return ErrStopped
	}
	keep := map[string]bool{}
	for _, rg := range ranges {
		srv := r.nodes[rg.master]
		if srv == nil {
			cfg := r.template
			addr := rg.master
			cfg.Name = addr
			cfg.Dial = func(ctx context.Context) (redis.Conn, error) {
				return redis.DialContext(ctx, "tcp", addr, r.dialOpts...)
			}
			if srv, err = server.New(cfg); err != nil {
				r.mu.Unlock()
				return err
			}
			r.nodes[addr] = srv
			r.tree.Add(supervisor.Service(srv, r.logger))
		}
		keep[rg.master] = true
		for s := rg.start; s <= rg.end; s++ {
			slots[s] = srv
		}
	}
	var gone []*server.Server
	for a, s := range r.nodes {
		if !keep[a] {
			gone = append(gone, s)
			delete(r.nodes, a)
		}
	}
	r.slots = slots
	r.gen++
	if r.gen == 1 {
		close(r.ready)
	}
	r.mu.Unlock()
	for _, s := range gone {
		s.Stop() // its Serve returns ErrDoNotRestart: the tree drops it
	}
	return nil
}

type slotRange struct {
	start, end int
	master     string
}

// slotMap asks the nodes in turn for CLUSTER SLOTS.
func (r *clusterRouter) slotMap(ctx context.Context, addrs []string) ([]slotRange, error) {
	var errs []error
	for _, a := range addrs {
		ranges, err := r.askSlots(ctx, a)
		if err == nil {
			return ranges, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", a, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("no cluster node gave the slot map: %w", errors.Join(errs...))
}

func (r *clusterRouter) askSlots(ctx context.Context, addr string) ([]slotRange, error) {
	conn, err := redis.DialContext(ctx, "tcp", addr, r.dialOpts...)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	reply, err := redis.Values(conn.Do("CLUSTER", "SLOTS"))
	if err != nil {
		return nil, err
	}
	var out []slotRange
	for _, e := range reply {
		v, ok := e.([]any)
		if !ok || len(v) < 3 {
			return nil, fmt.Errorf("%w: CLUSTER SLOTS entry %T", ErrBadReply, e)
		}
		start, err1 := redis.Int(v[0], nil)
		end, err2 := redis.Int(v[1], nil)
		node, err3 := redis.Values(v[2], nil)
		if err1 != nil || err2 != nil || err3 != nil || len(node) < 2 || start < 0 || end >= protocol.SlotCount || start > end {
			return nil, fmt.Errorf("%w: CLUSTER SLOTS entry %v", ErrBadReply, v)
		}
		host, err1 := redis.String(node[0], nil)
		port, err2 := redis.Int(node[1], nil)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%w: CLUSTER SLOTS node %v", ErrBadReply, node)
		}
		if host == "" {
			host, _, _ = net.SplitHostPort(addr) // the node we asked
		}
		out = append(out, slotRange{start, end, net.JoinHostPort(host, strconv.Itoa(port))})
	}
	if len(out) == 0 {
		return nil, errors.New("the node serves no slots")
	}
	return out, nil
}

// redirect classifies err: a MOVED or a call to a server the map has since
// dropped (refresh the map and call again), or an ASK to addr (send the call
// there, after ASKING). A redirect means the command did not run, so
// sending it again is safe.
func redirect(err error) (moved bool, askAddr string) {
	var rerr redis.Error
	if errors.As(err, &rerr) {
		f := strings.Fields(string(rerr))
		switch {
		case len(f) == 3 && f[0] == "MOVED":
			return true, ""
		case len(f) == 3 && f[0] == "ASK":
			return false, f[2]
		}
		return false, ""
	}
	return errors.Is(err, ErrStopped), ""
}

// node returns the server of the master at addr, if the map has one.
func (r *clusterRouter) node(addr string) *server.Server {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.nodes[addr]
}

// clusterCall runs one call on the server of key's slot. After a MOVED it
// refreshes the map and calls once more; after an ASK it sends the call,
// with ASKING, to the node named.
func clusterCall[T any](ctx context.Context, r *clusterRouter, key BucketKey, layout protocol.Layout,
	call func(s *server.Server, asking bool) (T, error)) (T, error) {
	var zero T
	for attempt := 0; ; attempt++ {
		srv, gen := r.route(key, layout)
		if srv == nil {
			return zero, fmt.Errorf("%w: the cluster's slot map is not known yet", ErrClosed)
		}
		v, err := call(srv, false)
		if errors.Is(err, ErrClosed) {
			// Its master may be gone: have the map re-read soon, without
			// waiting for the next HealthCheckInterval.
			select {
			case r.kick <- struct{}{}:
			default:
			}
		}
		moved, ask := redirect(err)
		switch {
		case ask != "":
			if target := r.node(ask); target != nil {
				return call(target, true)
			}
			// A node the map does not know yet: refresh, and try again.
		case !moved || attempt > 0:
			return v, err
		}
		if attempt > 0 {
			return v, err
		}
		if uerr := r.update(ctx, gen); uerr != nil {
			return v, err
		}
	}
}

// kickEvery spaces the refreshes that calls ask for when their master is
// unreachable.
const kickEvery = 100 * time.Millisecond

// topology refreshes the slot map every HealthCheckInterval, within
// kickEvery when a call finds its master unreachable (a redirected call
// refreshes it at once, itself), and retries while no node answers.
type topology struct{ r *clusterRouter }

func (t topology) String() string { return "hammerredis cluster topology" }

func (t topology) Serve(ctx context.Context) error {
	tick := time.NewTicker(t.r.every)
	defer tick.Stop()
	for {
		if err := t.r.update(ctx, 0); err != nil && ctx.Err() == nil {
			if errors.Is(err, ErrStopped) {
				return fmt.Errorf("%w: %w", suture.ErrDoNotRestart, err)
			}
			t.r.logger.Warn("hammerredis: cannot read the cluster's slot map", "error", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		case <-t.r.kick:
			// At most one kicked refresh per kickEvery: while a master is
			// down, every call for its slots kicks.
			wait := time.NewTimer(kickEvery)
			select {
			case <-ctx.Done():
				wait.Stop()
				return ctx.Err()
			case <-wait.C:
			}
		}
	}
}

// stop stops every node's server for good.
func (r *clusterRouter) stop() {
	r.mu.Lock()
	r.stopped = true
	nodes := r.nodes
	r.nodes = map[string]*server.Server{}
	r.mu.Unlock()
	for _, s := range nodes {
		s.Stop()
	}
}

// waitConnected waits for the first slot map, then for every master.
func (r *clusterRouter) waitConnected(ctx context.Context) error {
	select {
	case <-r.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, s := range r.servers() {
		if err := s.WaitConnected(ctx); err != nil {
			return err
		}
	}
	return nil
}
