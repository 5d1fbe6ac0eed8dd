package hammerredis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/protocol"
)

// startOnCluster starts a backend on cluster c and waits until it knows the
// slot map and every master is connected.
func startOnCluster(t *testing.T, c *redistest.Cluster) (*hammerredis.Backend, *logtest.Recorder) {
	t.Helper()
	log := logtest.New()
	b, err := hammerredis.Start(hammerredis.Options{
		ExpiryMs: 60_000,
		Cluster:  &hammerredis.ClusterConfig{Addrs: c.Addrs()[:2]},
		// Never the system Redis, should the cluster setting be ignored.
		RedisURL: "redis://127.0.0.1:1",
		Logger:   log.Logger(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { hammerredis.Stop(b) })
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	require.NoError(t, b.WaitConnected(ctx))
	return b, log
}

func TestClusterCountsOnEveryMaster(t *testing.T) {
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
	c := redistest.NewCluster(t)
	b, log := startOnCluster(t, c)
	ctx := context.Background()
	key := hammerredis.BucketKey{Bucket: 1, ID: "failover"}
	_, err := b.CountHit(ctx, key, 1)
	require.NoError(t, err)

	master, err := c.MasterOf(protocol.Slot(protocol.Key(protocol.DefaultKeyPrefix, key)))
	require.NoError(t, err)
	_, err = master.Conn(t).Do("WAIT", 1, 5000) // the hit is on the replica too
	require.NoError(t, err)
	master.Kill()
	killed := time.Now()
	hctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, c.WaitHealthy(hctx))
	healthy := time.Now()

	// No event says "the backend sees the new master": poll with short calls.
	deadline := time.Now().Add(waitLong)
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

func TestClusterOptionsValidated(t *testing.T) {
	for _, c := range []*hammerredis.ClusterConfig{{}, {Addrs: []string{"no-port"}}} {
		_, err := hammerredis.New(hammerredis.Options{ExpiryMs: 1, Cluster: c})
		assert.ErrorIs(t, err, hammerredis.ErrInvalid, "%v", c)
	}
}

func TestHashTagKeys(t *testing.T) {
	f := start(t, nil, hammerredis.Options{HashTagKeys: true})
	ctx := context.Background()
	for bucket := range int64(3) {
		_, err := f.b.CountHit(ctx, hammerredis.BucketKey{Bucket: bucket, ID: "user:1"}, 1)
		require.NoError(t, err)
	}
	_, err := f.b.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "user:1:x"}, 1)
	require.NoError(t, err)
	assert.Equal(t, int64(1), do(t, f.admin, "EXISTS", f.prefix+"{user:1}:2"), "the hash-tag layout")
	info, err := f.b.GetBucket(ctx, hammerredis.BucketKey{Bucket: 2, ID: "user:1"})
	require.NoError(t, err)
	assert.Equal(t, int64(1), info.Count)
	n, err := f.b.DeleteBuckets(ctx, "user:1")
	require.NoError(t, err)
	assert.Equal(t, int64(3), n, "only user:1's buckets")
	assert.Equal(t, int64(1), do(t, f.admin, "EXISTS", f.prefix+"{user:1:x}:1"))

	_, err = hammerredis.New(hammerredis.Options{ExpiryMs: 1, HashTagKeys: true, KeyPrefix: "a{b}:"})
	assert.ErrorIs(t, err, hammerredis.ErrInvalid)
	_, err = hammerredis.New(hammerredis.Options{ExpiryMs: 1, HashTagKeys: true, KeyPrefix: "a{b}:",
		Cluster: &hammerredis.ClusterConfig{Addrs: []string{"127.0.0.1:1"}}})
	assert.ErrorIs(t, err, hammerredis.ErrInvalid)
}

func TestClusterHashTagKeysKeepAnIDOnOneMaster(t *testing.T) {
	c := redistest.NewCluster(t)
	log := logtest.New()
	b, err := hammerredis.Start(hammerredis.Options{ExpiryMs: 60_000, HashTagKeys: true,
		Cluster: &hammerredis.ClusterConfig{Addrs: c.Addrs()}, RedisURL: "redis://127.0.0.1:1", Logger: log.Logger()})
	require.NoError(t, err)
	t.Cleanup(func() { hammerredis.Stop(b) })
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
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
	do(t, dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", id(source))
	do(t, src, "CLUSTER", "SETSLOT", slot, "MIGRATING", id(target))

	// The key is not on the source: it answers ASK, and the hit goes to the
	// target, after ASKING.
	n, err := b.CountHit(ctx, key, 1)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	do(t, dst, "ASKING")
	assert.Equal(t, int64(1), do(t, dst, "EXISTS", rkey), "counted on the importing node")

	// The migration ends: the source now answers MOVED, and the backend
	// refreshes its map and follows.
	for _, m := range masters {
		do(t, m.Conn(t), "CLUSTER", "SETSLOT", slot, "NODE", id(target))
	}
	n, err = b.CountHit(ctx, key, 2)
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)
	info, err := b.GetBucket(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, int64(2), info.Count)
}
