package hammerredis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
// timeouts; not its host or port). New refuses a Database other than 0
// (cluster nodes refuse SELECT) and a Sentinel with it.
//
// A call made before the first slot map waits for it (within its context);
// once reading the map has failed, calls fail at once with ErrClosed until
// a node answers. DeleteBuckets scans the masters at once, under one
// DeleteBucketsTimeout for all.
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
//
// Every wait on the callers' side (for the first slot map, for a refresh
// in progress, for a node's CLUSTER SLOTS) ends with the caller's context
// or Stop.
type clusterRouter struct {
	seeds         []string
	dialOpts      []redis.DialOption
	template      server.Config // Dial and Name set per master
	tree          *suture.Supervisor
	logger        *slog.Logger
	every         time.Duration
	askTimeout    time.Duration // bounds one node's answer to CLUSTER SLOTS
	deleteTimeout time.Duration // bounds a DeleteBuckets over all masters
	kick          chan struct{} // a call found its master unreachable: refresh soon

	// calls counts the callers' calls once each, however many servers a
	// redirect sent them to (see stats).
	calls server.Recorder

	updating chan struct{} // holds a token while a refresh runs: one at a time
	tried    chan struct{} // closed when the first refresh has ended, well or not
	tryOnce  sync.Once
	done     chan struct{} // closed by stop

	mu      sync.RWMutex
	slots   [protocol.SlotCount]*server.Server
	nodes   map[string]*server.Server // master address -> its server
	leaving map[*server.Server]bool   // dropped from the map, being stopped
	retired protocol.Stats            // the connection counters of stopped servers
	gen     uint64                    // counts refreshes
	ready   chan struct{}             // closed at the first slot map
	mapErr  error                     // why the latest refresh failed, nil after a success
	stopped bool
}

// askSlotsTimeout caps how long one node may take to give the slot map
// (dial and CLUSTER SLOTS), whatever the connection timeouts: a node that
// slow is not one to route by, and the others are asked meanwhile.
const askSlotsTimeout = 2 * time.Second

// askStagger is how long a refresh waits for a node's slot map before it
// asks the next node as well: a frozen node delays a refresh by this much,
// not by its timeouts.
const askStagger = 50 * time.Millisecond

func newClusterRouter(c *ClusterConfig, rc RedisConfig, opts []redis.DialOption, template server.Config,
	tree *suture.Supervisor, logger *slog.Logger) *clusterRouter {
	every := template.HealthCheckInterval
	if every <= 0 {
		every = server.DefaultHealthCheckInterval
	}
	deleteTimeout := template.DeleteBucketsTimeout
	if deleteTimeout <= 0 {
		deleteTimeout = server.DefaultDeleteBucketsTimeout
	}
	template.Cluster = true
	return &clusterRouter{
		seeds: append([]string(nil), c.Addrs...),
		dialOpts: append([]redis.DialOption{redis.DialConnectTimeout(rc.ConnectTimeout),
			redis.DialReadTimeout(rc.ReadTimeout), redis.DialWriteTimeout(rc.WriteTimeout)}, opts...),
		template: template, tree: tree, logger: logger, every: every,
		askTimeout:    askTimeout(rc),
		deleteTimeout: deleteTimeout,
		nodes:         map[string]*server.Server{}, leaving: map[*server.Server]bool{},
		ready: make(chan struct{}), kick: make(chan struct{}, 1),
		updating: make(chan struct{}, 1), tried: make(chan struct{}), done: make(chan struct{}),
	}
}

// askTimeout bounds one node's answer to CLUSTER SLOTS: a dial and a read,
// at most askSlotsTimeout.
func askTimeout(rc RedisConfig) time.Duration {
	if d := rc.ConnectTimeout + rc.ReadTimeout; d > 0 && d < askSlotsTimeout {
		return d
	}
	return askSlotsTimeout
}

// route returns the server of the master that holds key's slot, and the
// map's generation; nil before the first slot map or after stop.
func (r *clusterRouter) route(key BucketKey, layout protocol.Layout) (*server.Server, uint64, bool) {
	slot := protocol.Slot(layout.Key(key))
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.slots[slot], r.gen, r.stopped
}

// routeWait is route that, before the first refresh has ended, waits for it
// (within ctx and until stop). Once a refresh has failed without any map
// known, it fails at once with ErrClosed.
func (r *clusterRouter) routeWait(ctx context.Context, key BucketKey, layout protocol.Layout, op string) (*server.Server, uint64, error) {
	for {
		srv, gen, stopped := r.route(key, layout)
		switch {
		case stopped:
			return nil, 0, ErrStopped
		case srv != nil:
			return srv, gen, nil
		}
		select {
		case <-r.tried:
			return nil, 0, r.noMapErr()
		default:
		}
		if err := r.waitTried(ctx, op); err != nil {
			return nil, 0, err
		}
	}
}

// waitTried waits until the first refresh has ended.
func (r *clusterRouter) waitTried(ctx context.Context, op string) error {
	select {
	case <-r.tried:
		return nil
	case <-r.done:
		return ErrStopped
	case <-ctx.Done():
		return ctxErr(ctx, op)
	}
}

// ctxErr says why a caller whose context ended stopped waiting, as the
// servers do: a deadline matches both ErrTimeout and
// context.DeadlineExceeded; a cancellation is the context's error.
func ctxErr(ctx context.Context, op string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w (%s): %w", ErrTimeout, op, context.DeadlineExceeded)
	}
	return fmt.Errorf("hammerredis (%s): %w", op, ctx.Err())
}

// noMapErr is the error of a call for a slot no master is known for.
func (r *clusterRouter) noMapErr() error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.stopped {
		return ErrStopped
	}
	if r.mapErr != nil {
		return fmt.Errorf("%w: the cluster's slot map is not known: %w", ErrClosed, r.mapErr)
	}
	return fmt.Errorf("%w: the cluster's slot map is not known yet", ErrClosed)
}

func (r *clusterRouter) isStopped() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.stopped
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
// someone refreshed meanwhile, there is nothing to do. It waits for a
// refresh in progress, and asks the nodes, only as long as ctx allows.
func (r *clusterRouter) update(ctx context.Context, gen uint64) error {
	select {
	case r.updating <- struct{}{}:
	case <-r.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.updating }()
	r.mu.RLock()
	stopped, current := r.stopped, r.gen
	addrs := append([]string(nil), r.seeds...)
	for a := range r.nodes {
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	r.mu.RUnlock()
	switch {
	case stopped:
		return ErrStopped
	case gen != 0 && gen != current:
		return nil
	}

	ranges, err := r.slotMap(ctx, addrs)
	if err != nil {
		r.mu.Lock()
		r.mapErr = err
		r.mu.Unlock()
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
			r.leaving[s] = true
		}
	}
	r.slots = slots
	r.mapErr = nil
	r.gen++
	if r.gen == 1 {
		close(r.ready)
	}
	r.mu.Unlock()
	for _, s := range gone {
		s.Stop() // its Serve returns ErrDoNotRestart: the tree drops it
		r.retire(s)
	}
	return nil
}

// retire folds the connection counters of s, stopped, into the router's
// retained total, so that the backend's Stats never go backwards when a
// master leaves the map. Until then s is in leaving and counted live.
func (r *clusterRouter) retire(s *server.Server) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.leaving, s)
	r.retired = addConnStats(r.retired, s.Stats())
}

// addConnStats adds the connection counters of o to st: what a server
// counts by itself. Calls, errors and latencies are counted by the router.
func addConnStats(st, o protocol.Stats) protocol.Stats {
	st.Connects += o.Connects
	st.Restarts += o.Restarts
	st.DialFailures += o.DialFailures
	return st
}

// stats returns the backend's counters. The calls, their errors and
// latencies are counted here, once per caller's call: the servers count
// every call they get, so a call that a MOVED or an ASK sent to two servers
// would count twice, and the counts of a server that left the map would
// vanish with it. The connection counters are summed over the servers,
// those that left the map included (retired), so they only grow too.
func (r *clusterRouter) stats() protocol.Stats {
	st := r.calls.Snapshot()
	r.mu.RLock()
	defer r.mu.RUnlock()
	st = addConnStats(st, r.retired)
	st.Connected = r.gen > 0 && !r.stopped
	for _, s := range r.nodes {
		o := s.Stats()
		st = addConnStats(st, o)
		st.QueueDepth += o.QueueDepth
		st.QueueCapacity += o.QueueCapacity
		st.InAir += o.InAir
		st.Connected = st.Connected && o.Connected
	}
	for s := range r.leaving {
		o := s.Stats()
		st = addConnStats(st, o)
		st.InAir += o.InAir // answered before it stops
	}
	return st
}

type slotRange struct {
	start, end int
	master     string
}

// slotMap asks the nodes for CLUSTER SLOTS, in turn but without waiting for
// a slow one: the next node is asked as soon as the previous one failed, or
// askStagger after it was asked, and the first map wins. It returns when a
// node answers, every node failed or ctx is done; the asks still running
// are then cancelled.
func (r *clusterRouter) slotMap(ctx context.Context, addrs []string) ([]slotRange, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		addr   string
		ranges []slotRange
		err    error
	}
	answers := make(chan answer, len(addrs)) // buffered: the losers never block
	next, pending := 0, 0
	ask := func() {
		addr := addrs[next]
		next++
		pending++
		go func() {
			ranges, err := r.askSlots(ctx, addr)
			answers <- answer{addr, ranges, err}
		}()
	}
	ask()
	stagger := time.NewTicker(askStagger)
	defer stagger.Stop()
	var errs []error
	for pending > 0 {
		select {
		case a := <-answers:
			pending--
			if a.err == nil {
				return a.ranges, nil
			}
			errs = append(errs, fmt.Errorf("%s: %w", a.addr, a.err))
			if next < len(addrs) {
				ask()
			}
		case <-stagger.C:
			if next < len(addrs) {
				ask()
			}
		case <-ctx.Done():
			errs = append(errs, ctx.Err())
			pending = 0
		}
	}
	return nil, fmt.Errorf("no cluster node gave the slot map: %w", errors.Join(errs...))
}

// askSlots reads the slot map from the node at addr on a connection of its
// own, within ctx and askTimeout: closing the connection when ctx ends
// unblocks the read at once.
func (r *clusterRouter) askSlots(ctx context.Context, addr string) ([]slotRange, error) {
	ctx, cancel := context.WithTimeout(ctx, r.askTimeout)
	defer cancel()
	conn, err := redis.DialContext(ctx, "tcp", addr, r.dialOpts...)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	reply, err := redis.Values(conn.Do("CLUSTER", "SLOTS"))
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
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

// redirect classifies err: a MOVED (refresh the map and call again), or an
// ASK to addr (send the call there, after ASKING). A redirect means the
// command did not run, so sending it again is safe.
func redirect(err error) (moved bool, movedTo, askAddr string) {
	var rerr redis.Error
	if errors.As(err, &rerr) {
		f := strings.Fields(string(rerr))
		switch {
		case len(f) == 3 && f[0] == "MOVED":
			return true, f[2], ""
		case len(f) == 3 && f[0] == "ASK":
			return false, "", f[2]
		}
	}
	return false, "", ""
}

// node returns the server of the master at addr, if the map has one.
func (r *clusterRouter) node(addr string) *server.Server {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.nodes[addr]
}

// Requests naming each operation for the router's call counts (the servers
// count requests held by pointer).
var (
	opCountHit      protocol.Request = &protocol.CountHit{}
	opGetBucket     protocol.Request = &protocol.GetBucket{}
	opDeleteBuckets protocol.Request = &protocol.DeleteBuckets{}
)

// clusterCall runs one call on the server of key's slot and counts it once
// in the router's stats, however many servers it visited. After a MOVED,
// or when the map dropped the server meanwhile, it refreshes the map and
// calls once more; after an ASK it sends the call, with ASKING, to the node
// named.
func clusterCall[T any](ctx context.Context, r *clusterRouter, op protocol.Request, key BucketKey,
	layout protocol.Layout, call func(s *server.Server, asking bool) (T, error)) (T, error) {
	begin := time.Now()
	v, err := clusterTry(ctx, r, op.Op(), key, layout, call)
	r.calls.Record(op, err, time.Since(begin))
	return v, err
}

func clusterTry[T any](ctx context.Context, r *clusterRouter, op string, key BucketKey,
	layout protocol.Layout, call func(s *server.Server, asking bool) (T, error)) (T, error) {
	var zero T
	var movedFrom, movedTo *server.Server // the last MOVED: who answered it, whom it named
	for attempt := 0; ; attempt++ {
		srv, gen, err := r.routeWait(ctx, key, layout, op)
		if err != nil {
			return zero, err
		}
		if srv == movedFrom && movedTo != nil {
			// The map was read from a node that has not learned of the
			// move yet: go where the MOVED said.
			srv = movedTo
		}
		v, err := call(srv, false)
		if err == nil {
			return v, nil
		}
		if errors.Is(err, ErrClosed) {
			// Its master may be gone: have the map re-read soon, without
			// waiting for the next HealthCheckInterval.
			select {
			case r.kick <- struct{}{}:
			default:
			}
		}
		moved, to, ask := redirect(err)
		if errors.Is(err, ErrStopped) {
			if r.isStopped() {
				return v, ErrStopped // no refresh, no dial: the backend is stopped
			}
			moved = true // the map dropped srv since route
		}
		switch {
		case ask != "":
			if target := r.node(ask); target != nil {
				return call(target, true)
			}
			// A node the map does not know yet: refresh, and try again.
		case !moved:
			return v, err
		}
		if attempt+1 >= maxRedirects {
			// The call did not run: ErrClosed says so, and that the
			// cluster is still settling.
			return v, fmt.Errorf("%w (%s): redirected %d times, the slot map is still moving: %v", ErrClosed, op, maxRedirects, err)
		}
		if uerr := r.update(ctx, gen); uerr != nil {
			if errors.Is(uerr, ErrStopped) {
				return v, ErrStopped
			}
			if ctx.Err() != nil {
				return v, ctxErr(ctx, op)
			}
			return v, err
		}
		movedFrom, movedTo = srv, nil
		if to != "" {
			movedTo = r.node(to)
		}
	}
}

// maxRedirects bounds the MOVED redirects one call follows, each after a
// slot-map refresh (go-redis's default too).
const maxRedirects = 3

// deleteBuckets runs DeleteBuckets on every master at once, under one
// timeout for all (deleteTimeout, or ctx's earlier deadline), and sums
// their counts. On an error the count is of the keys deleted by then, and
// the error is the first one.
func (r *clusterRouter) deleteBuckets(ctx context.Context, id string) (int64, error) {
	begin := time.Now()
	n, err := r.deleteEverywhere(ctx, id)
	r.calls.Record(opDeleteBuckets, err, time.Since(begin))
	return n, err
}

func (r *clusterRouter) deleteEverywhere(ctx context.Context, id string) (int64, error) {
	if err := (protocol.DeleteBuckets{ID: id}).Validate(); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.deleteTimeout)
	defer cancel()
	if err := r.waitTried(ctx, opDeleteBuckets.Op()); err != nil {
		return 0, err
	}
	select {
	case <-r.ready:
	default:
		return 0, r.noMapErr()
	}
	if r.isStopped() {
		return 0, ErrStopped
	}
	var (
		wg    sync.WaitGroup
		total atomic.Int64
		mu    sync.Mutex
		first error
	)
	// An id's buckets are spread over the masters: each scans its own.
	for _, s := range r.servers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.DeleteBuckets(ctx, id)
			total.Add(n)
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return total.Load(), first
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
		err := t.r.update(ctx, 0)
		// The calls waiting for the first slot map go on, with it or with
		// ErrClosed.
		t.r.tryOnce.Do(func() { close(t.r.tried) })
		if err != nil && ctx.Err() == nil {
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

// stop stops every node's server for good; calls then fail with
// ErrStopped at once, without refreshing the map.
func (r *clusterRouter) stop() {
	r.mu.Lock()
	if !r.stopped {
		r.stopped = true
		close(r.done)
	}
	nodes := r.nodes
	r.nodes = map[string]*server.Server{}
	r.slots = [protocol.SlotCount]*server.Server{}
	for _, s := range nodes {
		r.leaving[s] = true
	}
	r.mu.Unlock()
	for _, s := range nodes {
		s.Stop()
		r.retire(s)
	}
}

// waitConnected waits for the first slot map, then for every master; it
// returns ErrStopped once the backend is stopped.
func (r *clusterRouter) waitConnected(ctx context.Context) error {
	for {
		select {
		case <-r.ready:
		case <-r.done:
			return ErrStopped
		case <-ctx.Done():
			return ctx.Err()
		}
		left := false
		for _, s := range r.servers() {
			if err := s.WaitConnected(ctx); err != nil {
				if !errors.Is(err, ErrStopped) || r.isStopped() {
					return err
				}
				left = true // s left the map meanwhile: wait for the new masters
				break
			}
		}
		switch {
		case r.isStopped():
			return ErrStopped
		case !left:
			return nil
		}
	}
}
