package hammerredis_test

// Redis Sentinel: the backend finds its master through a private group of a
// master, a replica and three sentinels (redistest.SentinelGroup), counts its
// hits there, and follows the master by itself after a failover.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/internal/redistest"
)

const (
	// failoverWait bounds a failover, from its start to every sentinel
	// reporting the new master. A promotion after a crash takes
	// DownAfter plus an election; a split vote retries it after twice the
	// failover timeout (10s).
	failoverWait = 30 * time.Second
	// sentinelRecoveryWait bounds the time from the sentinels reporting the
	// new master to the backend's first successful call.
	sentinelRecoveryWait = 15 * time.Second
	// probeEvery and probeDeadline pace the calls that detect recovery.
	probeEvery    = 20 * time.Millisecond
	probeDeadline = 250 * time.Millisecond
)

// startViaSentinel starts a backend that finds its master through sc, with
// a key prefix unique to the test, and does not wait for it to connect.
func startViaSentinel(t *testing.T, sc *hammerredis.SentinelConfig) *fixture {
	t.Helper()
	f := &fixture{log: logtest.New(), prefix: testPrefix(t)}
	b, err := hammerredis.Start(hammerredis.Options{
		ExpiryMs: 60_000,
		Sentinel: sc,
		// Never the system Redis on :6379, were Sentinel ever ignored.
		RedisURL:  "redis://" + deadAddr(t),
		KeyPrefix: f.prefix,
		Logger:    f.log.Logger(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { hammerredis.Stop(b) })
	f.b = b
	return f
}

// startOnGroup is startViaSentinel on g's sentinels and master name, waiting
// until the backend is connected.
func startOnGroup(t *testing.T, g *redistest.SentinelGroup) *fixture {
	t.Helper()
	f := startViaSentinel(t, &hammerredis.SentinelConfig{Addrs: g.SentinelAddrs(), MasterName: g.MasterName()})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	require.NoError(t, f.b.WaitConnected(ctx), "log:\n%s", f.log)
	return f
}

// deadAddr returns a loopback address nobody listens on: a port the kernel
// just handed out and that was closed again.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// hgetCount returns the count field of key on the server c is connected to.
func hgetCount(t *testing.T, c redis.Conn, key string) string {
	t.Helper()
	v, err := redis.String(c.Do("HGET", key, "count"))
	require.NoError(t, err, "HGET %s count", key)
	return v
}

// waitRecovered calls CountHit on a probe key every probeEvery, each call
// bounded by probeDeadline, until a hit lands on the new master, which
// newMaster is an admin connection to, and returns how long after since
// that took, and how many hits succeeded on the old master meanwhile. The
// probe key is new: it exists on the new master once a hit landed there.
// It fails the test after sentinelRecoveryWait.
func waitRecovered(t *testing.T, f *fixture, newMaster redis.Conn, since time.Time) (took time.Duration, stale int) {
	t.Helper()
	probe := hammerredis.BucketKey{Bucket: 1, ID: "probe"}
	deadline := time.Now().Add(sentinelRecoveryWait)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), probeDeadline)
		_, err := f.b.CountHit(ctx, probe, 1)
		cancel()
		if err == nil {
			there, err := redis.Bool(newMaster.Do("EXISTS", f.key(probe.ID, probe.Bucket)))
			require.NoError(t, err)
			if there {
				return time.Since(since), stale
			}
			stale++
			last = errors.New("the hit was counted on the old master")
		} else {
			last = err
		}
		time.Sleep(probeEvery)
	}
	t.Fatalf("the backend did not count on the new master within %v of the sentinels reporting it; "+
		"last error: %v; hits counted on the old master: %d\nlog:\n%s", sentinelRecoveryWait, last, stale, f.log)
	return 0, 0
}

func TestSentinelCountsOnTheMaster(t *testing.T) {
	g := redistest.NewSentinelGroup(t)
	f := startOnGroup(t, g)
	for want := int64(1); want <= 3; want++ {
		assert.Equal(t, want, hit(t, f.b, "m"))
	}
	assert.Equal(t, "3", hgetCount(t, g.Master().Conn(t), f.key("m", 1)), "the hits were counted on the master")
	assert.Contains(t, f.log.String(), "mymaster via sentinel", "the log names the master it followed")
}

// TestSentinelFailover fails over while the backend is connected, forced
// (SENTINEL FAILOVER) or after the master crashed, and checks that the
// backend serves again by itself, on the new master, with the count that
// the old one had replicated.
func TestSentinelFailover(t *testing.T) {
	for _, tc := range []struct {
		name string
		// fail makes the group fail over.
		fail func(t *testing.T, g *redistest.SentinelGroup)
	}{
		{"forced", func(t *testing.T, g *redistest.SentinelGroup) { require.NoError(t, g.Failover()) }},
		{"master killed", func(t *testing.T, g *redistest.SentinelGroup) { g.Master().Kill() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := redistest.NewSentinelGroup(t)
			f := startOnGroup(t, g)
			for want := int64(1); want <= 3; want++ {
				require.Equal(t, want, hit(t, f.b, "k"))
			}
			ctx, cancel := context.WithTimeout(context.Background(), failoverWait)
			defer cancel()
			require.NoError(t, g.WaitReplicated(ctx))

			old := g.Master().Addr()
			began := time.Now()
			tc.fail(t, g)
			addr, err := g.WaitFailover(ctx, old)
			require.NoError(t, err)
			reported := time.Now()
			require.Equal(t, g.Replica().Addr(), addr, "the sentinels promoted the replica")

			newMaster := g.Replica().Conn(t)
			took, stale := waitRecovered(t, f, newMaster, reported)
			// A forced failover leaves the old master up and writable until
			// the sentinels turn it into a replica (about 10s here): the
			// backend must not wait for that. It asks the sentinels every
			// HealthCheckInterval (1s), busy or not, and redials when they
			// name another master; hits counted on the old master in between
			// are lost when it resyncs.
			assert.Less(t, took, 3*time.Second, "the backend followed the new master within a health check and a redial")
			t.Logf("%s failover: the sentinels reported the new master %v after it began; "+
				"the backend counted on it %v after that (%d hits counted on the old master meanwhile)",
				tc.name, reported.Sub(began).Round(time.Millisecond), took.Round(time.Millisecond), stale)

			assert.Equal(t, int64(4), hit(t, f.b, "k"), "the count continues from the replicated hits")
			assert.Equal(t, "4", hgetCount(t, newMaster, f.key("k", 1)), "the hit was counted on the new master")
			assert.GreaterOrEqual(t, f.b.Stats().Connects, uint64(2), "the backend reconnected")
		})
	}
}

func TestSentinelUnknownMasterName(t *testing.T) {
	g := redistest.NewSentinelGroup(t)
	f := startViaSentinel(t, &hammerredis.SentinelConfig{Addrs: g.SentinelAddrs(), MasterName: "nosuchmaster"})
	f.log.WaitCount(t, cannotDialMsg, 1, waitLong)
	err := hitErr(f.b)
	require.ErrorIs(t, err, hammerredis.ErrClosed)
	assert.ErrorContains(t, err, `"nosuchmaster"`, "ErrClosed names the master it looked for")
	assert.ErrorContains(t, err, "no master named", "ErrClosed says the sentinels do not know it")
	assert.Equal(t, "0", fmt.Sprint(do(t, g.Master().Conn(t), "DBSIZE")), "nothing reached the master")
}

func TestSentinelAllSentinelsUnreachable(t *testing.T) {
	addrs := []string{deadAddr(t), deadAddr(t)}
	f := startViaSentinel(t, &hammerredis.SentinelConfig{Addrs: addrs, MasterName: "mymaster"})
	f.log.WaitCount(t, cannotDialMsg, 1, waitLong)
	err := hitErr(f.b)
	require.ErrorIs(t, err, hammerredis.ErrClosed)
	for _, a := range addrs {
		assert.ErrorContains(t, err, a, "ErrClosed names every sentinel it asked")
	}
	assert.ErrorContains(t, err, "connection refused", "ErrClosed says why")
}

// hitErr counts one hit within waitLong and returns its error, which must
// not be nil.
func hitErr(b *hammerredis.Backend) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	_, err := b.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "x"}, 1)
	if err == nil {
		return errors.New("CountHit succeeded")
	}
	return err
}
