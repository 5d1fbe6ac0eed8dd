package main

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/internal/redistest"
)

// redisServer is the benchmark's private redis-server (never the system
// Redis on :6379), with one admin connection of the harness's own.
type redisServer struct {
	srv   *redistest.Server
	addr  string
	admin redis.Conn
}

// startRedis starts a private redis-server on a free loopback port, with no
// persistence.
func startRedis() (*redisServer, error) {
	srv, err := redistest.Start(redistest.Options{})
	if err != nil {
		return nil, err
	}
	admin, err := srv.Dial()
	if err != nil {
		srv.Stop()
		return nil, err
	}
	return &redisServer{srv: srv, addr: srv.Addr(), admin: admin}, nil
}

// stop closes the admin connection and kills the server.
func (s *redisServer) stop() {
	s.admin.Close()
	s.srv.Stop()
}

// flushAll empties the server between cells.
func (s *redisServer) flushAll() error {
	_, err := s.admin.Do("FLUSHALL")
	return err
}

// info returns the fields of INFO section.
func (s *redisServer) info(section string) (map[string]string, error) {
	text, err := redis.String(s.admin.Do("INFO", section))
	if err != nil {
		return nil, err
	}
	fields := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			fields[k] = v
		}
	}
	return fields, nil
}

// version returns the server's redis_version.
func (s *redisServer) version() (string, error) {
	f, err := s.info("server")
	if err != nil {
		return "", err
	}
	return f["redis_version"], nil
}

// connectedClients returns how many clients are connected, the admin
// connection not counted.
func (s *redisServer) connectedClients() (int, error) {
	f, err := s.info("clients")
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(f["connected_clients"])
	if err != nil {
		return 0, fmt.Errorf("INFO clients: connected_clients %q: %w", f["connected_clients"], err)
	}
	return n - 1, nil
}

// readsProcessed returns INFO stats' total_reads_processed: how many times
// the server has read from a client socket. Checks per read tells how many
// checks a client packs into one write: 1 without pipelining.
func (s *redisServer) readsProcessed() (int64, error) {
	f, err := s.info("stats")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(f["total_reads_processed"], 10, 64)
}

// scriptRuns returns how many scripts the server has run: the calls of
// EVAL, EVALSHA and their read-only forms, from INFO commandstats.
func (s *redisServer) scriptRuns() (int64, error) {
	f, err := s.info("commandstats")
	if err != nil {
		return 0, err
	}
	var total int64
	for _, cmd := range []string{"eval", "evalsha", "eval_ro", "evalsha_ro"} {
		v, ok := f["cmdstat_"+cmd]
		if !ok {
			continue
		}
		for _, kv := range strings.Split(v, ",") {
			if n, ok := strings.CutPrefix(kv, "calls="); ok {
				c, err := strconv.ParseInt(n, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("INFO commandstats: %s: %w", cmd, err)
				}
				total += c
			}
		}
	}
	return total, nil
}

// loadScript loads src with SCRIPT LOAD and returns its SHA1.
func (s *redisServer) loadScript(src string) (string, error) {
	return redis.String(s.admin.Do("SCRIPT", "LOAD", src))
}

// clusterMasters is how many masters the cluster row's cluster has; each
// has one replica (redistest's default).
const clusterMasters = 3

// target is where a cell's checks go: the private server, or the masters of
// the private cluster. Its INFO figures are summed over its servers.
type target struct {
	// addr is the single server's address; seeds the cluster's nodes
	// (nil for the single server).
	addr  string
	seeds []string
	// servers are the servers the checks reach: the single server, or every
	// master.
	servers []*redisServer
	// pids are every redis-server process of the target (replicas too),
	// whose CPU counts as the benchmark's own.
	pids []int
	// cluster, when not nil, is stopped by stop.
	cluster *redistest.Cluster
}

// singleTarget is the private server as a target.
func singleTarget(s *redisServer) *target {
	return &target{addr: s.addr, servers: []*redisServer{s}, pids: []int{s.srv.Pid()}}
}

// startClusterTarget starts a private cluster of clusterMasters masters with
// one replica each and opens an admin connection to every master.
func startClusterTarget() (_ *target, err error) {
	c, err := redistest.StartCluster(redistest.ClusterOptions{Masters: clusterMasters})
	if err != nil {
		return nil, err
	}
	t := &target{seeds: c.Addrs(), cluster: c}
	defer func() {
		if err != nil {
			t.stop()
		}
	}()
	masters, err := c.Masters()
	if err != nil {
		return nil, err
	}
	if len(masters) != clusterMasters {
		return nil, fmt.Errorf("cluster has %d masters, want %d", len(masters), clusterMasters)
	}
	for _, m := range masters {
		admin, err := m.Dial()
		if err != nil {
			return nil, err
		}
		t.servers = append(t.servers, &redisServer{srv: m, addr: m.Addr(), admin: admin})
	}
	for _, n := range c.Nodes() {
		t.pids = append(t.pids, n.Pid())
	}
	return t, nil
}

// stop closes a cluster target's admin connections and stops its nodes; it
// leaves the single server alone (measure stops that).
func (t *target) stop() {
	if t == nil || t.cluster == nil {
		return
	}
	for _, s := range t.servers {
		s.admin.Close()
	}
	t.cluster.Stop()
}

// flushAll runs FLUSHALL on every server of the target (on a cluster, every
// master; the replicas follow).
func (t *target) flushAll() error {
	for _, s := range t.servers {
		if err := s.flushAll(); err != nil {
			return err
		}
	}
	return nil
}

// sum adds up one INFO figure over the target's servers.
func (t *target) sum(f func(*redisServer) (int64, error)) (int64, error) {
	var total int64
	for _, s := range t.servers {
		n, err := f(s)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func (t *target) readsProcessed() (int64, error) { return t.sum((*redisServer).readsProcessed) }

func (t *target) scriptRuns() (int64, error) { return t.sum((*redisServer).scriptRuns) }

func (t *target) connectedClients() (int, error) {
	n, err := t.sum(func(s *redisServer) (int64, error) {
		c, err := s.connectedClients()
		return int64(c), err
	})
	return int(n), err
}
