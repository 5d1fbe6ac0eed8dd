package hammerredis_test

// Redis Cluster: a backend on a private cluster of three masters (with
// replicas unless said otherwise) counts on every master, follows MOVED and
// ASK, and survives a failover.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/internal/testenv"
	"github.com/hammer-go/hammerredis/protocol"
)

// startOnCluster starts a backend on cluster c and waits until it knows the
// slot map and every master is connected.
func startOnCluster(t *testing.T, c *redistest.Cluster) (*hammerredis.Backend, *logtest.Recorder) {
	t.Helper()
	log := logtest.New()
	opts := clusterOpts(t, c, log)
	opts.KeyPrefix = "" // the default, which these tests' keys use
	return startCluster(t, opts), log
}

func TestClusterCountsOnEveryMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("a Redis Cluster takes seconds to start: make test runs it")
	}
	c := redistest.NewCluster(t)
	b, _ := startOnCluster(t, c)
	ctx := context.Background()

	const ids = 200
	for i := range ids {
		key := hammerredis.BucketKey{Bucket: 7, ID: fmt.Sprint("user:", i)}
		for want := int64(1); want <= 2; want++ {
			n, err := b.CountHit(ctx, key, 1000)
			require.NoError(t, err)
			require.Equal(t, want, n, "id %d", i)
		}
	}
	masters, err := c.Masters()
	require.NoError(t, err)
	require.Len(t, masters, 3)
	total := 0
	for _, m := range masters {
		n, err := redis.Int(m.Conn(t).Do("DBSIZE"))
		require.NoError(t, err)
		assert.Positive(t, n, "master %s holds some buckets", m.Addr())
		total += n
	}
	assert.Equal(t, ids, total)

	// The library's slot is Redis's.
	admin := masters[0].Conn(t)
	for i := range 50 {
		k := protocol.Key(protocol.DefaultKeyPrefix, hammerredis.BucketKey{Bucket: int64(i), ID: fmt.Sprint("{t", i%3, "}x")})
		want, err := redis.Int(admin.Do("CLUSTER", "KEYSLOT", k))
		require.NoError(t, err)
		assert.Equal(t, want, protocol.Slot(k), "slot of %q", k)
	}

	info, err := b.GetBucket(ctx, hammerredis.BucketKey{Bucket: 7, ID: "user:3"})
	require.NoError(t, err)
	assert.Equal(t, int64(2), info.Count)

	// One id's buckets land on several masters; DeleteBuckets finds all.
	for bucket := range int64(30) {
		_, err := b.CountHit(ctx, hammerredis.BucketKey{Bucket: bucket, ID: "spread"}, 1)
		require.NoError(t, err)
	}
	n, err := b.DeleteBuckets(ctx, "spread")
	require.NoError(t, err)
	assert.Equal(t, int64(30), n)
	st := b.Stats()
	assert.Equal(t, uint64(3), st.Connects, "one connection per master")
}

func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("a Redis Cluster takes seconds to start: make test runs it")
	}
	c := redistest.NewCluster(t)
	b, log := startOnCluster(t, c)
	ctx := context.Background()
	key := hammerredis.BucketKey{Bucket: 1, ID: "failover"}
	_, err := b.CountHit(ctx, key, 1)
	require.NoError(t, err)

	master, err := c.MasterOf(protocol.Slot(protocol.Key(protocol.DefaultKeyPrefix, key)))
	require.NoError(t, err)
	// The hit is on the replica too. WAIT counts the replicas that have
	// every write of its own connection, so write a mark in the key's slot
	// first: the replication stream is ordered.
	mc := master.Conn(t)
	_, err = mc.Do("SET", "{"+protocol.Key(protocol.DefaultKeyPrefix, key)+"}:mark", 1)
	require.NoError(t, err)
	acked, err := redis.Int(mc.Do("WAIT", 1, 5000))
	require.NoError(t, err)
	require.Equal(t, 1, acked, "the replica has the hit")
	master.Kill()
	killed := time.Now()
	hctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, c.WaitHealthy(hctx))
	healthy := time.Now()

	// No event says "the backend sees the new master": poll with short calls.
	deadline := time.Now().Add(testenv.WaitLong)
	var n int64
	for {
		cctx, ccancel := context.WithTimeout(ctx, 200*time.Millisecond)
		n, err = b.CountHit(cctx, key, 2)
		ccancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, err, "log:\n%s", log)
	t.Logf("master killed; cluster healthy again %v later; the backend counted %v after that",
		healthy.Sub(killed).Round(time.Millisecond), time.Since(healthy).Round(time.Millisecond))
	assert.Equal(t, int64(2), n, "the count continues on the promoted replica")
	assert.Less(t, time.Since(healthy), 3*time.Second, "within a slot-map refresh and a dial")
}

func TestHashTagKeys(t *testing.T) {
	f := start(t, nil, hammerredis.Options{HashTagKeys: true})
	ctx := context.Background()
	for bucket := range int64(3) {
		_, err := f.B.CountHit(ctx, hammerredis.BucketKey{Bucket: bucket, ID: "user:1"}, 1)
		require.NoError(t, err)
	}
	_, err := f.B.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "user:1:x"}, 1)
	require.NoError(t, err)
	assert.Equal(t, int64(1), testenv.Do(t, f.Admin, "EXISTS", f.Prefix+"{user:1}:2"), "the hash-tag layout")
	info, err := f.B.GetBucket(ctx, hammerredis.BucketKey{Bucket: 2, ID: "user:1"})
	require.NoError(t, err)
	assert.Equal(t, int64(1), info.Count)
	n, err := f.B.DeleteBuckets(ctx, "user:1")
	require.NoError(t, err)
	assert.Equal(t, int64(3), n, "only user:1's buckets")
	assert.Equal(t, int64(1), testenv.Do(t, f.Admin, "EXISTS", f.Prefix+"{user:1:x}:1"))

	_, err = hammerredis.New(hammerredis.Options{ExpiryMs: 1, HashTagKeys: true, KeyPrefix: "a{b}:"})
	assert.ErrorIs(t, err, hammerredis.ErrInvalid)
	_, err = hammerredis.New(hammerredis.Options{ExpiryMs: 1, HashTagKeys: true, KeyPrefix: "a{b}:",
		Cluster: &hammerredis.ClusterConfig{Addrs: []string{"127.0.0.1:1"}}})
	assert.ErrorIs(t, err, hammerredis.ErrInvalid)
}

func TestClusterHashTagKeysKeepAnIDOnOneMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("a Redis Cluster takes seconds to start: make test runs it")
	}
	c := redistest.NewCluster(t)
	log := logtest.New()
	b, err := hammerredis.Start(hammerredis.Options{ExpiryMs: 60_000, HashTagKeys: true,
		Cluster: &hammerredis.ClusterConfig{Addrs: c.Addrs()}, RedisURL: "redis://127.0.0.1:1", Logger: log.Logger()})
	require.NoError(t, err)
	t.Cleanup(func() { hammerredis.Stop(b) })
	ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitLong)
	defer cancel()
	require.NoError(t, b.WaitConnected(ctx))
	for bucket := range int64(40) {
		_, err := b.CountHit(ctx, hammerredis.BucketKey{Bucket: bucket, ID: "one"}, 1)
		require.NoError(t, err)
	}
	masters, err := c.Masters()
	require.NoError(t, err)
	holding := 0
	for _, m := range masters {
		if n, _ := redis.Int(m.Conn(t).Do("DBSIZE")); n > 0 {
			holding++
			assert.Equal(t, 40, n)
		}
	}
	assert.Equal(t, 1, holding, "all of the id's buckets on one master")
	n, err := b.DeleteBuckets(ctx, "one")
	require.NoError(t, err)
	assert.Equal(t, int64(40), n)
}

func TestClusterFollowsASKAndMOVEDDuringASlotMigration(t *testing.T) {
	if testing.Short() {
		t.Skip("a Redis Cluster takes seconds to start: make test runs it")
	}
	c := redistest.NewCluster(t)
	b, _ := startOnCluster(t, c)
	ctx := context.Background()
	key := hammerredis.BucketKey{Bucket: 9, ID: "migrating"}
	rkey := protocol.Key(protocol.DefaultKeyPrefix, key)
	slot := protocol.Slot(rkey)
	source, err := c.MasterOf(slot)
	require.NoError(t, err)
	masters, err := c.Masters()
	require.NoError(t, err)
	var target *redistest.Server
	for _, m := range masters {
		if m != source {
			target = m
			break
		}
	}
	id := func(s *redistest.Server) string {
		v, err := redis.String(s.Conn(t).Do("CLUSTER", "MYID"))
		require.NoError(t, err)
		return v
	}
	src, dst := source.Conn(t), target.Conn(t)
	testenv.Do(t, dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", id(source))
	testenv.Do(t, src, "CLUSTER", "SETSLOT", slot, "MIGRATING", id(target))

	// The key is not on the source: it answers ASK, and the hit goes to the
	// target, after ASKING.
	n, err := b.CountHit(ctx, key, 1)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	testenv.Do(t, dst, "ASKING")
	assert.Equal(t, int64(1), testenv.Do(t, dst, "EXISTS", rkey), "counted on the importing node")

	// The migration ends: the source now answers MOVED, and the backend
	// refreshes its map and follows.
	for _, m := range masters {
		testenv.Do(t, m.Conn(t), "CLUSTER", "SETSLOT", slot, "NODE", id(target))
	}
	n, err = b.CountHit(ctx, key, 2)
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)
	info, err := b.GetBucket(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, int64(2), info.Count)
}

// TestClusterShared runs the cluster tests that can share one cluster: each
// leaves it as it found it (slots moved back, failovers undone, nodes
// resumed). Its node timeout is long, so that a node frozen for a moment is
// not failed over.
func TestClusterShared(t *testing.T) {
	if testing.Short() {
		t.Skip("a Redis Cluster takes seconds to start: make test runs it")
	}
	c := redistest.NewCluster(t, redistest.ClusterOptions{NodeTimeout: 15 * time.Second})
	for _, tc := range []struct {
		name string
		test func(*testing.T, *redistest.Cluster)
	}{
		{"FirstCallWaitsForTheSlotMap", testClusterFirstCallWaitsForTheSlotMap},
		{"RedirectWithinDeadlineDespiteAFrozenSeed", testClusterRedirectWithinDeadline},
		{"NothingAfterStop", testClusterNothingAfterStop},
		{"MovedFollowedPastALaggingSeed", testClusterMovedPastALaggingSeed},
		{"StatsCountEachCallOnceAndOnlyGrow", testClusterStatsOnlyGrow},
		{"DeleteBucketsWithAFrozenMaster", testClusterDeleteBucketsWithAFrozenMaster},
		{"Hammer7OnTheMasterOfEachKey", testClusterHammer7},
		{"Check", testClusterCheck},
	} {
		if !t.Run(tc.name, func(t *testing.T) { tc.test(t, c) }) {
			// The cluster may not be as the next test expects.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			require.NoError(t, c.WaitHealthy(ctx))
			cancel()
		}
	}
}

// clusterOpts returns options for a backend on c, with a key prefix of the
// test's own.
func clusterOpts(t *testing.T, c *redistest.Cluster, log *logtest.Recorder) hammerredis.Options {
	return hammerredis.Options{
		ExpiryMs:  60_000,
		Cluster:   &hammerredis.ClusterConfig{Addrs: c.Addrs()[:2]},
		RedisURL:  "redis://127.0.0.1:1", // never the system Redis
		KeyPrefix: testenv.Prefix(t),
		Logger:    log.Logger(),
	}
}

// startCluster starts a backend with opts and waits until it is connected.
func startCluster(t *testing.T, opts hammerredis.Options) *hammerredis.Backend {
	t.Helper()
	b, err := hammerredis.Start(opts)
	require.NoError(t, err)
	t.Cleanup(func() { hammerredis.Stop(b) })
	ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitLong)
	defer cancel()
	require.NoError(t, b.WaitConnected(ctx))
	return b
}

// otherMaster returns a master of c other than m.
func otherMaster(t *testing.T, c *redistest.Cluster, m *redistest.Server) *redistest.Server {
	t.Helper()
	masters, err := c.Masters()
	require.NoError(t, err)
	for _, o := range masters {
		if o != m {
			return o
		}
	}
	require.FailNow(t, "no master other than "+m.Addr())
	return nil
}

// moveSlot moves slot to the master to, and back to its master of now when
// the test ends.
func moveSlot(t *testing.T, c *redistest.Cluster, slot int, to *redistest.Server) {
	t.Helper()
	from, err := c.MasterOf(slot)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitLong)
	defer cancel()
	require.NoError(t, c.MoveSlot(ctx, slot, to))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitLong)
		defer cancel()
		require.NoError(t, c.MoveSlot(ctx, slot, from))
	})
}

func testClusterFirstCallWaitsForTheSlotMap(t *testing.T, c *redistest.Cluster) {
	// A call made right after Start waits for the first slot map, then for
	// its master's server's first dial, instead of failing.
	for i := range 8 {
		log := logtest.New()
		b, err := hammerredis.Start(clusterOpts(t, c, log))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = b.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: fmt.Sprint("first:", i)}, 1)
		cancel()
		hammerredis.Stop(b)
		require.NoError(t, err, "backend %d: the first call did not wait", i)
	}

	// Once the first slot map has failed, calls fail at once.
	b, err := hammerredis.Start(hammerredis.Options{ExpiryMs: 1000, RedisURL: "redis://127.0.0.1:1",
		Cluster: &hammerredis.ClusterConfig{Addrs: []string{"127.0.0.1:1"}}, Logger: logtest.New().Logger()})
	require.NoError(t, err)
	defer hammerredis.Stop(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	begin := time.Now()
	_, err = b.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "x"}, 1)
	assert.ErrorIs(t, err, hammerredis.ErrClosed)
	assert.ErrorContains(t, err, "127.0.0.1:1", "says why")
	_, err = b.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "x"}, 1)
	assert.ErrorIs(t, err, hammerredis.ErrClosed)
	assert.Less(t, time.Since(begin), time.Second, "no node answers: no wait")
}

func testClusterRedirectWithinDeadline(t *testing.T, c *redistest.Cluster) {
	log := logtest.New()
	opts := clusterOpts(t, c, log)
	// The frozen seed is asked first; the map is re-read only after a MOVED.
	opts.Cluster.Addrs = append([]string{redistest.NewSilent(t).Addr()}, c.Addrs()...)
	opts.HealthCheckInterval = time.Hour
	opts.RedisConfig = &hammerredis.RedisConfig{ReadTimeout: 3 * time.Second}
	b := startCluster(t, opts)
	key := hammerredis.BucketKey{Bucket: 1, ID: "moved"}
	ctx := context.Background()
	_, err := b.CountHit(ctx, key, 1)
	require.NoError(t, err)

	slot := protocol.Slot(protocol.Key(opts.KeyPrefix, key))
	from, err := c.MasterOf(slot)
	require.NoError(t, err)
	moveSlot(t, c, slot, otherMaster(t, c, from))

	const deadline = 300 * time.Millisecond
	cctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	begin := time.Now()
	n, err := b.CountHit(cctx, key, 2)
	took := time.Since(begin)
	t.Logf("a call redirected by MOVED, with a frozen seed, took %v", took.Round(time.Millisecond))
	require.NoError(t, err, "log:\n%s", log)
	assert.Equal(t, int64(2), n, "the bucket moved with its slot")
	assert.Less(t, took, deadline+100*time.Millisecond)
}

func testClusterMovedPastALaggingSeed(t *testing.T, c *redistest.Cluster) {
	ctx := context.Background()
	key := hammerredis.BucketKey{Bucket: 1, ID: "lagging"}
	opts := clusterOpts(t, c, logtest.New())
	slot := protocol.Slot(protocol.Key(opts.KeyPrefix, key))
	from, err := c.MasterOf(slot)
	require.NoError(t, err)
	to := otherMaster(t, c, from)
	var third *redistest.Server
	masters, err := c.Masters()
	require.NoError(t, err)
	for _, m := range masters {
		if m != from && m != to {
			third = m
		}
	}
	require.NotNil(t, third)
	// The backend's only seed is the third master, which will not have
	// heard of the move when the backend asks it.
	opts.Cluster.Addrs = []string{third.Addr()}
	b := startCluster(t, opts)
	_, err = b.CountHit(ctx, key, 1)
	require.NoError(t, err)

	moveSlot(t, c, slot, to) // every node agrees that to serves it; moved back at the end
	// The third master forgets it, as a node that has not caught up.
	fromID, err := redis.String(from.Conn(t).Do("CLUSTER", "MYID"))
	require.NoError(t, err)
	testenv.Do(t, third.Conn(t), "CLUSTER", "SETSLOT", slot, "NODE", fromID)
	n, err := b.CountHit(ctx, key, 2)
	require.NoError(t, err, "the MOVED names the new owner; the refreshed map does not yet")
	assert.Equal(t, int64(2), n)
}

// connsReceived returns how many connections the nodes of c have accepted,
// read on the admin connections given.
func connsReceived(t *testing.T, admins []redis.Conn) int {
	t.Helper()
	total := 0
	for _, a := range admins {
		info, err := redis.String(a.Do("INFO", "stats"))
		require.NoError(t, err)
		_, rest, ok := strings.Cut(info, "total_connections_received:")
		require.True(t, ok, "INFO stats:\n%s", info)
		var n int
		_, err = fmt.Sscan(rest, &n)
		require.NoError(t, err)
		total += n
	}
	return total
}

func testClusterNothingAfterStop(t *testing.T, c *redistest.Cluster) {
	var admins []redis.Conn
	for _, s := range c.Nodes() {
		admins = append(admins, s.Conn(t))
	}
	b := startCluster(t, clusterOpts(t, c, logtest.New()))
	ctx := context.Background()
	key := hammerredis.BucketKey{Bucket: 1, ID: "stop"}
	_, err := b.CountHit(ctx, key, 1)
	require.NoError(t, err)
	before := connsReceived(t, admins)
	require.NoError(t, hammerredis.Stop(b))

	wctx, cancel := context.WithTimeout(ctx, testenv.WaitLong)
	defer cancel()
	begin := time.Now()
	assert.ErrorIs(t, b.WaitConnected(wctx), hammerredis.ErrStopped)
	_, err = b.CountHit(wctx, key, 2)
	assert.ErrorIs(t, err, hammerredis.ErrStopped)
	_, err = b.GetBucket(wctx, key)
	assert.ErrorIs(t, err, hammerredis.ErrStopped)
	_, err = b.DeleteBuckets(wctx, key.ID)
	assert.ErrorIs(t, err, hammerredis.ErrStopped)
	assert.Less(t, time.Since(begin), 100*time.Millisecond, "at once")
	assert.False(t, b.Connected())
	assert.Equal(t, before, connsReceived(t, admins), "no connection to any node after Stop")
}

// assertStatsGrow checks that no counter of after is below its value in
// before.
func assertStatsGrow(t *testing.T, before, after hammerredis.Stats) {
	t.Helper()
	type counter struct {
		name          string
		before, after uint64
	}
	cs := []counter{
		{"Calls.CountHit", before.Calls.CountHit, after.Calls.CountHit},
		{"Calls.GetBucket", before.Calls.GetBucket, after.Calls.GetBucket},
		{"Calls.DeleteBuckets", before.Calls.DeleteBuckets, after.Calls.DeleteBuckets},
		{"Errors", before.Errors.Total(), after.Errors.Total()},
		{"Connects", before.Connects, after.Connects},
		{"Restarts", before.Restarts, after.Restarts},
		{"DialFailures", before.DialFailures, after.DialFailures},
		{"Latency.Count", before.Latency.Count, after.Latency.Count},
		{"Latency.Sum", uint64(before.Latency.Sum), uint64(after.Latency.Sum)},
	}
	for i, bk := range before.Latency.Buckets {
		cs = append(cs, counter{fmt.Sprint("Latency.Buckets[", i, "]"), bk.Count, after.Latency.Buckets[i].Count})
	}
	for _, c := range cs {
		assert.GreaterOrEqual(t, c.after, c.before, "%s went backwards", c.name)
	}
}

func testClusterStatsOnlyGrow(t *testing.T, c *redistest.Cluster) {
	log := logtest.New()
	opts := clusterOpts(t, c, log)
	opts.HealthCheckInterval = time.Hour // the map changes only after MOVED
	b := startCluster(t, opts)
	ctx := context.Background()
	key := hammerredis.BucketKey{Bucket: 1, ID: "stats"}
	_, err := b.CountHit(ctx, key, 1)
	require.NoError(t, err)
	st0 := b.Stats()
	assert.Equal(t, uint64(1), st0.Calls.CountHit)

	// A call redirected by MOVED is one call.
	slot := protocol.Slot(protocol.Key(opts.KeyPrefix, key))
	from, err := c.MasterOf(slot)
	require.NoError(t, err)
	to := otherMaster(t, c, from)
	moveSlot(t, c, slot, to)
	n, err := b.CountHit(ctx, key, 2)
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	st1 := b.Stats()
	assert.Equal(t, st0.Calls.CountHit+1, st1.Calls.CountHit, "a redirected call counts once")
	assert.Equal(t, st0.Errors.Total(), st1.Errors.Total(), "a followed redirect is no error")
	assert.Equal(t, st0.Latency.Count+1, st1.Latency.Count)
	assertStatsGrow(t, st0, st1)

	// A master leaves the map (its replica takes over): its counts stay.
	replica, err := c.ReplicaOf(to)
	require.NoError(t, err)
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, c.Failover(fctx, replica))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, c.Failover(ctx, to))
	})
	// The old master answers MOVED: the map changes, and the call waits
	// for the new master's server's first dial.
	_, err = b.CountHit(ctx, key, 3)
	require.NoError(t, err)
	wctx, wcancel := context.WithTimeout(ctx, testenv.WaitLong)
	defer wcancel()
	require.NoError(t, b.WaitConnected(wctx))
	_, err = b.CountHit(ctx, key, 4)
	require.NoError(t, err, "log:\n%s", log)
	st2 := b.Stats()
	assert.Equal(t, st1.Calls.CountHit+2, st2.Calls.CountHit)
	assert.Greater(t, st2.Connects, st1.Connects, "the new master's connection")
	assertStatsGrow(t, st1, st2)
	// Once the old master's server is stopped, its counts are folded in.
	require.NoError(t, hammerredis.Stop(b))
	assertStatsGrow(t, st2, b.Stats())
}

// keysOf counts the keys with prefix on the node behind admin.
func keysOf(t *testing.T, admin redis.Conn, prefix string) int {
	t.Helper()
	keys, err := redis.Strings(admin.Do("KEYS", prefix+"*"))
	require.NoError(t, err)
	return len(keys)
}

func testClusterDeleteBucketsWithAFrozenMaster(t *testing.T, c *redistest.Cluster) {
	masters, err := c.Masters()
	require.NoError(t, err)
	admins := map[*redistest.Server]redis.Conn{}
	for _, m := range masters {
		admins[m] = m.Conn(t)
	}
	const timeout = 500 * time.Millisecond
	// Each master frozen in turn: whatever order the masters are scanned
	// in, the others' buckets go, within one timeout for all.
	for _, frozen := range masters {
		opts := clusterOpts(t, c, logtest.New())
		opts.DeleteBucketsTimeout = timeout
		b := startCluster(t, opts)
		ctx := context.Background()
		for bucket := range int64(30) {
			_, err := b.CountHit(ctx, hammerredis.BucketKey{Bucket: bucket, ID: "spread"}, 1)
			require.NoError(t, err)
		}
		others := 0
		for _, m := range masters {
			if m != frozen {
				others += keysOf(t, admins[m], opts.KeyPrefix)
			}
		}
		require.NoError(t, frozen.Signal(syscall.SIGSTOP))
		resume := sync.OnceFunc(func() { require.NoError(t, frozen.Signal(syscall.SIGCONT)) })
		t.Cleanup(resume)

		begin := time.Now()
		n, err := b.DeleteBuckets(ctx, "spread")
		took := time.Since(begin)
		resume()
		t.Logf("DeleteBuckets with %s frozen: %d deleted in %v: %v", frozen.Addr(), n, took.Round(time.Millisecond), err)
		assert.ErrorIs(t, err, hammerredis.ErrTimeout)
		assert.Less(t, took, timeout+200*time.Millisecond, "one DeleteBucketsTimeout for all masters")
		assert.Equal(t, int64(others), n, "the keys of the masters that answered")
		for _, m := range masters {
			if m != frozen {
				assert.Zero(t, keysOf(t, admins[m], opts.KeyPrefix), "%s still holds buckets", m.Addr())
			}
		}
		require.NoError(t, hammerredis.Stop(b))
	}
}

func TestClusterRefusesDatabaseAndSentinel(t *testing.T) {
	cluster := &hammerredis.ClusterConfig{Addrs: []string{"127.0.0.1:1"}}
	for name, opts := range map[string]hammerredis.Options{
		"RedisConfig.Database": {RedisConfig: &hammerredis.RedisConfig{Host: "127.0.0.1", Port: 1, Database: 2}},
		"database in RedisURL": {RedisURL: "redis://127.0.0.1:1/2"},
		"Sentinel": {RedisURL: "redis://127.0.0.1:1",
			Sentinel: &hammerredis.SentinelConfig{Addrs: []string{"127.0.0.1:1"}, MasterName: "m"}},
	} {
		opts.ExpiryMs, opts.Cluster = 1000, cluster
		_, err := hammerredis.New(opts)
		assert.ErrorIs(t, err, hammerredis.ErrInvalid, name)
		_, err = hammerredis.Start(opts)
		assert.ErrorIs(t, err, hammerredis.ErrInvalid, name)
	}
}

func TestClusterWaitConnectedEndsAtStop(t *testing.T) {
	// No node answers: the slot map never comes.
	b, err := hammerredis.Start(hammerredis.Options{ExpiryMs: 1000, RedisURL: "redis://127.0.0.1:1",
		Cluster: &hammerredis.ClusterConfig{Addrs: []string{"127.0.0.1:1"}}, Logger: logtest.New().Logger()})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitLong)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.WaitConnected(ctx) }()
	require.NoError(t, hammerredis.Stop(b))
	select {
	case err := <-done:
		assert.ErrorIs(t, err, hammerredis.ErrStopped)
	case <-time.After(time.Second):
		require.FailNow(t, "WaitConnected still waits a second after Stop")
	}
	assert.ErrorIs(t, b.WaitConnected(ctx), hammerredis.ErrStopped)
	_, err = b.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "x"}, 1)
	assert.ErrorIs(t, err, hammerredis.ErrStopped)
}

// testClusterHammer7 runs Hammer 7's algorithms on a cluster: each key is
// written on the master of its slot, and a hit follows its slot when it
// moves.
func testClusterHammer7(t *testing.T, c *redistest.Cluster) {
	b := startCluster(t, clusterOpts(t, c, logtest.New()))
	ctx := context.Background()
	prefix := fmt.Sprintf("H7:%d", testenv.Unique())
	now := time.Now().UnixMilli()
	policies := []protocol.Policy{
		{Algorithm: protocol.FixWindow, Prefix: prefix, ScaleMs: 60_000, Limit: 2},
		{Algorithm: protocol.SlidingWindow, Prefix: prefix, ScaleMs: 60_000, Limit: 2},
		{Algorithm: protocol.LeakyBucket, Prefix: prefix, Limit: 2, Rate: 1},
		{Algorithm: protocol.TokenBucket, Prefix: prefix, Limit: 2, Rate: 1},
	}
	masters := map[*redistest.Server]bool{}
	for i := range 12 {
		id := fmt.Sprint("user", i)
		for _, p := range policies {
			r, err := b.Hit(ctx, protocol.Hit{Policy: p, ID: id, Cost: 2, Now: now})
			require.NoError(t, err, "%s %s", p.Algorithm, id)
			assert.True(t, r.Allowed)
			key := p.Key(id, now)
			m, err := c.MasterOf(protocol.Slot(key))
			require.NoError(t, err)
			masters[m] = true
			assert.EqualValues(t, 1, testenv.Do(t, m.Conn(t), "EXISTS", key), "%s on the master of its slot", key)
		}
	}
	assert.Len(t, masters, 3, "the keys spread over every master")

	// The slot of a token bucket moves: the next hit follows it and sees
	// the bucket as it was left (empty: capacity 2, cost 2).
	p := policies[3]
	key := p.Key("user0", now)
	moveSlot(t, c, protocol.Slot(key), otherMaster(t, c, mustMasterOf(t, c, key)))
	r, err := b.Hit(ctx, protocol.Hit{Policy: p, ID: "user0", Cost: 2, Now: now})
	require.NoError(t, err)
	assert.False(t, r.Allowed, "the bucket moved with its slot")
	assert.Positive(t, r.RetryAfterMs)
}

func mustMasterOf(t *testing.T, c *redistest.Cluster, key string) *redistest.Server {
	t.Helper()
	m, err := c.MasterOf(protocol.Slot(key))
	require.NoError(t, err)
	return m
}
