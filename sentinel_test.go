package hammerredis_test

// Redis Sentinel: the backend finds its master through a private group of a
// master, a replica and three sentinels (redistest.SentinelGroup), counts its
// hits there, and follows the master by itself after a failover.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/internal/testenv"
	"github.com/hammer-go/hammerredis/protocol"
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
	return startSentinelOpts(t, hammerredis.Options{Sentinel: sc})
}

// startSentinelOpts is startViaSentinel with opts, whose Sentinel must be
// set.
func startSentinelOpts(t *testing.T, opts hammerredis.Options) *fixture {
	t.Helper()
	// Never the system Redis on :6379, were Sentinel ever ignored.
	opts.RedisURL = "redis://" + deadAddr(t)
	return testenv.StartNoWait(t, nil, opts)
}

// startOnGroup is startViaSentinel on g's sentinels and master name, waiting
// until the backend is connected.
func startOnGroup(t *testing.T, g *redistest.SentinelGroup) *fixture {
	t.Helper()
	f := startViaSentinel(t, &hammerredis.SentinelConfig{Addrs: g.SentinelAddrs(), MasterName: g.MasterName()})
	f.WaitConnected(t)
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
		_, err := f.B.CountHit(ctx, probe, 1)
		cancel()
		if err == nil {
			there, err := redis.Bool(newMaster.Do("EXISTS", f.Key(probe.ID, probe.Bucket)))
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
	require.FailNow(t, "the backend did not count on the new master in time",
		"within %v of the sentinels reporting it; last error: %v; hits counted on the old master: %d\nlog:\n%s",
		sentinelRecoveryWait, last, stale, f.Log)
	return 0, 0
}

func TestSentinelCountsOnTheMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("a sentinel group takes seconds to start: make test runs it")
	}
	g := redistest.NewSentinelGroup(t)
	f := startOnGroup(t, g)
	for want := int64(1); want <= 3; want++ {
		assert.Equal(t, want, hit(t, f.B, "m"))
	}
	assert.Equal(t, "3", hgetCount(t, g.Master().Conn(t), f.Key("m", 1)), "the hits were counted on the master")
	assert.Contains(t, f.Log.String(), "mymaster via sentinel", "the log names the master it followed")
	lb := protocol.Policy{Algorithm: protocol.LeakyBucket, Prefix: "H7", Limit: 10, Rate: 1}
	r, err := f.B.Hit(context.Background(), protocol.Hit{Policy: lb, ID: "m", Cost: 4})
	require.NoError(t, err)
	assert.Equal(t, protocol.HitReply{Allowed: true, Count: 4}, r)
	assert.Equal(t, []byte("4"), testenv.Do(t, g.Master().Conn(t), "HGET", "H7:m", "level"), "Hammer 7's hit ran on the master")
	// DeleteBuckets dials a connection of its own, through the sentinels too.
	n, err := f.B.DeleteBuckets(context.Background(), "m")
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	assert.Equal(t, int64(0), testenv.Do(t, g.Master().Conn(t), "EXISTS", f.Key("m", 1)), "deleted on the master")
}

// TestSentinelFailover fails over while the backend is connected, forced
// (SENTINEL FAILOVER) or after the master crashed, and checks that the
// backend serves again by itself, on the new master, with the count that
// the old one had replicated.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("a sentinel group takes seconds to start: make test runs it")
	}
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
				require.Equal(t, want, hit(t, f.B, "k"))
			}
			fix := protocol.Hit{Policy: protocol.Policy{Algorithm: protocol.FixWindow, Prefix: "H7", ScaleMs: 3_600_000, Limit: 10},
				ID: "k", Cost: 3, Now: time.Now().UnixMilli()}
			r, err := f.B.Hit(context.Background(), fix)
			require.NoError(t, err)
			require.EqualValues(t, 3, r.Count)
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
			// backend must not wait for that. It hears of the promotion on
			// the sentinels' pub/sub, or else on its poll every
			// HealthCheckInterval (1s), and redials; hits counted on the old
			// master in between would be lost when it resyncs.
			assert.Less(t, took, 3*time.Second, "the backend followed the new master within a health check and a redial")
			t.Logf("%s failover: the sentinels reported the new master %v after it began; "+
				"the backend counted on it %v after that (%d hits counted on the old master meanwhile)",
				tc.name, reported.Sub(began).Round(time.Millisecond), took.Round(time.Millisecond), stale)

			assert.Equal(t, int64(4), hit(t, f.B, "k"), "the count continues from the replicated hits")
			assert.Equal(t, "4", hgetCount(t, newMaster, f.Key("k", 1)), "the hit was counted on the new master")
			r, err = f.B.Hit(context.Background(), fix)
			require.NoError(t, err)
			assert.EqualValues(t, 6, r.Count, "Hammer 7's window continues from the replicated count")
			assert.GreaterOrEqual(t, f.B.Stats().Connects, uint64(2), "the backend reconnected")
		})
	}
}

func TestSentinelUnknownMasterName(t *testing.T) {
	if testing.Short() {
		t.Skip("a sentinel group takes seconds to start: make test runs it")
	}
	g := redistest.NewSentinelGroup(t)
	f := startViaSentinel(t, &hammerredis.SentinelConfig{Addrs: g.SentinelAddrs(), MasterName: "nosuchmaster"})
	testenv.WaitDialFailures(t, f.B, 1)
	err := hitErr(f.B)
	require.ErrorIs(t, err, hammerredis.ErrClosed)
	assert.ErrorContains(t, err, `"nosuchmaster"`, "ErrClosed names the master it looked for")
	assert.ErrorContains(t, err, "no master named", "ErrClosed says the sentinels do not know it")
	assert.Equal(t, "0", fmt.Sprint(testenv.Do(t, g.Master().Conn(t), "DBSIZE")), "nothing reached the master")
}

func TestSentinelAllSentinelsUnreachable(t *testing.T) {
	addrs := []string{deadAddr(t), deadAddr(t)}
	f := startViaSentinel(t, &hammerredis.SentinelConfig{Addrs: addrs, MasterName: "mymaster"})
	testenv.WaitDialFailures(t, f.B, 1)
	err := hitErr(f.B)
	require.ErrorIs(t, err, hammerredis.ErrClosed)
	for _, a := range addrs {
		assert.ErrorContains(t, err, a, "ErrClosed names every sentinel it asked")
	}
	assert.ErrorContains(t, err, "connection refused", "ErrClosed says why")
}

// hitErr counts one hit within testenv.WaitLong and returns its error, which must
// not be nil.
func hitErr(b *hammerredis.Backend) error {
	ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitLong)
	defer cancel()
	_, err := b.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "x"}, 1)
	if err == nil {
		return errors.New("CountHit succeeded")
	}
	return err
}

// A sentinel that accepts connections and never answers, listed first,
// delays no call: the sentinels are asked off the calls' path, each within
// the sentinel timeout.
func TestSentinelFrozenSentinelNeverDelaysCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("a sentinel group takes seconds to start: make test runs it")
	}
	g := redistest.NewSentinelGroup(t)
	frozen := redistest.NewFrozenSentinel(t)
	f := startSentinelOpts(t, hammerredis.Options{
		Sentinel:            &hammerredis.SentinelConfig{Addrs: append([]string{frozen.Addr()}, g.SentinelAddrs()...), MasterName: g.MasterName()},
		CallTimeout:         200 * time.Millisecond,
		HealthCheckInterval: 100 * time.Millisecond,
	})
	f.WaitConnected(t)
	// Ten health ticks, each of which once asked the sentinels on the
	// server goroutine.
	const span = time.Second
	calls := 0
	for end := time.Now().Add(span); time.Now().Before(end); calls++ {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := f.B.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "f"}, 1)
		cancel()
		require.NoError(t, err, "call %d, %v into %v of health checks every 100ms; log:\n%s", calls, span, span, f.Log)
	}
	assert.Equal(t, fmt.Sprint(calls), hgetCount(t, g.Master().Conn(t), f.Key("f", 1)), "every hit was counted on the master")
	t.Logf("%d calls within 200ms each over %v, a frozen sentinel listed first", calls, span)
}

// A sentinel listed first that names a replica (one that has not caught up
// with a failover, say) does not keep the backend from the master that the
// others name.
func TestSentinelLaggingSentinelListedFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("a sentinel group takes seconds to start: make test runs it")
	}
	g := redistest.NewSentinelGroup(t)
	lying := redistest.NewLyingSentinel(t, g.Replica().Addr())
	f := startViaSentinel(t, &hammerredis.SentinelConfig{
		Addrs: append([]string{lying.Addr()}, g.SentinelAddrs()...), MasterName: g.MasterName(),
	})
	f.WaitConnected(t)
	assert.Equal(t, int64(1), hit(t, f.B, "l"))
	assert.Equal(t, "1", hgetCount(t, g.Master().Conn(t), f.Key("l", 1)), "the hit was counted on the master")
}

// The master is followed even when the only sentinels that answer name
// another server, as long as one of the servers they name is the master.
func TestSentinelTriesEveryNamedMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("a sentinel group takes seconds to start: make test runs it")
	}
	g := redistest.NewSentinelGroup(t)
	// Two lying sentinels outvote the one real sentinel: the replica they
	// name fails ROLE, and the master the minority names is tried next.
	a := redistest.NewLyingSentinel(t, g.Replica().Addr())
	b := redistest.NewLyingSentinel(t, g.Replica().Addr())
	f := startSentinelOpts(t, hammerredis.Options{
		Sentinel: &hammerredis.SentinelConfig{
			Addrs: []string{a.Addr(), b.Addr(), g.SentinelAddrs()[0]}, MasterName: g.MasterName(),
		},
		HealthCheckInterval: 20 * time.Millisecond, // the sentinels' poll
	})
	f.WaitConnected(t)
	// The watcher's polls hear the same majority: they must not follow it
	// to the replica and drop the connection each time.
	a.WaitAsked(t, a.Asked()+3)
	assert.Zero(t, f.B.Stats().Restarts, "no connection was dropped for the lying majority")
	assert.Equal(t, int64(1), hit(t, f.B, "t"))
	assert.Equal(t, "1", hgetCount(t, g.Master().Conn(t), f.Key("t", 1)), "the hit was counted on the master")
}

// sentinelEvents subscribes to channels on every sentinel of g and returns
// a channel of the first time each channel's message arrived, from any
// sentinel.
func sentinelEvents(t *testing.T, g *redistest.SentinelGroup, channels ...string) <-chan sentinelEvent {
	t.Helper()
	out := make(chan sentinelEvent, 64)
	for _, s := range g.Sentinels() {
		c, err := s.Dial()
		require.NoError(t, err)
		psc := redis.PubSubConn{Conn: c}
		args := make([]any, len(channels))
		for i, ch := range channels {
			args[i] = ch
		}
		require.NoError(t, psc.Subscribe(args...))
		for range channels {
			_, ok := psc.Receive().(redis.Subscription)
			require.True(t, ok, "SUBSCRIBE on sentinel %s", s.Addr())
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				switch v := psc.ReceiveWithTimeout(0).(type) {
				case redis.Message:
					select {
					case out <- sentinelEvent{at: time.Now(), channel: v.Channel, sentinel: s.Addr()}:
					default:
					}
				case error:
					return
				}
			}
		}()
		t.Cleanup(func() { c.Close(); <-done })
	}
	return out
}

type sentinelEvent struct {
	at                time.Time
	channel, sentinel string
}

// clientsNamed returns how many clients named name the server c is
// connected to has.
func clientsNamed(t *testing.T, c redis.Conn, name string) int {
	t.Helper()
	list, err := redis.String(c.Do("CLIENT", "LIST", "TYPE", "normal"))
	require.NoError(t, err)
	return strings.Count(list, " name="+name+" ")
}

// TestSentinelFailoverLosesNoAcknowledgedHit forces a failover under 32
// callers and checks that the backend leaves the old master at once, and
// that every hit it acknowledged is on the new master: none was counted on
// the old one after the replica was promoted, where the old master would
// have thrown it away when it became a replica.
func TestSentinelFailoverLosesNoAcknowledgedHit(t *testing.T) {
	if testing.Short() {
		t.Skip("a sentinel group takes seconds to start: make test runs it")
	}
	const (
		callers = 32
		ids     = 8
		client  = "hammer-failover-test"
	)
	g := redistest.NewSentinelGroup(t)
	f := startSentinelOpts(t, hammerredis.Options{
		Sentinel:    &hammerredis.SentinelConfig{Addrs: g.SentinelAddrs(), MasterName: g.MasterName()},
		RedisConfig: &hammerredis.RedisConfig{ClientName: client},
		PoolSize:    4,
	})
	f.WaitConnected(t)
	events := sentinelEvents(t, g, "+failover-state-send-slaveof-noone", "+switch-master")
	oldMaster := g.Master().Conn(t)
	require.Equal(t, 4, clientsNamed(t, oldMaster, client), "the pool's connections are on the master")

	var (
		acked  [ids]atomic.Int64
		failed atomic.Int64
		closed atomic.Int64 // failed with ErrClosed: never sent
		// firstFail and lastFail bound the failures, in ns since the epoch.
		firstFail, lastFail atomic.Int64
		total               atomic.Int64
		stop                = make(chan struct{})
		wg                  sync.WaitGroup
	)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				id := (i + n) % ids
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, err := f.B.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: fmt.Sprint("load", id)}, 1)
				cancel()
				if err == nil {
					acked[id].Add(1)
					total.Add(1)
				} else {
					failed.Add(1)
					if errors.Is(err, hammerredis.ErrClosed) {
						closed.Add(1)
					}
					at := time.Now().UnixNano()
					firstFail.CompareAndSwap(0, at)
					lastFail.Store(at)
					// A client's pause before it retries: calls fail at
					// once while the backend has no master, and 32
					// callers spinning on them would starve the
					// test's measurements (and Redis) of the 2 CPUs.
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	testenv.WaitWithin(t, failoverWait, "hits are counted", func() bool { return total.Load() >= 1000 })
	require.Zero(t, failed.Load(), "no call failed before the failover")

	began := time.Now()
	require.NoError(t, g.Failover())
	// Poll the old master until the backend has no connection left there.
	testenv.WaitWithin(t, failoverWait, "the backend left the old master", func() bool { return clientsNamed(t, oldMaster, client) == 0 })
	left := time.Now()
	var promoting, announced time.Time
	for announced.IsZero() {
		select {
		case e := <-events:
			switch {
			case e.channel == "+switch-master" && announced.IsZero():
				announced = e.at
			case e.channel != "+switch-master" && promoting.IsZero():
				promoting = e.at
			}
		case <-time.After(failoverWait):
			require.FailNow(t, "no +switch-master", "within %v", failoverWait)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), failoverWait)
	defer cancel()
	newAddr, err := g.WaitFailover(ctx, g.Master().Addr())
	require.NoError(t, err)
	require.Equal(t, g.Replica().Addr(), newAddr)
	newMaster := g.Replica().Conn(t)
	atSwitch := total.Load()
	testenv.WaitWithin(t, failoverWait, "hits are counted on the new master", func() bool { return total.Load() >= atSwitch+1000 })
	close(stop)
	wg.Wait()
	stop = make(chan struct{}) // for the deferred close

	var sumAcked, sumHeld, lost int64
	for id := range ids {
		held, err := redis.Int64(newMaster.Do("HGET", f.Key(fmt.Sprint("load", id), 1), "count"))
		require.NoError(t, err)
		a := acked[id].Load()
		sumAcked += a
		sumHeld += held
		lost += max(0, a-held)
	}
	t.Logf("failover under %d callers: promotion announced %v after SENTINEL FAILOVER, the backend left the old master %v after that, "+
		"+switch-master %v after that; the backend left the old master %v relative to +switch-master; "+
		"%d hits acknowledged, %d held by the new master, %d acknowledged hits lost; "+
		"%d calls failed (%d of them with ErrClosed, never sent), from %v to %v after SENTINEL FAILOVER",
		callers, promoting.Sub(began).Round(time.Millisecond), left.Sub(promoting).Round(time.Millisecond),
		announced.Sub(left).Round(time.Millisecond), left.Sub(announced).Round(time.Millisecond),
		sumAcked, sumHeld, lost, failed.Load(), closed.Load(),
		time.Unix(0, firstFail.Load()).Sub(began).Round(time.Millisecond), time.Unix(0, lastFail.Load()).Sub(began).Round(time.Millisecond))
	assert.Zero(t, lost, "acknowledged hits missing from the new master; log:\n%s", f.Log)
	assert.Less(t, left.Sub(announced), 200*time.Millisecond, "the backend left the old master within 200ms of +switch-master")
}

// Stop returns promptly and leaves no goroutine of the sentinel watcher,
// even with a frozen sentinel holding a subscription and a dial.
func TestSentinelStopIsPromptAndLeavesNoGoroutine(t *testing.T) {
	if testing.Short() {
		t.Skip("a sentinel group takes seconds to start: make test runs it")
	}
	g := redistest.NewSentinelGroup(t)
	frozen := redistest.NewFrozenSentinel(t)
	ignore := goleak.IgnoreCurrent()
	b, err := hammerredis.Start(hammerredis.Options{
		ExpiryMs:  60_000,
		Sentinel:  &hammerredis.SentinelConfig{Addrs: append([]string{frozen.Addr()}, g.SentinelAddrs()...), MasterName: g.MasterName()},
		RedisURL:  "redis://" + deadAddr(t),
		KeyPrefix: testenv.Prefix(t),
		PoolSize:  2,
		Logger:    logtest.New().Logger(),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitLong)
	defer cancel()
	require.NoError(t, b.WaitConnected(ctx))
	assert.Equal(t, int64(1), hit(t, b, "s"))

	began := time.Now()
	hammerredis.Stop(b)
	took := time.Since(began)
	assert.Less(t, took, time.Second, "Stop returned promptly")
	frozen.Close() // its own goroutines serve the backend's connections
	goleak.VerifyNone(t, ignore)
	t.Logf("Stop took %v", took.Round(time.Millisecond))
}

func TestSentinelStopWhileTheNamedMasterNeverAnswers(t *testing.T) {
	silent := redistest.NewSilent(t) // accepts, never answers ROLE
	liar := redistest.NewLyingSentinel(t, silent.Addr())
	b, err := hammerredis.Start(hammerredis.Options{
		ExpiryMs: 60_000,
		Sentinel: &hammerredis.SentinelConfig{Addrs: []string{liar.Addr()}, MasterName: "mymaster"},
		RedisURL: "redis://" + deadAddr(t),
		Logger:   logtest.New().Logger(), // ReadTimeout 5s
	})
	require.NoError(t, err)
	<-silent.Received() // ROLE is out
	began := time.Now()
	require.NoError(t, hammerredis.Stop(b))
	assert.Less(t, time.Since(began), time.Second, "Stop does not wait for a ReadTimeout")
}
