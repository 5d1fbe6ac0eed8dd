package faults_test

// Fault injection: the backend talks to a private redis-server through a
// faultproxy, and each test injects one fault while callers keep hitting,
// then checks that every call returned by its deadline with an allowed
// result, that no acknowledged hit was lost nor any hit counted twice, and
// that the backend served again soon after the fault healed.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/faultproxy"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/internal/testenv"
	"github.com/hammer-go/hammerredis/protocol"
)

const (
	// faultDeadline is every fault-test call's context deadline.
	faultDeadline = 300 * time.Millisecond
	// faultMargin is how late past its deadline a call may return, on top
	// of the worst scheduling lag measured meanwhile (see schedLag): waking
	// 64 goroutines under -race on two cores, not library waiting.
	faultMargin = 250 * time.Millisecond
	// faultIOTimeout is the backend's connect, read and write timeout, below
	// faultDeadline so that a dead connection is noticed within a call.
	faultIOTimeout = 250 * time.Millisecond
	// recoveryLimit bounds the time from a fault's healing to the first
	// successful call.
	recoveryLimit = time.Second
	// faultBucket is the bucket of every fault-test key.
	faultBucket = 1

	faultProbeID   = "probe"
	closedCallWait = 2 * time.Millisecond // a caller's pause after ErrClosed
)

// faultOptions returns opts with what every fault test needs: the proxy as
// the Redis address, short I/O timeouts, and buckets that outlive the test.
func faultOptions(proxy *faultproxy.Proxy, opts hammerredis.Options) hammerredis.Options {
	opts.RedisURL = "redis://" + proxy.Addr()
	opts.ExpiryMs = 24 * time.Hour.Milliseconds()
	if opts.RedixConfig == nil {
		opts.RedixConfig = &hammerredis.RedisConfig{}
	}
	opts.RedixConfig.ConnectTimeout = faultIOTimeout
	opts.RedixConfig.ReadTimeout = faultIOTimeout
	opts.RedixConfig.WriteTimeout = faultIOTimeout
	if opts.HealthCheckInterval == 0 {
		opts.HealthCheckInterval = 100 * time.Millisecond
	}
	return opts
}

// faultLedger accounts for every hit of a test, key by key: acknowledged (a
// count came back), unknown outcome (ErrDisconnected, ErrTimeout or the
// context's error) and never sent (ErrClosed). Hits on the ids of refuse,
// whose keys hold strings, must all fail with WRONGTYPE (refused). While a
// fault takes an ACL right away (see allowRedisErrors), a hit may also fail
// with ErrRedis: refused (NOPERM for EVALSHA: nothing ran), counted with
// an error (count_hit failed after its HINCRBY), or of unknown outcome.
// It also checks each call's duration and error class.
type faultLedger struct {
	tallies  map[string]*faultTally // by id; fixed once the load starts
	refusing map[string]string      // id -> the string its key holds; fixed likewise

	calls, acked, unknown, neverSent atomic.Int64
	// Hits refused (WRONGTYPE, NOPERM: nothing counted); counted though
	// they failed; ErrRedis of unknown outcome (among unknown).
	wrongType, noPerm, countedErr, redisUnknown atomic.Int64
	overruns, unexpected                        atomic.Int64
	maxTook, maxOverrun                         atomic.Int64 // ns; overrun: took - deadline
	// redisFaults is odd while a fault that makes Redis refuse commands is
	// on: a call that overlaps one may get ErrRedis, after writing or not.
	redisFaults atomic.Int64
	lag         *schedLag
	ack         chan struct{} // a token per acknowledged hit, dropped when full

	mu      sync.Mutex
	samples []string // the first unexpected errors
}

// faultTally is one key's account.
type faultTally struct {
	mu                         sync.Mutex
	acked, countedErr, unknown int64
	counts                     []int64 // the counts returned to acknowledged hits
}

// newFaultLedger returns a ledger for ids and the probe; its overrun check
// allows for the lag measured by lag.
func newFaultLedger(lag *schedLag, ids ...string) *faultLedger {
	l := &faultLedger{tallies: map[string]*faultTally{}, refusing: map[string]string{}, ack: make(chan struct{}, 1),
		lag: lag}
	l.maxOverrun.Store(-int64(time.Hour))
	for _, id := range append(ids, faultProbeID) {
		l.tallies[id] = &faultTally{}
	}
	return l
}

// refuse adds ids whose keys hold the string value (set by the test), so
// that every hit on them must fail with WRONGTYPE and leave the string. It
// must be called before the load starts.
func (l *faultLedger) refuse(value string, ids ...string) {
	for _, id := range ids {
		l.tallies[id] = &faultTally{}
		l.refusing[id] = value
	}
}

// allowRedisErrors marks the start of a fault that takes an ACL right
// away: until disallowRedisErrors, and for every call that overlaps the
// fault, ErrRedis is an outcome, read from its message. The faults never
// take HINCRBY away, so a count_hit script that "can't run" one of its
// commands failed after its HINCRBY: the hit was counted.
func (l *faultLedger) allowRedisErrors() {
	if l.redisFaults.Add(1)%2 != 1 {
		panic("allowRedisErrors twice")
	}
}

// disallowRedisErrors marks the end of the fault of allowRedisErrors, once
// Redis runs the commands again.
func (l *faultLedger) disallowRedisErrors() {
	if l.redisFaults.Add(1)%2 != 0 {
		panic("disallowRedisErrors without allowRedisErrors")
	}
}

// hit counts one hit on id within faultDeadline, records its outcome and
// returns its error.
func (l *faultLedger) hit(b *hammerredis.Backend, id string) error {
	return l.hitWithin(b, id, faultDeadline)
}

// hitWithin is hit with the given deadline.
func (l *faultLedger) hitWithin(b *hammerredis.Backend, id string, deadline time.Duration) error {
	redisFaults := l.redisFaults.Load()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	begin := time.Now()
	var n int64
	var err error
	if h7, ok := strings.CutPrefix(id, h7Mark); ok {
		var r protocol.HitReply
		r, err = b.Hit(ctx, protocol.Hit{Policy: h7Policy, ID: h7, Cost: 1, Now: h7Now})
		n = r.Count
	} else {
		n, err = b.CountHitN(ctx, hammerredis.BucketKey{Bucket: faultBucket, ID: id}, begin.UnixMilli(), 1)
	}
	took := time.Since(begin)
	// During or across a fault that makes Redis refuse commands.
	redisFault := redisFaults%2 == 1 || l.redisFaults.Load() != redisFaults
	l.record(id, n, err, took, deadline, redisFault)
	return err
}

// Ids marked h7Mark are hit as Hammer 7 fix-window hits (protocol.Hit of
// h7Policy, at h7Now), whose counter the ledger checks as it does a
// bucket's count: exactly once per acknowledged hit, whatever the faults.
const (
	h7Mark = "h7:"
	h7Now  = 4_102_444_800_000 // 2100-01-01: the window's key outlives the test
)

var h7Policy = protocol.Policy{Algorithm: protocol.FixWindow, Prefix: testenv.ACLPrefix + "h7", ScaleMs: 60_000, Limit: 1 << 40}

// h7Rights are the ACL rights a backend's user needs for h7 ids besides
// the minimal ones: the fix-window script's commands, and TIME for a
// multi-key run's clock.
var h7Rights = []string{"+incrby", "+pexpireat", "+time"}

// storeMax raises v to x.
func storeMax(v *atomic.Int64, x int64) {
	for {
		old := v.Load()
		if x <= old || v.CompareAndSwap(old, x) {
			return
		}
	}
}

// record accounts for a hit on id that returned n, err after took;
// redisFault says whether the call overlapped a fault that makes Redis
// refuse commands.
func (l *faultLedger) record(id string, n int64, err error, took, deadline time.Duration, redisFault bool) {
	l.calls.Add(1)
	storeMax(&l.maxTook, int64(took))
	storeMax(&l.maxOverrun, int64(took-deadline))
	if took > deadline+faultMargin {
		l.overruns.Add(1) // checked against the lag at the end
	}
	ta := l.tallies[id]
	_, refusing := l.refusing[id]
	closed := errors.Is(err, hammerredis.ErrClosed)
	unknown := errors.Is(err, hammerredis.ErrDisconnected) || errors.Is(err, hammerredis.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
	redisErr := errors.Is(err, hammerredis.ErrRedis)
	ta.mu.Lock()
	defer ta.mu.Unlock()
	switch {
	case err == nil && refusing:
		l.unexpectedErr(id, took, fmt.Errorf("count %d for a key that holds a string, want WRONGTYPE", n))
	case err == nil:
		ta.acked++
		ta.counts = append(ta.counts, n)
		l.acked.Add(1)
		select {
		case l.ack <- struct{}{}:
		default:
		}
	case closed && !unknown:
		l.neverSent.Add(1)
	case refusing && redisErr && strings.Contains(err.Error(), "WRONGTYPE"):
		l.wrongType.Add(1) // nothing counted
	case redisErr && redisFault && strings.Contains(err.Error(), "NOPERM"):
		l.noPerm.Add(1) // the command itself was refused: nothing ran
	case redisErr && redisFault && !refusing && !strings.HasPrefix(id, h7Mark) && strings.Contains(err.Error(), "can't run this command"):
		// The script failed after its HINCRBY: counted once, no count
		// returned (each hit of a coalesced group run again one by one).
		ta.countedErr++
		l.countedErr.Add(1)
	default:
		// Unknown outcome; an unexpected error counts as one too, so the
		// accounting stays conservative, and fails the test.
		ta.unknown++
		l.unknown.Add(1)
		switch {
		case redisErr && redisFault:
			l.redisUnknown.Add(1)
		case !unknown || closed:
			l.unexpectedErr(id, took, err)
		}
	}
}

// unexpectedErr counts a call that returned err, and keeps the first few.
func (l *faultLedger) unexpectedErr(id string, took time.Duration, err error) {
	l.unexpected.Add(1)
	l.mu.Lock()
	if len(l.samples) < 5 {
		l.samples = append(l.samples, fmt.Sprintf("%s after %v: %v", id, took, err))
	}
	l.mu.Unlock()
}

// waitAcked waits until at least n hits have been acknowledged in all.
func (l *faultLedger) waitAcked(t *testing.T, n int64) {
	t.Helper()
	timer := time.NewTimer(testenv.WaitLong)
	defer timer.Stop()
	for l.acked.Load() < n {
		select {
		case <-l.ack:
		case <-timer.C:
			require.FailNow(t, "too few acknowledged hits", "waited %v for %d, got %d", testenv.WaitLong, n, l.acked.Load())
		}
	}
}

// recovery measures how long after healed a hit first succeeds, probing
// with calls bounded by faultDeadline. Redis offers no event for "healthy
// from the client's view", so this polls; a probe that gets ErrClosed,
// which returns at once, waits a little before the next.
func (l *faultLedger) recovery(t *testing.T, b *hammerredis.Backend, healed time.Time) time.Duration {
	t.Helper()
	return l.recoveryOf(t, b, faultProbeID, healed)
}

// recoveryOf is recovery, probing with hits on id.
func (l *faultLedger) recoveryOf(t *testing.T, b *hammerredis.Backend, id string, healed time.Time) time.Duration {
	t.Helper()
	for {
		err := l.hit(b, id)
		if err == nil {
			return time.Since(healed)
		}
		if time.Since(healed) > testenv.WaitLong {
			require.FailNow(t, "the backend did not serve again", "within %v of the heal: %v", testenv.WaitLong, err)
		}
		if errors.Is(err, hammerredis.ErrClosed) {
			time.Sleep(closedCallWait)
		}
	}
}

// keyDo runs a command on key (its first argument) on the server that
// holds it.
type keyDo func(cmd, key string, args ...any) (any, error)

// connKeyDo runs the commands on conn.
func connKeyDo(conn redis.Conn) keyDo {
	return func(cmd, key string, args ...any) (any, error) {
		return conn.Do(cmd, append([]any{key}, args...)...)
	}
}

// check reads every key's final count and checks the ledger: acked +
// countedErr <= final <= acked + countedErr + unknown, so that no hit is
// lost nor counted twice; acknowledged counts distinct and at most final, the
// keys of refuse still holding their strings, every call back by its
// deadline plus faultMargin plus the scheduling lag, no unexpected error.
// key returns the Redis key of an id's bucket.
func (l *faultLedger) check(t *testing.T, do keyDo, key func(id string) string) {
	t.Helper()
	ids := make([]string, 0, len(l.tallies))
	for id := range l.tallies {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ta := l.tallies[id]
		if want, ok := l.refusing[id]; ok {
			v, err := redis.String(do("GET", key(id)))
			require.NoError(t, err, "GET %q", key(id))
			assert.Equal(t, want, v, "key %q holds its string still", key(id))
			continue
		}
		var final int64
		var err error
		if h7, ok := strings.CutPrefix(id, h7Mark); ok {
			final, err = redis.Int64(do("GET", h7Policy.Key(h7, h7Now)))
		} else {
			final, err = redis.Int64(do("HGET", key(id), "count"))
		}
		if errors.Is(err, redis.ErrNil) {
			final, err = 0, nil
		}
		require.NoError(t, err, "HGET count of %q", id)
		counted := ta.acked + ta.countedErr
		assert.True(t, counted <= final && final <= counted+ta.unknown,
			"key %q: final count %d, acknowledged %d, counted with an error %d, unknown outcome %d; "+
				"want acked+counted <= final <= acked+counted+unknown", id, final, ta.acked, ta.countedErr, ta.unknown)
		counts := slices.Clone(ta.counts)
		slices.Sort(counts)
		for i := 1; i < len(counts); i++ {
			if !assert.NotEqual(t, counts[i-1], counts[i], "key %q: a count returned to two acknowledged hits", id) {
				break
			}
		}
		if len(counts) > 0 {
			assert.LessOrEqual(t, counts[len(counts)-1], final,
				"key %q: the highest count acknowledged against the final count: hits were lost", id)
		}
	}
	late := time.Duration(l.maxOverrun.Load())
	assert.LessOrEqual(t, late, faultMargin+l.lag.max(),
		"%d calls returned more than %v after their deadline, the latest by %v, while the scheduling lag was at most %v",
		l.overruns.Load(), faultMargin, late, l.lag.max())
	assert.Zero(t, l.unexpected.Load(),
		"calls that returned an error other than ErrClosed, ErrDisconnected, ErrTimeout or the context's "+
			"(or ErrRedis WRONGTYPE on a key that holds a string, or ErrRedis while an ACL right was taken away) "+
			"or succeeded on a key that holds a string; first: %q", l.samples)
}

// summary describes the ledger's figures.
func (l *faultLedger) summary() string {
	var counted, unknown, refused string
	if n := l.countedErr.Load(); n > 0 {
		counted = fmt.Sprintf(", counted but failed (ErrRedis after HINCRBY) %d", n)
	}
	if n := l.redisUnknown.Load(); n > 0 {
		unknown = fmt.Sprintf(" (%d of them ErrRedis)", n)
	}
	if len(l.refusing) > 0 || l.noPerm.Load() > 0 {
		refused = fmt.Sprintf(", refused (WRONGTYPE %d, NOPERM %d)", l.wrongType.Load(), l.noPerm.Load())
	}
	return fmt.Sprintf("calls %d: acknowledged %d%s, unknown outcome %d%s%s, never sent %d; slowest call %v, "+
		"latest past its deadline by %v (margin %v + scheduling lag %v), %d past it by more than the margin",
		l.calls.Load(), l.acked.Load(), counted, l.unknown.Load(), unknown, refused, l.neverSent.Load(),
		time.Duration(l.maxTook.Load()).Round(time.Millisecond),
		max(0, time.Duration(l.maxOverrun.Load())).Round(time.Millisecond), faultMargin,
		l.lag.max().Round(time.Millisecond), l.overruns.Load())
}

// faultLoad is callers goroutines hitting until stopped.
type faultLoad struct {
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

// startLoad starts callers goroutines that hit until stop; caller i hits
// ids(i, j) on its j-th call, within deadline(i) (faultDeadline when nil).
func startLoad(b *hammerredis.Backend, l *faultLedger, callers int, ids func(i, j int) string,
	deadline func(i int) time.Duration) *faultLoad {
	if deadline == nil {
		deadline = func(int) time.Duration { return faultDeadline }
	}
	ld := &faultLoad{stop: make(chan struct{})}
	for i := range callers {
		ld.wg.Add(1)
		go func() {
			defer ld.wg.Done()
			for j := 0; ; j++ {
				select {
				case <-ld.stop:
					return
				default:
				}
				if errors.Is(l.hitWithin(b, ids(i, j), deadline(i)), hammerredis.ErrClosed) {
					time.Sleep(closedCallWait) // not connected: do not spin
				}
			}
		}()
	}
	return ld
}

// halt stops the callers and waits for them. It is idempotent.
func (ld *faultLoad) halt() {
	ld.once.Do(func() { close(ld.stop) })
	ld.wg.Wait()
}

// faultEnv is a backend connected to a private redis-server through a
// fault proxy, with a ledger for its hits.
type faultEnv struct {
	callers int
	pick    func(i, j int) string // caller i's id on its j-th call
	srv     *redistest.Server
	proxy   *faultproxy.Proxy
	f       *testenv.Fixture
	led     *faultLedger
	checks  *checkLedger // when set, finish checks it too
	recs    []faultRecovery
}

// faultRecovery is how soon the backend served again after a fault healed.
type faultRecovery struct {
	what string
	took time.Duration
}

// faultIDs are the keys of the fault tests' load: 4 shared by every caller
// (so that hits are coalesced), and one per caller.
func faultIDs(callers int) (ids []string, pick func(i, j int) string) {
	for i := range 4 {
		ids = append(ids, fmt.Sprint("shared", i))
	}
	for i := range callers {
		ids = append(ids, fmt.Sprint("caller", i))
	}
	return ids, func(i, j int) string {
		if j%2 == 0 {
			return ids[(i+j/2)%4]
		}
		return ids[4+i]
	}
}

// newFaultProxy starts a fault proxy to addr, closed when the test ends.
func newFaultProxy(t *testing.T, addr string) *faultproxy.Proxy {
	t.Helper()
	proxy, err := faultproxy.New(addr)
	require.NoError(t, err)
	t.Cleanup(func() { proxy.Close() })
	return proxy
}

// faultCallers is the load of each fault test.
const faultCallers = 16

// newFaultEnv starts a redis-server with srvOpts, a proxy to it and a
// backend with opts through the proxy, and a ledger for the ids of callers
// callers.
func newFaultEnv(t *testing.T, callers int, srvOpts redistest.Options, opts hammerredis.Options) *faultEnv {
	t.Helper()
	srv := redistest.New(t, srvOpts)
	proxy := newFaultProxy(t, srv.Addr())
	lag := startSchedLag()
	t.Cleanup(lag.halt)
	ids, pick := faultIDs(callers)
	return &faultEnv{callers: callers, pick: pick, srv: srv, proxy: proxy, f: testenv.Start(t, srv, faultOptions(proxy, opts)),
		led: newFaultLedger(lag, ids...)}
}

// load starts the callers, each call within deadline(caller) (nil:
// faultDeadline), and waits until they have hits acknowledged, so that a
// fault strikes while calls are in the air.
func (e *faultEnv) load(t *testing.T, deadline func(i int) time.Duration) *faultLoad {
	t.Helper()
	ld := startLoad(e.f.B, e.led, e.callers, e.pick, deadline)
	t.Cleanup(ld.halt) // before the backend stops, should the test fail early
	e.led.waitAcked(t, e.led.acked.Load()+100)
	return ld
}

// finish stops the backend and the proxy, checks the ledger against the
// server's counts and stops the server, so that a goroutine leak check may
// follow.
func (e *faultEnv) finish(t *testing.T) {
	t.Helper()
	require.NoError(t, hammerredis.Stop(e.f.B))
	e.proxy.Close()
	admin, err := e.srv.Dial() // the fixture's may have died with the server
	require.NoError(t, err)
	defer admin.Close()
	e.led.lag.halt()
	e.led.check(t, connKeyDo(admin), func(id string) string { return e.f.Key(id, faultBucket) })
	if e.checks != nil {
		e.checks.check(t, connKeyDo(admin))
	}
	for _, r := range e.recs {
		assert.Less(t, r.took, recoveryLimit+e.led.lag.max(),
			"served again after the %s; want less than %v (+ %v of scheduling lag): within about 1s of Redis being healthy",
			r.what, recoveryLimit, e.led.lag.max())
	}
	t.Log(e.led.summary())
	e.srv.Stop()
}

// recovered measures how soon the backend serves again after the fault
// what healed at healed, for finish to check.
func (e *faultEnv) recovered(t *testing.T, what string, healed time.Time) time.Duration {
	t.Helper()
	rec := e.led.recovery(t, e.f.B, healed)
	e.recs = append(e.recs, faultRecovery{what, rec})
	return rec
}

// healed is recovered, logged.
func (e *faultEnv) healed(t *testing.T, what string, healed time.Time) {
	t.Helper()
	t.Logf("served again %v after the %s", e.recovered(t, what, healed).Round(time.Millisecond), what)
}

// waitLost waits until the backend lost a connection since before.
func (e *faultEnv) waitLost(t *testing.T, before hammerredis.Stats) {
	t.Helper()
	testenv.WaitRestarts(t, e.f.B, before.Restarts+1)
}

// waitDialFailed waits until a connection attempt failed since before.
func (e *faultEnv) waitDialFailed(t *testing.T, before hammerredis.Stats) {
	t.Helper()
	testenv.WaitDialFailures(t, e.f.B, before.DialFailures+1)
}

// TestFaultRecoveryAfterRepeatedCutsWithDefaultBackoff cuts the connection
// six times in a row with Redis healthy throughout: with the default
// MaxBackoff (1s) the backend must serve again within 1s every time. (It
// once did not: suture paused restarts after the sixth failure.)
func TestFaultRecoveryAfterRepeatedCutsWithDefaultBackoff(t *testing.T) {
	if testing.Short() {
		t.Skip("a fault test takes seconds: make test runs it")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e := newFaultEnv(t, faultCallers, redistest.Options{}, hammerredis.Options{})
	var worst time.Duration
	for i := range 6 {
		before := e.f.B.Stats()
		require.Equal(t, 1, e.proxy.Cut())
		cut := time.Now()
		rec := e.led.recovery(t, e.f.B, cut)
		t.Logf("cut %d: served again after %v", i+1, rec.Round(time.Millisecond))
		worst = max(worst, rec)
		testenv.WaitConnects(t, e.f.B, before.Connects+1)
	}
	assert.Less(t, worst, time.Second, "served again within 1s of a cut, Redis healthy all along; paused restarts: %d",
		e.f.Log.Count("pausing restarts"))
	e.finish(t)
}

// underLoad starts the callers, strikes a fault with fault, which waits
// until the backend noticed it (its Stats were before), heals it and returns
// when it healed; then checks that the backend served again soon after and
// the callers are served too, halts them and finishes.
func (e *faultEnv) underLoad(t *testing.T, what string, fault func(before hammerredis.Stats) (healed time.Time)) {
	t.Helper()
	ld := e.load(t, nil)
	healed := fault(e.f.B.Stats())
	e.healed(t, what, healed)
	e.led.waitAcked(t, e.led.acked.Load()+100) // the callers are served too
	ld.halt()
	e.finish(t)
}

func TestFaultCutEveryConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("a fault test takes seconds: make test runs it")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e := newFaultEnv(t, faultCallers, redistest.Options{}, hammerredis.Options{})
	e.underLoad(t, "cut", func(before hammerredis.Stats) time.Time {
		require.Equal(t, 1, e.proxy.Cut(), "the backend's one connection")
		cut := time.Now()
		e.waitLost(t, before)
		return cut
	})
}

func TestFaultBlackhole(t *testing.T) {
	if testing.Short() {
		t.Skip("a fault test takes seconds: make test runs it")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e := newFaultEnv(t, faultCallers, redistest.Options{}, hammerredis.Options{})
	e.underLoad(t, "blackhole", func(before hammerredis.Stats) time.Time {
		e.proxy.SetBlackhole(true)
		// The read timeout ends the connection; a redial, accepted but
		// never answered, fails too.
		e.waitLost(t, before)
		e.waitDialFailed(t, before)
		e.proxy.SetBlackhole(false)
		return time.Now()
	})
}

func TestFaultLatencyBeyondReadTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("a fault test takes seconds: make test runs it")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e := newFaultEnv(t, faultCallers, redistest.Options{}, hammerredis.Options{})
	e.underLoad(t, "latency", func(before hammerredis.Stats) time.Time {
		e.proxy.SetLatency(faultIOTimeout) // a round trip takes twice that
		e.waitLost(t, before)
		e.waitDialFailed(t, before)
		e.proxy.SetLatency(0)
		return time.Now()
	})
}

func TestFaultResetMidReply(t *testing.T) {
	if testing.Short() {
		t.Skip("a fault test takes seconds: make test runs it")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	// No health check: its PING must not be the reply that is reset.
	e := newFaultEnv(t, faultCallers, redistest.Options{}, hammerredis.Options{HealthCheckInterval: -1})
	for range 3 {
		require.NoError(t, e.led.hit(e.f.B, "shared0"))
	}
	// A lone hit whose reply is cut in the middle: it ran in Redis, the
	// caller cannot know, and it is not sent again.
	done := e.proxy.ResetNextReply()
	err := e.led.hit(e.f.B, "shared0")
	assert.ErrorIs(t, err, hammerredis.ErrDisconnected)
	<-done
	e.healed(t, "reset of a lone call", time.Now())
	assert.Equal(t, "4", fmt.Sprintf("%s", testenv.Do(t, e.f.Admin, "HGET", e.f.Key("shared0", faultBucket), "count")),
		"3 acknowledged hits and the one reset mid-reply, counted once")

	// The same under load.
	e.underLoad(t, "reset under load", func(before hammerredis.Stats) time.Time {
		select {
		case <-e.proxy.ResetNextReply():
		case <-time.After(testenv.WaitLong):
			require.FailNow(t, "no reply went through the proxy")
		}
		reset := time.Now()
		e.waitLost(t, before)
		return reset
	})
}

func TestFaultSIGKILLWithAppendFsyncAlways(t *testing.T) {
	if testing.Short() {
		t.Skip("a fault test takes seconds: make test runs it")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e := newFaultEnv(t, faultCallers, redistest.Options{AppendOnly: true}, hammerredis.Options{})
	// finish checks that every acknowledged hit survived the SIGKILL.
	e.underLoad(t, "SIGKILL and restart", func(before hammerredis.Stats) time.Time {
		e.srv.Kill()
		e.waitLost(t, before)
		require.NoError(t, e.srv.Restart()) // reloads the append-only file
		return time.Now()
	})
}

func TestFaultSIGSTOPThenSIGCONT(t *testing.T) {
	if testing.Short() {
		t.Skip("a fault test takes seconds: make test runs it")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e := newFaultEnv(t, faultCallers, redistest.Options{}, hammerredis.Options{})
	e.underLoad(t, "SIGSTOP and SIGCONT", func(before hammerredis.Stats) time.Time {
		require.NoError(t, e.srv.Signal(syscall.SIGSTOP))
		e.waitLost(t, before)
		e.waitDialFailed(t, before)
		require.NoError(t, e.srv.Signal(syscall.SIGCONT))
		return time.Now()
	})
}

// schedLag measures the process's own scheduling delay: how late a
// goroutine wakes from a short sleep, the worst over its run. CPU taken by
// other processes or a GC pause delays every goroutine alike; the
// call-duration check allows for it, so that it stays strict on a quiet
// machine and does not fail on a busy one.
type schedLag struct {
	worst atomic.Int64 // ns
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// schedTick is the canary's sleep.
const schedTick = 5 * time.Millisecond

func startSchedLag() *schedLag {
	s := &schedLag{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			begin := time.Now()
			select {
			case <-s.stop:
				return
			case <-time.After(schedTick):
			}
			storeMax(&s.worst, int64(time.Since(begin)-schedTick))
		}
	}()
	return s
}

// max returns the worst lag so far.
func (s *schedLag) max() time.Duration { return time.Duration(s.worst.Load()) }

// halt stops the measurement. It is idempotent.
func (s *schedLag) halt() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}
