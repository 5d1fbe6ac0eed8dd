package hammerredis

import (
	"fmt"
	"net"
)

// ClusterConfig points a backend at a Redis Cluster. Every call touches one
// key, so the Elixir-compatible layout works on a cluster as it is: the
// backend routes each call to the master that holds its key's slot. A
// Check touches several: see Backend.Check for when they must share a slot. The
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
