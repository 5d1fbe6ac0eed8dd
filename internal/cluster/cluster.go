// Package cluster routes a backend's calls over a Redis Cluster: it keeps
// the slot map (CLUSTER SLOTS), one pipelining server per master, follows
// MOVED and ASK redirects, counts each call once, and runs DeleteBuckets on
// every master at once. It receives resolved settings: every default is
// applied by the caller.
package cluster

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

	"github.com/hammer-go/hammerredis/internal/redisdial"
	"github.com/hammer-go/hammerredis/protocol"
	"github.com/hammer-go/hammerredis/server"
	"github.com/hammer-go/hammerredis/supervisor"
)

// Config is a resolved cluster configuration: every field is set.
type Config struct {
	// Seeds are the nodes first asked for the slot map, "host:port".
	Seeds []string
	// DialOptions dial every node.
	DialOptions []redis.DialOption
	// Server is the config of every master's server, with every field set
	// but Dial and Name, which are set per master.
	Server server.Config
	// Tree is the supervisor the masters' servers and the topology service
	// are added to.
	Tree *suture.Supervisor
	// Logger receives the router's events.
	Logger *slog.Logger
	// RefreshEvery is how often the slot map is read again; > 0.
	RefreshEvery time.Duration
	// NodeTimeout is a node connection's ConnectTimeout plus ReadTimeout:
	// it bounds one node's answer to CLUSTER SLOTS, up to 2s.
	NodeTimeout time.Duration
	// DeleteTimeout bounds a DeleteBuckets over all masters.
	DeleteTimeout time.Duration
}

// Router keeps the slot map and one pipelining server per master,
// each a child of the backend's supervisor, added and stopped as the map
// changes (after a failover, a MOVED, or every HealthCheckInterval).
//
// Every wait on the callers' side (for the first slot map, for a refresh
// in progress, for a node's CLUSTER SLOTS) ends with the caller's context
// or Stop.
type Router struct {
	seeds         []string
	layout        protocol.Layout // the key layout, for routing by slot
	dialOpts      []redis.DialOption
	template      server.Config // Dial and Name set per master
	tree          *suture.Supervisor
	logger        *slog.Logger
	every         time.Duration
	askTimeout    time.Duration // bounds one node's answer to CLUSTER SLOTS
	deleteTimeout time.Duration // bounds a DeleteBuckets over all masters
	kick          chan struct{} // a call found its master unreachable: refresh soon

	// calls counts the callers' calls once each, however many servers a
	// redirect sent them to (see Stats).
	calls server.Recorder

	updating chan struct{} // holds a token while a refresh runs: one at a time
	tried    chan struct{} // closed when the first refresh has ended, well or not
	tryOnce  sync.Once
	done     chan struct{} // closed by Stop

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

// New returns the router of cfg and adds its topology service to cfg.Tree,
// which reads the slot map once the tree runs.
func New(cfg Config) *Router {
	template := cfg.Server
	template.Cluster = true
	r := &Router{
		seeds:    slices.Clone(cfg.Seeds),
		dialOpts: cfg.DialOptions,
		layout:   protocol.Layout{Prefix: template.KeyPrefix, HashTag: template.HashTag},
		template: template, tree: cfg.Tree, logger: cfg.Logger, every: cfg.RefreshEvery,
		askTimeout:    askTimeout(cfg.NodeTimeout),
		deleteTimeout: cfg.DeleteTimeout,
		nodes:         map[string]*server.Server{}, leaving: map[*server.Server]bool{},
		ready: make(chan struct{}), kick: make(chan struct{}, 1),
		updating: make(chan struct{}, 1), tried: make(chan struct{}), done: make(chan struct{}),
	}
	cfg.Tree.Add(topology{r})
	return r
}

// askTimeout bounds one node's answer to CLUSTER SLOTS: a dial and a read
// (nodeTimeout), at most askSlotsTimeout.
func askTimeout(nodeTimeout time.Duration) time.Duration {
	if nodeTimeout > 0 && nodeTimeout < askSlotsTimeout {
		return nodeTimeout
	}
	return askSlotsTimeout
}

// route returns the server of the master that holds slot, and the map's
// generation; nil before the first slot map or after stop.
func (r *Router) route(slot int) (*server.Server, uint64, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.slots[slot], r.gen, r.stopped
}

// routeWait is route that, before the first refresh has ended, waits for it
// (within ctx and until stop). Once a refresh has failed without any map
// known, it fails at once with ErrClosed.
func (r *Router) routeWait(ctx context.Context, slot int, op string) (*server.Server, uint64, error) {
	for {
		srv, gen, stopped := r.route(slot)
		switch {
		case stopped:
			return nil, 0, protocol.ErrStopped
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
func (r *Router) waitTried(ctx context.Context, op string) error {
	select {
	case <-r.tried:
		return nil
	case <-r.done:
		return protocol.ErrStopped
	case <-ctx.Done():
		return ctxErr(ctx, op)
	}
}

// ctxErr says why a caller whose context ended stopped waiting, as the
// servers do: a deadline matches both ErrTimeout and
// context.DeadlineExceeded; a cancellation is the context's error.
func ctxErr(ctx context.Context, op string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w (%s): %w", protocol.ErrTimeout, op, context.DeadlineExceeded)
	}
	return fmt.Errorf("hammerredis (%s): %w", op, ctx.Err())
}

// noMapErr is the error of a call for a slot no master is known for.
func (r *Router) noMapErr() error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.stopped {
		return protocol.ErrStopped
	}
	if r.mapErr != nil {
		return fmt.Errorf("%w: the cluster's slot map is not known: %w", protocol.ErrClosed, r.mapErr)
	}
	return fmt.Errorf("%w: the cluster's slot map is not known yet", protocol.ErrClosed)
}

func (r *Router) isStopped() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.stopped
}

// servers returns the current masters' servers.
func (r *Router) servers() []*server.Server {
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
func (r *Router) update(ctx context.Context, gen uint64) error {
	select {
	case r.updating <- struct{}{}:
	case <-r.done:
		return protocol.ErrStopped
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
		return protocol.ErrStopped
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
		return protocol.ErrStopped
	}
	keep := map[string]bool{}
	for _, rg := range ranges {
		srv := r.nodes[rg.master]
		if srv == nil {
			cfg := r.template
			addr := rg.master
			cfg.Name = addr
			cfg.Dial = redisdial.To("tcp", addr, r.dialOpts)
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
func (r *Router) retire(s *server.Server) {
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

// Stats returns the backend's counters. The calls, their errors and
// latencies are counted here, once per caller's call: the servers count
// every call they get, so a call that a MOVED or an ASK sent to two servers
// would count twice, and the counts of a server that left the map would
// vanish with it. The connection counters are summed over the servers,
// those that left the map included (retired), so they only grow too.
func (r *Router) Stats() protocol.Stats {
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
func (r *Router) slotMap(ctx context.Context, addrs []string) ([]slotRange, error) {
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
func (r *Router) askSlots(ctx context.Context, addr string) ([]slotRange, error) {
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
			return nil, fmt.Errorf("%w: CLUSTER SLOTS entry %T", protocol.ErrBadReply, e)
		}
		start, err1 := redis.Int(v[0], nil)
		end, err2 := redis.Int(v[1], nil)
		node, err3 := redis.Values(v[2], nil)
		if err1 != nil || err2 != nil || err3 != nil || len(node) < 2 || start < 0 || end >= protocol.SlotCount || start > end {
			return nil, fmt.Errorf("%w: CLUSTER SLOTS entry %v", protocol.ErrBadReply, v)
		}
		host, err1 := redis.String(node[0], nil)
		port, err2 := redis.Int(node[1], nil)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%w: CLUSTER SLOTS node %v", protocol.ErrBadReply, node)
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
func (r *Router) node(addr string) *server.Server {
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
	opHit           protocol.Request = &protocol.Hit{}
	opInc           protocol.Request = &protocol.Inc{}
	opSet           protocol.Request = &protocol.Set{}
	opGet           protocol.Request = &protocol.Get{}
)

// Hit runs a Hammer 7 hit on the master of its key's slot.
func (r *Router) Hit(ctx context.Context, h protocol.Hit) (protocol.HitReply, error) {
	return clusterCall(ctx, r, opHit, protocol.Slot(h.Policy.Key(h.ID, h.Now)), func(s *server.Server, asking bool) (protocol.HitReply, error) {
		return s.Hit(ctx, h, asking)
	})
}

// Inc runs a Hammer 7 inc on the master of its key's slot.
func (r *Router) Inc(ctx context.Context, i protocol.Inc) (int64, error) {
	return clusterCall(ctx, r, opInc, protocol.Slot(i.Policy.Key(i.ID, i.Now)), func(s *server.Server, asking bool) (int64, error) {
		return s.Inc(ctx, i, asking)
	})
}

// Set runs a Hammer 7 set on the master of its key's slot.
func (r *Router) Set(ctx context.Context, st protocol.Set) (int64, error) {
	return clusterCall(ctx, r, opSet, protocol.Slot(st.Policy.Key(st.ID, st.Now)), func(s *server.Server, asking bool) (int64, error) {
		return s.Set(ctx, st, asking)
	})
}

// Get runs a Hammer 7 get on the master of its key's slot.
func (r *Router) Get(ctx context.Context, g protocol.Get) (int64, error) {
	return clusterCall(ctx, r, opGet, protocol.Slot(g.Policy.Key(g.ID, g.Now)), func(s *server.Server, asking bool) (int64, error) {
		return s.Get(ctx, g, asking)
	})
}

// slot returns the slot of the bucket key.
func (r *Router) slot(key protocol.BucketKey) int { return protocol.Slot(r.layout.Key(key)) }

// CountHit adds increment to the bucket key at now on the master of key's
// slot and returns the new count.
func (r *Router) CountHit(ctx context.Context, key protocol.BucketKey, now, increment int64) (int64, error) {
	return clusterCall(ctx, r, opCountHit, r.slot(key), func(s *server.Server, asking bool) (int64, error) {
		if asking {
			return s.CountHitAsking(ctx, key, now, increment)
		}
		return s.CountHit(ctx, key, now, increment)
	})
}

// GetBucket reads the bucket key on the master of its slot.
func (r *Router) GetBucket(ctx context.Context, key protocol.BucketKey) (*protocol.BucketInfo, error) {
	return clusterCall(ctx, r, opGetBucket, r.slot(key), func(s *server.Server, asking bool) (*protocol.BucketInfo, error) {
		if asking {
			return s.GetBucketAsking(ctx, key)
		}
		return s.GetBucket(ctx, key)
	})
}

// clusterCall runs one call on the server of key's slot and counts it once
// in the router's stats, however many servers it visited. After a MOVED,
// or when the map dropped the server meanwhile, it refreshes the map and
// calls once more; after an ASK it sends the call, with ASKING, to the node
// named.
func clusterCall[T any](ctx context.Context, r *Router, op protocol.Request, slot int,
	call func(s *server.Server, asking bool) (T, error)) (T, error) {
	begin := time.Now()
	v, err := clusterTry(ctx, r, op.Op(), slot, call)
	r.calls.Record(op, err, time.Since(begin))
	return v, err
}

func clusterTry[T any](ctx context.Context, r *Router, op string, slot int,
	call func(s *server.Server, asking bool) (T, error)) (T, error) {
	var zero T
	var movedFrom, movedTo *server.Server // the last MOVED: who answered it, whom it named
	for attempt := 0; ; attempt++ {
		srv, gen, err := r.routeWait(ctx, slot, op)
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
		if errors.Is(err, protocol.ErrClosed) {
			// Its master may be gone: have the map re-read soon, without
			// waiting for the next HealthCheckInterval.
			select {
			case r.kick <- struct{}{}:
			default:
			}
		}
		moved, to, ask := redirect(err)
		if errors.Is(err, protocol.ErrStopped) {
			if r.isStopped() {
				return v, protocol.ErrStopped // no refresh, no dial: the backend is stopped
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
			return v, fmt.Errorf("%w (%s): redirected %d times, the slot map is still moving: %v", protocol.ErrClosed, op, maxRedirects, err)
		}
		if uerr := r.update(ctx, gen); uerr != nil {
			if errors.Is(uerr, protocol.ErrStopped) {
				return v, protocol.ErrStopped
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

// DeleteBuckets runs DeleteBuckets on every master at once, under one
// timeout for all (deleteTimeout, or ctx's earlier deadline), and sums
// their counts. On an error the count is of the keys deleted by then, and
// the error is the first one.
func (r *Router) DeleteBuckets(ctx context.Context, id string) (int64, error) {
	begin := time.Now()
	n, err := r.deleteEverywhere(ctx, id)
	r.calls.Record(opDeleteBuckets, err, time.Since(begin))
	return n, err
}

func (r *Router) deleteEverywhere(ctx context.Context, id string) (int64, error) {
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
		return 0, protocol.ErrStopped
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
type topology struct{ r *Router }

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
			if errors.Is(err, protocol.ErrStopped) {
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

// Stop stops every node's server for good; calls then fail with
// ErrStopped at once, without refreshing the map.
func (r *Router) Stop() {
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

// WaitConnected waits for the first slot map, then for every master; it
// returns ErrStopped once the backend is stopped.
func (r *Router) WaitConnected(ctx context.Context) error {
	for {
		select {
		case <-r.ready:
		case <-r.done:
			return protocol.ErrStopped
		case <-ctx.Done():
			return ctx.Err()
		}
		left := false
		for _, s := range r.servers() {
			if err := s.WaitConnected(ctx); err != nil {
				if !errors.Is(err, protocol.ErrStopped) || r.isStopped() {
					return err
				}
				left = true // s left the map meanwhile: wait for the new masters
				break
			}
		}
		switch {
		case r.isStopped():
			return protocol.ErrStopped
		case !left:
			return nil
		}
	}
}

// Connected reports whether the slot map is known and every master's
// server has a working connection right now.
func (r *Router) Connected() bool {
	select {
	case <-r.ready:
	default:
		return false
	}
	if r.isStopped() {
		return false
	}
	for _, s := range r.servers() {
		if !s.Connected() {
			return false
		}
	}
	return true
}
