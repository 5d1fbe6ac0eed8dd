package faults_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
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
	// chaosDefault is TestChaos's length when HAMMERREDIS_CHAOS is unset:
	// short, for make test; make chaos runs it longer.
	chaosDefault = 3 * time.Second
	// chaosClusterDefault is TestChaosCluster's: shorter, since the
	// cluster takes seconds to start.
	chaosClusterDefault = 2 * time.Second
	chaosCallers        = 64
	// chaosHeapGrowth bounds the growth of the heap in use over the run.
	chaosHeapGrowth = 64 << 20

	// The throughput is measured after the warm-up and again after the
	// last fault healed, as the best of chaosWindows windows of
	// chaosWindow (the best, to ride out other processes taking the CPU);
	// after must be at least chaosThroughputKept of before. While it is
	// not, after takes more windows, up to chaosMaxWindows: a backend that
	// lost its pace does not find it again, a busy machine calms down.
	chaosWindow         = 250 * time.Millisecond
	chaosWindows        = 3
	chaosMaxWindows     = 8
	chaosThroughputKept = 0.6
	// chaosIdleWait bounds the wait for the in-air count to return to 0
	// once the load halted: a caller whose deadline passed may have left
	// its call in the air, answered within a read timeout.
	chaosIdleWait = time.Second

	// chaosString is what the keys of the hot ids of another type hold.
	chaosString = "not a hash"
	// chaosUnrelated is how many keys TestChaos's server holds besides the
	// buckets, all of which DeleteBuckets scans.
	chaosUnrelated = 300_000
	// chaosVictimBuckets is how many buckets each deleted id has.
	chaosVictimBuckets = 20
)

// chaosLength reads HAMMERREDIS_CHAOS, a Go duration; def when unset.
func chaosLength(t *testing.T, def time.Duration) time.Duration {
	s := os.Getenv("HAMMERREDIS_CHAOS")
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	require.NoError(t, err, "HAMMERREDIS_CHAOS")
	return d
}

// chaosSeed reads HAMMERREDIS_CHAOS_SEED, to replay a run's fault schedule
// (not its timing), or picks one.
func chaosSeed(t *testing.T) uint64 {
	if s := os.Getenv("HAMMERREDIS_CHAOS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "HAMMERREDIS_CHAOS_SEED")
		return n
	}
	return rand.Uint64()
}

// heapInUse returns the heap in use after a garbage collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// chaosIDs are the ids of the chaos tests' load: six hot ids shared by every
// caller, so that their hits are coalesced, two of which (refusing) have
// keys that hold a string; and one id per caller. Each refusing id shares
// its hash tag, so its slot, with a counted hot id: a slot migration moves
// both.
func chaosIDs(callers int) (counted, refusing []string, pick func(i, j int) string) {
	// Two hot ids and every third caller's own are Hammer 7 fix windows
	// (h7Mark), in the same slots as the others.
	hot := []string{"{hot0}", "{hot1}", "{hot2}", "{hot3}", h7Mark + "{hot0}", h7Mark + "{hot1}", "{hot0}string", "{hot2}string"}
	counted = slices.Clone(hot[:6])
	refusing = hot[6:]
	for i := range callers {
		id := fmt.Sprint("caller", i)
		if i%3 == 0 {
			id = h7Mark + id
		}
		counted = append(counted, id)
	}
	return counted, refusing, func(i, j int) string {
		if j%2 == 0 {
			return hot[(i+j/2)%len(hot)]
		}
		return counted[6+i]
	}
}

// chaosHotCounted returns the counted hot ids of chaosIDs.
func chaosHotCounted(counted []string) []string { return counted[:6] }

// chaosDeadline is caller i's deadline: 100-400ms.
func chaosDeadline(i int) time.Duration { return time.Duration(100+100*(i%4)) * time.Millisecond }

// chaosFault is one kind of fault of a chaos test.
type chaosFault struct {
	name string
	// strike injects the fault, keeps it for hold if it lasts, heals it,
	// and returns the id whose hits tell that the backend serves again.
	strike func(rng *rand.Rand, hold time.Duration) (probe string)
}

// chaosRun is the load of a chaos test under its faults, and the figures.
type chaosRun struct {
	b      *hammerredis.Backend
	led    *faultLedger
	checks *checkLedger // the checks of chaosCheckCallers
	pick   func(i, j int) string
	faults []chaosFault
	// healed, when set, waits after the last fault for what it left
	// running, before the throughput is measured again.
	healed func()
	length time.Duration
	seed   uint64

	struck []int
	recs   [][]time.Duration // served again after, by fault
	// before and after: acknowledged calls/s after the warm-up and after
	// the last fault healed.
	before, after float64
	faulty        time.Duration // the faults' phase
	ran           time.Duration // the load's run
	inAir         int           // Stats().InAir once the load halted, after idle
	idle          time.Duration // how long after the halt it was read
	st            hammerredis.Stats
	heapStart     uint64
	heapPeak      uint64
	heapEnd       uint64
}

// run starts the load, waits for it to be served, measures the throughput,
// strikes faults for r.length, each kind in turn in a shuffled order,
// measures the throughput again, halts the load and takes the figures.
func (r *chaosRun) run(t *testing.T) {
	t.Helper()
	rng := rand.New(rand.NewPCG(r.seed, 0))
	r.struck = make([]int, len(r.faults))
	r.recs = make([][]time.Duration, len(r.faults))
	r.heapStart = heapInUse()
	r.heapPeak = r.heapStart
	loaded := time.Now()
	hits := startLoad(r.b, r.led, chaosHitCallers, r.pick, chaosDeadline)
	checks := startCheckLoad(r.b, r.checks, chaosCheckCallers, r.seed,
		func(i int) time.Duration { return chaosDeadline(chaosHitCallers + i) })
	halt := func() { hits.halt(); checks.halt() }
	t.Cleanup(halt) // before the backend stops, should the test fail early
	r.led.waitAcked(t, 100)
	r.before = chaosThroughput(r.led, 0)

	var order []int
	began := time.Now()
	for time.Since(began) < r.length {
		if len(order) == 0 {
			order = rng.Perm(len(r.faults))
		}
		k := order[0]
		order = order[1:]
		hold := time.Duration(50+rng.IntN(500)) * time.Millisecond
		probe := r.faults[k].strike(rng, hold)
		healed := time.Now()
		r.struck[k]++
		r.recs[k] = append(r.recs[k], r.led.recoveryOf(t, r.b, probe, healed)) // checked by check

		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		r.heapPeak = max(r.heapPeak, m.HeapInuse)
		time.Sleep(time.Duration(50+rng.IntN(250)) * time.Millisecond) // calm between faults
	}
	r.faulty = time.Since(began)
	if r.healed != nil {
		r.healed()
	}
	r.after = chaosThroughput(r.led, chaosThroughputKept*r.before)
	halt()
	halted := time.Now()
	r.ran = halted.Sub(loaded)
	// No event says that the backend is idle: poll, within chaosIdleWait.
	for r.inAir = r.b.Stats().InAir; r.inAir != 0 && time.Since(halted) < chaosIdleWait; r.inAir = r.b.Stats().InAir {
		time.Sleep(time.Millisecond)
	}
	r.idle = time.Since(halted)
	r.heapEnd = heapInUse()
	r.st = r.b.Stats()
}

// chaosThroughput returns the acknowledged calls per second of the load
// running, the best of chaosWindows windows of chaosWindow, or of up to
// chaosMaxWindows while the best is below want.
func chaosThroughput(l *faultLedger, want float64) float64 {
	best := 0.0
	for i := 0; i < chaosWindows || (best < want && i < chaosMaxWindows); i++ {
		acked, begin := l.acked.Load(), time.Now()
		time.Sleep(chaosWindow) // the window
		best = max(best, float64(l.acked.Load()-acked)/time.Since(begin).Seconds())
	}
	return best
}

// check checks the run's invariants beyond the ledger's: nothing in the air
// once idle, the throughput kept, the backend serving again within
// recoveryLimit (+ the scheduling lag measured by lag) after each fault,
// the heap's growth bounded.
func (r *chaosRun) check(t *testing.T, lag *schedLag) {
	t.Helper()
	assert.Zero(t, r.inAir, "Stats().InAir %v after the load halted: calls counted in the air while none is", r.idle)
	assert.GreaterOrEqual(t, r.after, chaosThroughputKept*r.before,
		"acknowledged calls/s after the last fault healed (%.0f) against after the warm-up (%.0f): want at least %.0f%%",
		r.after, r.before, 100*chaosThroughputKept)
	for k, recs := range r.recs {
		for _, rec := range recs {
			assert.Less(t, rec, recoveryLimit+lag.max(),
				"served again after the %s; want less than %v (+ %v of scheduling lag): within about 1s of Redis being healthy",
				r.faults[k].name, recoveryLimit, lag.max())
		}
	}
	growth := int64(r.heapEnd) - int64(r.heapStart)
	assert.Less(t, growth, int64(chaosHeapGrowth), "heap in use grew from %d to %d bytes", r.heapStart, r.heapEnd)
}

// log prints the figures; extra lines follow the faults'.
func (r *chaosRun) log(t *testing.T, what string, lag *schedLag, backend string, extra ...string) {
	t.Helper()
	var all []time.Duration
	var lines []string
	total := 0
	for k, f := range r.faults {
		total += r.struck[k]
		all = append(all, r.recs[k]...)
		p50, most := quantiles(r.recs[k])
		lines = append(lines, fmt.Sprintf("  %-16s %3d, served again after p50 %v, max %v", f.name, r.struck[k], p50, most))
	}
	lines = append(lines, extra...)
	p50, most := quantiles(all)
	growth := int64(r.heapEnd) - int64(r.heapStart)
	t.Logf("%s: %v of faults, %d callers (%d of them checking), seed %d (HAMMERREDIS_CHAOS_SEED replays the schedule)\n"+
		"%s, %.0f calls/s over %v\n%s\n"+
		"throughput: %.0f acknowledged calls/s after the warm-up, %.0f after the last fault (%.0f%%, limit %.0f%%); "+
		"in the air once idle: %d (read %v after the halt)\n"+
		"faults %d, served again after p50 %v, max %v (limit %v + scheduling lag %v):\n%s\n"+
		"backend: %s\n"+
		"heap in use: %.1f MiB at the start, %.1f MiB peak, %.1f MiB at the end (growth %+.1f MiB, limit %d MiB)",
		what, r.faulty.Round(time.Millisecond), chaosCallers, chaosCheckCallers, r.seed,
		r.led.summary(), float64(r.led.calls.Load())/r.ran.Seconds(), r.ran.Round(time.Millisecond), r.checks.summary(),
		r.before, r.after, 100*r.after/r.before, 100*chaosThroughputKept, r.inAir, r.idle.Round(time.Millisecond),
		total, p50, most, recoveryLimit, lag.max().Round(time.Millisecond), strings.Join(lines, "\n"),
		backend,
		mib(r.heapStart), mib(r.heapPeak), mib(r.heapEnd), float64(growth)/(1<<20), chaosHeapGrowth>>20)
}

// TestChaos runs 64 callers against a backend while random faults strike
// one after another: connections cut, reset mid-reply, blackholed or slowed
// past the read timeout, redis-server frozen or killed (and restarted with
// its append-only file, appendfsync always), its scripts flushed, a right
// of the backend's ACL user taken away for a while, and DeleteBuckets run
// through 300k unrelated keys (while the next faults strike). Two of the
// hot ids, hit by many callers at once so that their hits are coalesced,
// have keys that hold a string. 16 of the callers run checks of several
// limits instead (chaos_check_test.go). Each call has a deadline of
// 100-400ms; the callers' account of their hits and checks is checked
// against Redis at the end, with
// the call durations, the time to serve again after each heal, the
// throughput after the last fault against after the warm-up, nothing left
// in the air once idle, goroutine leaks and heap growth.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos runs for seconds: make test runs it, make chaos longer")
	}
	length := chaosLength(t, chaosDefault)
	seed := chaosSeed(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	// The backend authenticates as an ACL user with the minimal rights
	// (internal/testenv), so that a fault may take one away; the default
	// user is the admin.
	// The user's rights are in the arguments, so that they survive a
	// restart: those of Hammer 7's fix windows too (h7Rights).
	srv := redistest.New(t, redistest.Options{AppendOnly: true,
		Args: slices.Concat(testenv.ACLUserArgs(), h7Rights, checkRights)})
	admin, err := srv.Dial()
	require.NoError(t, err)
	testenv.Populate(t, admin, chaosUnrelated)
	counted, refusing, pick := chaosIDs(chaosHitCallers)
	for _, id := range refusing {
		testenv.Do(t, admin, "SET", protocol.Key(testenv.ACLPrefix, hammerredis.BucketKey{Bucket: faultBucket, ID: id}), chaosString)
	}
	admin.Close()

	proxy := newFaultProxy(t, srv.Addr())
	lag := startSchedLag()
	t.Cleanup(lag.halt)
	// The backend's options are the defaults but for those of
	// faultOptions: recovery within 1s must hold with them.
	opts := faultOptions(proxy, hammerredis.Options{KeyPrefix: testenv.ACLPrefix})
	opts.RedisURL = testenv.UserURL("redis", testenv.ACLUser, testenv.ACLPassword, proxy.Addr())
	e := &faultEnv{callers: chaosCallers, pick: pick, srv: srv, proxy: proxy, f: testenv.Start(t, srv, opts),
		led: newFaultLedger(lag, counted...)}
	e.led.refuse(chaosString, refusing...)
	e.checks = newCheckLedger(e.led, e.f.Key)

	// adminDo runs a command as the admin (the default user), past the
	// proxy.
	adminDo := func(cmd string, args ...any) any {
		t.Helper()
		return testenv.SrvDo(t, srv, cmd, args...)
	}
	var disruptions atomic.Int64 // faults that break connections, struck so far
	disrupt := func(f func(rng *rand.Rand, hold time.Duration)) func(*rand.Rand, time.Duration) string {
		return func(rng *rand.Rand, hold time.Duration) string {
			disruptions.Add(1)
			f(rng, hold)
			return faultProbeID
		}
	}
	// takeRight takes right away from the backend's user for hold.
	takeRight := func(right string) func(*rand.Rand, time.Duration) string {
		return func(_ *rand.Rand, hold time.Duration) string {
			e.led.allowRedisErrors()
			adminDo("ACL", "SETUSER", testenv.ACLUser, "-"+right)
			time.Sleep(hold)
			adminDo("ACL", "SETUSER", testenv.ACLUser, "+"+right)
			e.led.disallowRedisErrors()
			return faultProbeID
		}
	}
	dels := &chaosDeletes{b: e.f.B, disruptions: &disruptions}
	faults := []chaosFault{
		{"cut", disrupt(func(*rand.Rand, time.Duration) { proxy.Cut() })},
		{"blackhole", disrupt(func(_ *rand.Rand, hold time.Duration) {
			proxy.SetBlackhole(true)
			time.Sleep(hold)
			proxy.SetBlackhole(false)
		})},
		{"latency", disrupt(func(rng *rand.Rand, hold time.Duration) {
			// A round trip of 100-600ms against a 250ms read timeout.
			proxy.SetLatency(time.Duration(50+rng.IntN(250)) * time.Millisecond)
			time.Sleep(hold)
			proxy.SetLatency(0)
		})},
		{"reset mid-reply", disrupt(func(*rand.Rand, time.Duration) {
			select {
			case <-proxy.ResetNextReply():
			case <-time.After(testenv.WaitLong):
				require.FailNow(t, "no reply went through the proxy")
			}
		})},
		{"SIGKILL+restart", disrupt(func(_ *rand.Rand, hold time.Duration) {
			srv.Kill()
			time.Sleep(hold)
			require.NoError(t, srv.Restart())
		})},
		{"SIGSTOP/SIGCONT", disrupt(func(_ *rand.Rand, hold time.Duration) {
			require.NoError(t, srv.Signal(syscall.SIGSTOP))
			time.Sleep(hold)
			require.NoError(t, srv.Signal(syscall.SIGCONT))
		})},
		{"SCRIPT FLUSH", func(*rand.Rand, time.Duration) string {
			adminDo("SCRIPT", "FLUSH")
			return faultProbeID
		}},
		// A hit fails after its HINCRBY: counted, reported as an error.
		{"ACL -expire", takeRight("expire")},
		// A hit fails before it runs.
		{"ACL -evalsha", takeRight("evalsha")},
		{"DeleteBuckets", func(*rand.Rand, time.Duration) string {
			dels.wait(t)
			id := fmt.Sprint("victim", len(dels.done))
			args := []any{}
			for b := range int64(chaosVictimBuckets) {
				args = append(args, e.f.Key(id, b), 1)
			}
			adminDo("MSET", args...) // strings: DeleteBuckets goes by the name
			dels.start(id)
			return faultProbeID
		}},
	}
	r := &chaosRun{b: e.f.B, led: e.led, checks: e.checks, pick: pick, faults: faults, healed: func() { dels.wait(t) },
		length: length, seed: seed}
	r.run(t)

	admin, err = srv.Dial()
	require.NoError(t, err)
	defer admin.Close()
	deletes := dels.check(t, admin, func(id string, bucket int64) string { return e.f.Key(id, bucket) })
	e.finish(t) // the ledger
	r.check(t, lag)
	r.log(t, "chaos", lag, fmt.Sprintf("%d connects, %d connections lost, %d failed dials, %d pauses of restarts",
		r.st.Connects, r.st.Restarts, r.st.DialFailures, e.f.Log.Count("pausing restarts")), deletes)
}

// chaosDeletes runs TestChaos's DeleteBuckets, one at a time, each in the
// background while the faults go on.
type chaosDeletes struct {
	b           *hammerredis.Backend
	disruptions *atomic.Int64 // faults that break connections, struck so far
	pending     chan chaosDelete
	done        []chaosDelete
}

// chaosDelete is the outcome of a DeleteBuckets.
type chaosDelete struct {
	id        string
	n         int64
	err       error
	took      time.Duration
	disrupted bool // a fault that breaks connections struck while it ran
}

// start runs DeleteBuckets of id in the background.
func (d *chaosDeletes) start(id string) {
	d.pending = make(chan chaosDelete, 1)
	go func(pending chan<- chaosDelete, disruptions int64) {
		begin := time.Now()
		n, err := d.b.DeleteBuckets(context.Background(), id)
		pending <- chaosDelete{id, n, err, time.Since(begin), d.disruptions.Load() != disruptions}
	}(d.pending, d.disruptions.Load())
}

// wait waits for the delete running, if any.
func (d *chaosDeletes) wait(t *testing.T) {
	t.Helper()
	if d.pending == nil {
		return
	}
	select {
	case r := <-d.pending:
		d.done = append(d.done, r)
	case <-time.After(testenv.WaitLong):
		require.FailNow(t, "DeleteBuckets still runs after DeleteBucketsTimeout")
	}
	d.pending = nil
}

// check checks every delete: without an error, every bucket went and the
// count says so; with one, a fault broke connections meanwhile, the error
// says that the outcome is unknown or the time ran out, and the count is
// at most what went. It returns a line for the figures.
func (d *chaosDeletes) check(t *testing.T, admin redis.Conn, key func(id string, bucket int64) string) string {
	t.Helper()
	var took []time.Duration
	var failed []string
	for _, r := range d.done {
		var keys []any
		for b := range int64(chaosVictimBuckets) {
			keys = append(keys, key(r.id, b))
		}
		left, err := redis.Int64(admin.Do("EXISTS", keys...))
		require.NoError(t, err)
		if r.err == nil {
			took = append(took, r.took)
			assert.Equal(t, int64(chaosVictimBuckets), r.n, "DeleteBuckets(%q) = %d, want %d", r.id, r.n, chaosVictimBuckets)
			assert.Zero(t, left, "buckets of %q left after DeleteBuckets", r.id)
			continue
		}
		failed = append(failed, fmt.Sprintf("%d deleted, then %v", r.n, r.err))
		assert.True(t, r.disrupted, "DeleteBuckets(%q) failed with no fault on the connections: %v", r.id, r.err)
		assert.True(t, errors.Is(r.err, hammerredis.ErrTimeout) || errors.Is(r.err, hammerredis.ErrDisconnected) ||
			errors.Is(r.err, hammerredis.ErrClosed), "DeleteBuckets(%q): %v", r.id, r.err)
		assert.LessOrEqual(t, r.n+left, int64(chaosVictimBuckets),
			"DeleteBuckets(%q) = %d, and %d buckets are left of %d", r.id, r.n, left, chaosVictimBuckets)
	}
	p50, most := quantiles(took)
	return fmt.Sprintf("deletes of %d buckets among %d keys: %d complete in p50 %v, max %v; %d cut short by a fault: %q",
		chaosVictimBuckets, chaosUnrelated, len(took), p50, most, len(failed), failed)
}

// TestChaosCluster runs the load of TestChaos against a Redis Cluster of
// three masters while slots holding the hot keys (and hot checks' keys)
// move to another master and back, a master is frozen for a moment, and
// the scripts are flushed; with the same ledgers and checks.
func TestChaosCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos runs for seconds: make test runs it, make chaos longer")
	}
	length := chaosLength(t, chaosClusterDefault)
	seed := chaosSeed(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	// No replicas, and a node timeout far past a freeze: nothing fails over.
	c := redistest.NewCluster(t, redistest.ClusterOptions{ReplicasPerMaster: -1, NodeTimeout: 15 * time.Second})
	masters, err := c.Masters()
	require.NoError(t, err)
	key := func(id string) string {
		return protocol.Key(protocol.DefaultKeyPrefix, hammerredis.BucketKey{Bucket: faultBucket, ID: id})
	}
	masterOf := func(id string) *redistest.Server {
		t.Helper()
		m, err := c.MasterOf(redistest.Slot(key(id)))
		require.NoError(t, err)
		return m
	}
	counted, refusing, pick := chaosIDs(chaosHitCallers)
	// An id on each master, to probe it after its freeze.
	probes := map[*redistest.Server]string{}
	for i := 0; len(probes) < len(masters); i++ {
		id := fmt.Sprint("probe", i)
		if m := masterOf(id); probes[m] == "" {
			probes[m] = id
			counted = append(counted, id)
		}
	}
	do := clusterKeyDo(c)
	for _, id := range refusing {
		_, err := do("SET", key(id), chaosString)
		require.NoError(t, err)
	}
	lag := startSchedLag()
	t.Cleanup(lag.halt)
	led := newFaultLedger(lag, counted...)
	led.refuse(chaosString, refusing...)
	checks := newCheckLedger(led, func(id string, bucket int64) string {
		return protocol.Key(protocol.DefaultKeyPrefix, hammerredis.BucketKey{Bucket: bucket, ID: id})
	})

	log := logtest.New()
	b, err := hammerredis.Start(hammerredis.Options{
		ExpiryMs: 24 * time.Hour.Milliseconds(),
		Cluster:  &hammerredis.ClusterConfig{Addrs: c.Addrs()},
		RedisURL: "redis://127.0.0.1:1", // never the system Redis
		RedisConfig: &hammerredis.RedisConfig{ConnectTimeout: faultIOTimeout, ReadTimeout: faultIOTimeout,
			WriteTimeout: faultIOTimeout},
		HealthCheckInterval: 100 * time.Millisecond,
		Logger:              log.Logger(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { hammerredis.Stop(b) })
	ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitLong)
	defer cancel()
	require.NoError(t, b.WaitConnected(ctx))

	moveSlot := func(slot int, to *redistest.Server) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitLong)
		defer cancel()
		require.NoError(t, c.MoveSlot(ctx, slot, to))
	}
	var moved int
	faults := []chaosFault{
		{"slot migration", func(rng *rand.Rand, hold time.Duration) string {
			hot := chaosHotCounted(counted)
			id := hot[rng.IntN(len(hot))]
			slot := redistest.Slot(key(id))
			from := masterOf(id)
			others := slices.DeleteFunc(slices.Clone(masters), func(m *redistest.Server) bool { return m == from })
			moveSlot(slot, others[rng.IntN(len(others))])
			time.Sleep(hold)
			moveSlot(slot, from)
			moved += 2
			return id
		}},
		{"master frozen", func(rng *rand.Rand, hold time.Duration) string {
			m := masters[rng.IntN(len(masters))]
			require.NoError(t, m.Signal(syscall.SIGSTOP))
			time.Sleep(hold)
			require.NoError(t, m.Signal(syscall.SIGCONT))
			return probes[m]
		}},
		{"SCRIPT FLUSH", func(*rand.Rand, time.Duration) string {
			for _, m := range masters {
				testenv.SrvDo(t, m, "SCRIPT", "FLUSH")
			}
			return faultProbeID
		}},
	}
	r := &chaosRun{b: b, led: led, checks: checks, pick: pick, faults: faults, length: length, seed: seed}
	r.run(t)

	require.NoError(t, hammerredis.Stop(b))
	lag.halt()
	led.check(t, do, key)
	checks.check(t, do)
	r.check(t, lag)
	r.log(t, "chaos on a cluster", lag, fmt.Sprintf("%d slot migrations; %d connects, %d connections lost, %d failed dials",
		moved, r.st.Connects, r.st.Restarts, r.st.DialFailures))
	c.Stop() // before the leak check
}

// clusterKeyDo runs each command on the master of its key's slot, on a
// connection of its own.
func clusterKeyDo(c *redistest.Cluster) keyDo {
	return func(cmd, key string, args ...any) (any, error) {
		m, err := c.MasterOf(redistest.Slot(key))
		if err != nil {
			return nil, err
		}
		conn, err := m.Dial()
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		return conn.Do(cmd, append([]any{key}, args...)...)
	}
}

// quantiles returns the median and the maximum of ds, rounded to the ms.
func quantiles(ds []time.Duration) (p50, most time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Sorted(slices.Values(ds))
	return s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond)
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }
