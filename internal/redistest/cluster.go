package redistest

import (
	"context"
	"errors"
	"fmt"
	"github.com/hammer-go/hammerredis/protocol"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// SlotCount is the number of hash slots of a Redis Cluster.
const SlotCount = 16384

// clusterBusOffset is what a cluster node adds to its port for its bus port.
const clusterBusOffset = 10000

// clusterWait bounds how long StartCluster waits for a new cluster to be
// healthy, and how long redis-cli may take to create it.
const clusterWait = 20 * time.Second

// ClusterOptions configure a cluster. The zero value is three masters with
// one replica each and a node timeout of one second.
type ClusterOptions struct {
	// Masters is the number of masters, among which the slots are split;
	// 0 means 3, the fewest Redis accepts.
	Masters int
	// ReplicasPerMaster is the number of replicas of each master; 0 means 1.
	// Use a negative number for none.
	ReplicasPerMaster int
	// NodeTimeout is cluster-node-timeout: how long a node may be
	// unreachable before it is failed over. 0 means one second.
	NodeTimeout time.Duration
	// Args are extra redis-server arguments for every node.
	Args []string
}

// withDefaults returns opts with the documented defaults applied.
func (opts ClusterOptions) withDefaults() ClusterOptions {
	if opts.Masters == 0 {
		opts.Masters = 3
	}
	switch {
	case opts.ReplicasPerMaster == 0:
		opts.ReplicasPerMaster = 1
	case opts.ReplicasPerMaster < 0:
		opts.ReplicasPerMaster = 0
	}
	if opts.NodeTimeout == 0 {
		opts.NodeTimeout = time.Second
	}
	return opts
}

// Cluster is a Redis Cluster of private redis-server processes on loopback
// ports, each with its bus on port+10000. After a failover, Nodes still
// lists the nodes in the order they had at the start: ask Masters or
// MasterOf who leads now.
// It never touches the system's Redis (6379).
type Cluster struct {
	nodes []*Server
	opts  ClusterOptions
}

// StartCluster starts opts.Masters*(1+opts.ReplicasPerMaster) nodes, joins
// them into a cluster with redis-cli --cluster create, and returns once every
// node reports the cluster ok with all 16384 slots served, and every master
// has its replicas in sync.
func StartCluster(opts ClusterOptions) (_ *Cluster, err error) {
	opts = opts.withDefaults()
	if opts.Masters < 3 {
		return nil, fmt.Errorf("redistest: a cluster needs at least 3 masters, not %d", opts.Masters)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, errors.New(InstallHint)
	}
	c := &Cluster{opts: opts}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	args := append([]string{
		"--cluster-enabled", "yes",
		// Relative to the node's own --dir.
		"--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", strconv.FormatInt(opts.NodeTimeout.Milliseconds(), 10),
		"--appendonly", "no",
	}, opts.Args...)
	for range opts.Masters * (1 + opts.ReplicasPerMaster) {
		s, err := startClusterNode(args)
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, s)
	}

	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	create := append([]string{"--cluster", "create"}, c.Addrs()...)
	create = append(create, "--cluster-replicas", strconv.Itoa(opts.ReplicasPerMaster), "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, create...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redistest: redis-cli --cluster create: %w\n%s", err, out)
	}
	if err := c.waitHealthy(ctx, opts.ReplicasPerMaster); err != nil {
		return nil, err
	}
	// redis-cli chooses the masters: put them first.
	masters, err := c.Masters()
	if err != nil {
		return nil, err
	}
	ordered := append([]*Server(nil), masters...)
	for _, s := range c.nodes {
		if !slices.Contains(masters, s) {
			ordered = append(ordered, s)
		}
	}
	c.nodes = ordered
	return c, nil
}

// NewCluster starts a cluster for the test and stops it when the test ends.
// It fails the test, with InstallHint, when redis-server is missing.
func NewCluster(t testing.TB, opts ...ClusterOptions) *Cluster {
	t.Helper()
	return forTest(t, StartCluster, opts)
}

// startClusterNode starts a server with args on a port whose bus port,
// port+10000, is free too.
func startClusterNode(args []string) (*Server, error) {
	var err error
	// As in Start: a free port can be taken before redis binds it, and so
	// can the bus port.
	for attempt := 0; attempt < 5; attempt++ {
		var port int
		if port, err = clusterPort(); err != nil {
			return nil, err
		}
		var s *Server
		if s, err = Start(Options{Port: port, Args: args}); err == nil {
			return s, nil
		}
		if !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	return nil, err
}

// clusterPort returns a free loopback port whose bus port is free as well.
func clusterPort() (int, error) {
	for range 100 {
		port, err := freePort()
		if err != nil {
			return 0, err
		}
		if port+clusterBusOffset > 65535 {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+clusterBusOffset)))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	return 0, errors.New("redistest: found no free port with a free cluster bus port (port+10000)")
}

// Nodes returns every node, the masters of the start first.
func (c *Cluster) Nodes() []*Server { return append([]*Server(nil), c.nodes...) }

// Addrs returns the "127.0.0.1:<port>" address of every node, in the order
// of Nodes, to seed a cluster client with.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, s := range c.nodes {
		addrs[i] = s.Addr()
	}
	return addrs
}

// clusterNode is one line of CLUSTER NODES.
type clusterNode struct {
	id, addr, masterID string
	flags              []string
	slots              [][2]int // inclusive ranges
}

func (n clusterNode) has(flag string) bool { return slices.Contains(n.flags, flag) }

// failing reports whether the node is flagged as failed, or suspected.
func (n clusterNode) failing() bool { return n.has("fail") || n.has("fail?") }

// parseClusterNodes decodes the reply of CLUSTER NODES:
// <id> <ip:port@cport[,hostname]> <flags> <master> <ping-sent> <pong-recv>
// <config-epoch> <link-state> <slot> <slot> ... <slot>
func parseClusterNodes(text string) ([]clusterNode, error) {
	var nodes []clusterNode
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("redistest: malformed CLUSTER NODES line %q", line)
		}
		addr, _, _ := strings.Cut(f[1], "@")
		addr, _, _ = strings.Cut(addr, ",")
		n := clusterNode{id: f[0], addr: addr, masterID: f[3], flags: strings.Split(f[2], ",")}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") { // a slot being migrated or imported
				continue
			}
			lo, hi, isRange := strings.Cut(r, "-")
			if !isRange {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("redistest: malformed slot range %q in CLUSTER NODES line %q", r, line)
			}
			n.slots = append(n.slots, [2]int{a, b})
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// live returns the nodes whose process runs.
func (c *Cluster) live() []*Server {
	var live []*Server
	for _, s := range c.nodes {
		if s.Pid() != 0 {
			live = append(live, s)
		}
	}
	return live
}

// byAddr returns the node at addr, or nil.
func (c *Cluster) byAddr(addr string) *Server {
	for _, s := range c.nodes {
		if s.Addr() == addr {
			return s
		}
	}
	return nil
}

// view returns CLUSTER NODES as s sees it.
func view(s *Server) ([]clusterNode, error) {
	conn, err := s.Dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	text, err := redis.String(conn.Do("CLUSTER", "NODES"))
	if err != nil {
		return nil, fmt.Errorf("redistest: %s: CLUSTER NODES: %w", s.Addr(), err)
	}
	return parseClusterNodes(text)
}

// liveView returns CLUSTER NODES as the first live node sees it.
func (c *Cluster) liveView() ([]clusterNode, error) {
	live := c.live()
	if len(live) == 0 {
		return nil, errors.New("redistest: no node of the cluster is running")
	}
	return view(live[0])
}

// Masters returns the current masters, in the order of Nodes, as CLUSTER
// NODES of the first live node lists them, leaving out those it flags as
// failed or suspected.
func (c *Cluster) Masters() ([]*Server, error) {
	nodes, err := c.liveView()
	if err != nil {
		return nil, err
	}
	var masters []*Server
	for _, s := range c.nodes { // in the order of Nodes, not of CLUSTER NODES
		for _, n := range nodes {
			if n.addr == s.Addr() && n.has("master") && !n.failing() {
				masters = append(masters, s)
			}
		}
	}
	return masters, nil
}

// MasterOf returns the master serving slot, as CLUSTER NODES of the first
// live node says.
func (c *Cluster) MasterOf(slot int) (*Server, error) {
	if slot < 0 || slot >= SlotCount {
		return nil, fmt.Errorf("redistest: slot %d is out of range [0, %d)", slot, SlotCount)
	}
	nodes, err := c.liveView()
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		for _, r := range n.slots {
			if r[0] <= slot && slot <= r[1] {
				if s := c.byAddr(n.addr); s != nil {
					return s, nil
				}
				return nil, fmt.Errorf("redistest: slot %d is served by %s, not a node of this cluster", slot, n.addr)
			}
		}
	}
	return nil, fmt.Errorf("redistest: no node serves slot %d", slot)
}

// WaitHealthy waits until every live node reports cluster_state:ok with all
// 16384 slots ok, agrees with the others on which nodes are failed (exactly
// the stopped ones), and every live replica's link to its master is up, with
// the master counting it among its connected replicas. It polls: Redis
// announces none of this by an event.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	return c.waitHealthy(ctx, -1)
}

// waitHealthy is WaitHealthy that, when replicas >= 0, also waits until every
// master has that many replicas.
func (c *Cluster) waitHealthy(ctx context.Context, replicas int) error {
	var why string
	err := poll(ctx, "the cluster is healthy", func() (bool, error) {
		var err error
		why, err = c.unhealthy(replicas)
		return why == "" && err == nil, nil // errors are transient here: a node may be busy failing over
	})
	if err != nil {
		var logs strings.Builder
		for _, s := range c.nodes {
			fmt.Fprintf(&logs, "--- node %s:\n%s", s.Addr(), s.Log())
		}
		return fmt.Errorf("%w (last: %s)\n%s", err, why, logs.String())
	}
	return nil
}

// unhealthy returns why the cluster is not healthy, or "" if it is.
func (c *Cluster) unhealthy(replicas int) (string, error) {
	live := c.live()
	if len(live) == 0 {
		return "no node is running", nil
	}
	type self struct {
		s    *Server
		node clusterNode
	}
	var selves []self
	views := map[string][]clusterNode{} // by viewer
	for _, s := range live {
		conn, err := s.Dial()
		if err != nil {
			return s.Addr() + ": " + err.Error(), err
		}
		info, err := redis.String(conn.Do("CLUSTER", "INFO"))
		conn.Close()
		if err != nil {
			return s.Addr() + ": CLUSTER INFO: " + err.Error(), err
		}
		if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
			return s.Addr() + " reports the cluster not ok", nil
		}
		nodes, err := view(s)
		if err != nil {
			return err.Error(), err
		}
		views[s.Addr()] = nodes
		for _, n := range nodes {
			other := c.byAddr(n.addr)
			switch {
			case n.has("handshake") || n.has("noaddr"):
				return fmt.Sprintf("%s does not know %s yet", s.Addr(), n.addr), nil
			case other != nil && other.Pid() != 0 && n.failing():
				return fmt.Sprintf("%s flags live %s as failing", s.Addr(), n.addr), nil
			case other != nil && other.Pid() == 0 && !n.has("fail"):
				return fmt.Sprintf("%s does not flag stopped %s as failed", s.Addr(), n.addr), nil
			case n.has("myself"):
				selves = append(selves, self{s, n})
			}
		}
		if len(nodes) != len(c.nodes) {
			return fmt.Sprintf("%s knows %d nodes, not %d", s.Addr(), len(nodes), len(c.nodes)), nil
		}
	}
	// Every node sees every live node in the role that node says it has:
	// Masters and MasterOf read one node's view.
	for _, m := range selves {
		for viewer, nodes := range views {
			for _, n := range nodes {
				if n.addr == m.s.Addr() && n.has("master") != m.node.has("master") {
					return fmt.Sprintf("%s does not see %s in its role yet", viewer, n.addr), nil
				}
			}
		}
	}
	for _, m := range selves {
		if !m.node.has("master") {
			if ok, err := replicaLinkUp(m.s); !ok || err != nil {
				return m.s.Addr() + "'s link to its master is not up", err
			}
			continue
		}
		want := 0
		for _, r := range selves {
			if r.node.masterID == m.node.id {
				want++
			}
		}
		if replicas >= 0 && want != replicas {
			return fmt.Sprintf("master %s has %d replicas, not %d", m.s.Addr(), want, replicas), nil
		}
		conn, err := m.s.Dial()
		if err != nil {
			return err.Error(), err
		}
		info, err := redis.String(conn.Do("INFO", "replication"))
		conn.Close()
		if err != nil {
			return err.Error(), err
		}
		if !strings.Contains(info, "connected_slaves:"+strconv.Itoa(want)+"\r\n") {
			return fmt.Sprintf("master %s does not have its %d replicas connected", m.s.Addr(), want), nil
		}
	}
	return "", nil
}

// Stop kills every node and removes their directories. It is idempotent.
func (c *Cluster) Stop() {
	for _, s := range c.nodes {
		s.Stop()
	}
}

// Slot returns the hash slot of key as Redis computes it (protocol.Slot).
func Slot(key string) int { return protocol.Slot(key) }

// nodeID returns the cluster node id of s.
func nodeID(s *Server) (string, error) {
	conn, err := s.Dial()
	if err != nil {
		return "", err
	}
	defer conn.Close()
	id, err := redis.String(conn.Do("CLUSTER", "MYID"))
	if err != nil {
		return "", fmt.Errorf("redistest: %s: CLUSTER MYID: %w", s.Addr(), err)
	}
	return id, nil
}

// each runs cmd on s, on a connection of its own.
func each(s *Server, cmd string, args ...any) (any, error) {
	conn, err := s.Dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	r, err := conn.Do(cmd, args...)
	if err != nil {
		return nil, fmt.Errorf("redistest: %s: %s %v: %w", s.Addr(), cmd, args, err)
	}
	return r, nil
}

// MoveSlot moves slot and its keys to the master to, as redis-cli
// --cluster reshard does (IMPORTING, MIGRATING, MIGRATE, SETSLOT NODE), and
// waits until every live node says that to serves it. A client that read
// the slot map before gets MOVED for the slot's keys from its old master.
func (c *Cluster) MoveSlot(ctx context.Context, slot int, to *Server) error {
	from, err := c.MasterOf(slot)
	if err != nil || from == to {
		return err
	}
	fromID, err := nodeID(from)
	if err != nil {
		return err
	}
	toID, err := nodeID(to)
	if err != nil {
		return err
	}
	if _, err := each(to, "CLUSTER", "SETSLOT", slot, "IMPORTING", fromID); err != nil {
		return err
	}
	if _, err := each(from, "CLUSTER", "SETSLOT", slot, "MIGRATING", toID); err != nil {
		return err
	}
	for {
		keys, err := redis.Strings(each(from, "CLUSTER", "GETKEYSINSLOT", slot, 100))
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			break
		}
		args := []any{"127.0.0.1", to.Port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		if _, err := each(from, "MIGRATE", args...); err != nil {
			return err
		}
	}
	// The new owner first, then the old one, then the others.
	masters, err := c.Masters()
	if err != nil {
		return err
	}
	order := []*Server{to, from}
	for _, m := range masters {
		if m != to && m != from {
			order = append(order, m)
		}
	}
	for _, m := range order {
		if _, err := each(m, "CLUSTER", "SETSLOT", slot, "NODE", toID); err != nil {
			return err
		}
	}
	return poll(ctx, fmt.Sprintf("every node says %s serves slot %d", to.Addr(), slot), func() (bool, error) {
		for _, s := range c.live() {
			nodes, err := view(s)
			if err != nil {
				return false, nil // a node may be busy: ask again
			}
			if owner(nodes, slot) != to.Addr() {
				return false, nil
			}
		}
		return true, nil
	})
}

// owner returns the address of the node that serves slot in nodes, or "".
func owner(nodes []clusterNode, slot int) string {
	for _, n := range nodes {
		for _, r := range n.slots {
			if r[0] <= slot && slot <= r[1] {
				return n.addr
			}
		}
	}
	return ""
}

// ReplicaOf returns a live replica of master.
func (c *Cluster) ReplicaOf(master *Server) (*Server, error) {
	nodes, err := c.liveView()
	if err != nil {
		return nil, err
	}
	var masterID string
	for _, n := range nodes {
		if n.addr == master.Addr() {
			masterID = n.id
		}
	}
	for _, n := range nodes {
		if masterID != "" && n.masterID == masterID && !n.failing() {
			if s := c.byAddr(n.addr); s != nil && s.Pid() != 0 {
				return s, nil
			}
		}
	}
	return nil, fmt.Errorf("redistest: master %s has no live replica", master.Addr())
}

// Failover promotes replica with CLUSTER FAILOVER TAKEOVER, and waits until
// the cluster is healthy with replica a master and its old master a replica
// of it. Clients that read the slot map before get MOVED from the old
// master. A takeover needs no election, so it works again right after
// another failover (the masters would not vote for one within twice the
// node timeout); writes not yet replicated are lost: WAIT on the master
// first to keep them.
func (c *Cluster) Failover(ctx context.Context, replica *Server) error {
	if _, err := each(replica, "CLUSTER", "FAILOVER", "TAKEOVER"); err != nil {
		return err
	}
	err := poll(ctx, replica.Addr()+" is a master", func() (bool, error) {
		masters, err := c.Masters()
		return err == nil && slices.Contains(masters, replica) && len(masters) == c.opts.Masters, nil
	})
	if err != nil {
		return err
	}
	return c.waitHealthy(ctx, c.opts.ReplicasPerMaster)
}
