package hammerredis_test

// Lifecycle: Start, StartLink, a Backend added to a suture tree, Stop; the
// first call; reconnects, timeouts and calls that never reach Redis.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/thejerf/suture/v4"
	"go.uber.org/goleak"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/faultproxy"
	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/internal/testenv"
	"github.com/hammer-go/hammerredis/protocol"
)

// TestBadInputCancelledContexts calls with a context that is already
// cancelled, or whose deadline has passed, many times over: each call gets
// the context's error at once, and none reaches Redis (the key is never
// written, the bucket to delete stays).
func TestBadInputCancelledContexts(t *testing.T) {
	f := start(t, nil, hammerredis.Options{CallTimeout: time.Hour})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()

	hitKey := hammerredis.BucketKey{Bucket: 1, ID: "ctx-hit"}
	keep := hammerredis.BucketKey{Bucket: 1, ID: "ctx-keep"}

	for _, tt := range []struct {
		name  string
		ctx   context.Context
		call  string
		tries int
		run   func(ctx context.Context) error
		want  []error // the error matches each
		not   error   // and not this one
	}{
		{"CountHit, cancelled", cancelled, "CountHit(ctx-hit)", 20000,
			func(ctx context.Context) error { _, err := f.B.CountHit(ctx, hitKey, 1); return err },
			[]error{context.Canceled}, hammerredis.ErrTimeout},
		{"CountHit, deadline passed", expired, "CountHit(ctx-hit)", 20000,
			func(ctx context.Context) error { _, err := f.B.CountHit(ctx, hitKey, 1); return err },
			[]error{hammerredis.ErrTimeout, context.DeadlineExceeded}, context.Canceled},
		{"GetBucket, cancelled", cancelled, "GetBucket(ctx-keep)", 2000,
			func(ctx context.Context) error { _, err := f.B.GetBucket(ctx, keep); return err },
			[]error{context.Canceled}, hammerredis.ErrTimeout},
		{"DeleteBuckets, cancelled", cancelled, "DeleteBuckets(ctx-keep)", 5000,
			func(ctx context.Context) error { _, err := f.B.DeleteBuckets(ctx, keep.ID); return err },
			[]error{context.Canceled}, hammerredis.ErrTimeout},
		{"DeleteBuckets, deadline passed", expired, "DeleteBuckets(ctx-keep)", 5000,
			func(ctx context.Context) error { _, err := f.B.DeleteBuckets(ctx, keep.ID); return err },
			[]error{hammerredis.ErrTimeout, context.DeadlineExceeded}, context.Canceled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			keepKey := protocol.Key(f.Prefix, keep)
			testenv.Do(t, f.Admin, "DEL", keepKey)
			testenv.Do(t, f.Admin, "HSET", keepKey, "count", 1, "created", 1, "updated", 1)
			begin := time.Now()
			wrong, example := 0, error(nil)
			for range tt.tries {
				err := tt.run(tt.ctx)
				ok := !errors.Is(err, tt.not)
				for _, want := range tt.want {
					ok = ok && errors.Is(err, want)
				}
				if !ok {
					wrong, example = wrong+1, err
				}
			}
			assert.Zero(t, wrong, "of %d calls: %s = %v, want an error matching %q, not %q",
				tt.tries, tt.call, example, tt.want, tt.not)
			t.Logf("%d calls in %v", tt.tries, time.Since(begin))
			if h := badHash(t, f.Admin, protocol.Key(f.Prefix, hitKey)); !assert.Empty(t, h,
				"after %d calls of %s with a done context, HGETALL %s: calls whose context was done before they began "+
					"reached Redis", tt.tries, tt.call, hitKey.ID) {
				testenv.Do(t, f.Admin, "DEL", protocol.Key(f.Prefix, hitKey))
			}
			assert.Equal(t, strings.Join(badFields(1, 1, 1), " "), strings.Join(badHash(t, f.Admin, keepKey), " "),
				"after %d calls of %s with a done context, the bucket of ctx-keep is intact", tt.tries, tt.call)
			n, err := f.B.CountHit(context.Background(), hammerredis.BucketKey{Bucket: 2, ID: tt.name}, 1)
			if assert.NoError(t, err, "then CountHit") {
				assert.Equal(t, int64(1), n, "then CountHit")
			}
		})
	}
}

// TestBadInputAfterStop: every call after Stop is ErrStopped and touches
// nothing; Stop is idempotent, also concurrently, and on nil.
func TestBadInputAfterStop(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	ctx := context.Background()
	key := hammerredis.BucketKey{Bucket: 1, ID: "stopped"}
	_, err := f.B.CountHit(ctx, key, 1)
	require.NoError(t, err)

	var stops sync.WaitGroup
	stopErrs := make([]error, 3)
	for i := range stopErrs {
		stops.Add(1)
		go func() { defer stops.Done(); stopErrs[i] = hammerredis.Stop(f.B) }()
	}
	stops.Wait()
	for i, err := range stopErrs {
		assert.NoError(t, err, "concurrent Stop #%d", i)
	}

	for _, tt := range []struct {
		call string
		run  func() error
		want error
	}{
		{"CountHit", func() error { _, err := f.B.CountHit(ctx, key, 2); return err }, hammerredis.ErrStopped},
		{"CountHitN(5)", func() error { _, err := f.B.CountHitN(ctx, key, 2, 5); return err }, hammerredis.ErrStopped},
		{"GetBucket", func() error { _, err := f.B.GetBucket(ctx, key); return err }, hammerredis.ErrStopped},
		{"DeleteBuckets", func() error { _, err := f.B.DeleteBuckets(ctx, key.ID); return err }, hammerredis.ErrStopped},
		{"WaitConnected", func() error { return f.B.WaitConnected(ctx) }, hammerredis.ErrStopped},
		{"Stop again", func() error { return hammerredis.Stop(f.B) }, nil},
		{"Stop(nil)", func() error { return hammerredis.Stop(nil) }, nil},
	} {
		if tt.want == nil {
			assert.NoError(t, tt.run(), "after Stop: %s", tt.call)
		} else {
			assert.ErrorIs(t, tt.run(), tt.want, "after Stop: %s", tt.call)
		}
	}
	assert.False(t, f.B.Connected(), "after Stop: Connected()")
	assert.Equal(t, strings.Join(badFields(1, 1, 1), " "), strings.Join(badHash(t, f.Admin, f.Key(key.ID, key.Bucket)), " "),
		"after Stop and calls: HGETALL, the bucket as it was")

	// A backend that never ran stops too.
	b, err := hammerredis.New(hammerredis.Options{ExpiryMs: 1000, RedisURL: redisURL, KeyPrefix: f.Prefix})
	require.NoError(t, err)
	assert.NoError(t, hammerredis.Stop(b), "Stop(New(...))")
	_, err = b.CountHit(ctx, key, 3)
	assert.ErrorIs(t, err, hammerredis.ErrStopped, "CountHit after Stop(New(...))")
}

// TestStopRacingCallsLosesNoHit: callers hit their own ids while Stop runs
// (three times, concurrently). Every call ends with a count or a clear
// error (ErrDisconnected, ErrClosed, ErrStopped); every Stop returns nil;
// every hit acknowledged is in Redis, and Redis holds no hit that was not
// acknowledged or reported as of unknown outcome; no goroutine is left.
func TestStopRacingCallsLosesNoHit(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f := start(t, nil, hammerredis.Options{})
	const callers = 16
	type tally struct{ ok, unknown, last int64 }
	tallies := make([]tally, callers)
	var warm atomic.Int64
	warmed := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := hammerredis.BucketKey{Bucket: 1, ID: fmt.Sprint("racer", i)}
			for j := 0; ; j++ {
				n, err := f.B.CountHit(context.Background(), key, 1)
				switch {
				case err == nil:
					tallies[i].ok++
					tallies[i].last = n
				case errors.Is(err, hammerredis.ErrDisconnected):
					tallies[i].unknown++
				case errors.Is(err, hammerredis.ErrClosed): // not sent
				case errors.Is(err, hammerredis.ErrStopped):
					return
				default:
					assert.Fail(t, "a call during Stop failed otherwise than with ErrDisconnected, ErrClosed or ErrStopped",
						"caller %d: CountHit = %v", i, err)
					return
				}
				if j == 20 && warm.Add(1) == callers {
					close(warmed)
				}
			}
		}()
	}
	select {
	case <-warmed:
	case <-time.After(testenv.WaitLong):
		require.FailNow(t, "the callers never made 20 calls each")
	}
	var stops sync.WaitGroup
	for range 3 {
		stops.Add(1)
		go func() {
			defer stops.Done()
			assert.NoError(t, hammerredis.Stop(f.B), "Stop")
		}()
	}
	stops.Wait()
	wg.Wait()
	for i, c := range tallies {
		t.Logf("caller %d: %d hits acknowledged, %d of unknown outcome", i, c.ok, c.unknown)
		stored, err := redis.Int64(f.Admin.Do("HGET", f.Key(fmt.Sprint("racer", i), 1), "count"))
		require.NoError(t, err)
		assert.True(t, c.ok <= stored && stored <= c.ok+c.unknown && c.last <= stored,
			"caller %d: Redis counts %d hits; acknowledged %d (the last with count %d), %d of unknown outcome",
			i, stored, c.ok, c.last, c.unknown)
	}
}

// badDialsWithin is the most dial attempts a backend can start within d:
// the first at once, then, after n failures, a wait of MinBackoff doubled
// n-1 times, capped at MaxBackoff, less at most a fifth of it as jitter
// (server.backoff). With 50ms and 1s the shortest waits are 40, 80, 160,
// 320, 640, 800, 800... ms, so attempts start at the earliest at 0, 40,
// 120, 280, 600, 1240, 2040... ms: at most 6 within 2 s.
func badDialsWithin(d, minBackoff, maxBackoff time.Duration) int {
	attempts, at, wait := 1, time.Duration(0), minBackoff
	for {
		at += wait - wait/5
		if at > d {
			return attempts
		}
		attempts++
		wait = min(2*wait, maxBackoff)
	}
}

var badConnsRe = regexp.MustCompile(`total_connections_received:(\d+)`)

// badConnections returns how many connections the server has accepted.
func badConnections(t *testing.T, admin redis.Conn) int {
	t.Helper()
	info, err := redis.String(admin.Do("INFO", "stats"))
	require.NoError(t, err)
	m := badConnsRe.FindStringSubmatch(info)
	require.NotNil(t, m, "INFO stats without total_connections_received")
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}

// TestWrongPasswordBacksOff: with a wrong password, calls fail at once with
// ErrClosed saying WRONGPASS; the backend keeps retrying, backing off (no
// busy loop: the dial attempts that the log and the server count stay
// within the backoff schedule's bound); and the password shows nowhere.
func TestWrongPasswordBacksOff(t *testing.T) {
	if testing.Short() {
		t.Skip("waits through seconds of backoff: make test runs it")
	}
	const secret, wrong = "right-Zq9-secret", "wrong-Kk7-secret"
	const minBackoff, maxBackoff = 50 * time.Millisecond, time.Second
	const window = 2 * time.Second
	srv := redistest.New(t, redistest.Options{Args: []string{"--requirepass", secret}})
	admin := srv.Conn(t, redis.DialPassword(secret))
	rec := logtest.New()
	opts := hammerredis.Options{ExpiryMs: 60_000, RedisURL: "redis://:" + wrong + "@" + srv.Addr(),
		KeyPrefix: testenv.Prefix(t), Logger: rec.Logger(), CallTimeout: time.Hour,
		MinBackoff: minBackoff, MaxBackoff: maxBackoff}

	conns0 := badConnections(t, admin)
	begin := time.Now()
	b, err := hammerredis.Start(opts)
	require.NoError(t, err, "a wrong password is not an error at Start: Redis may be down")
	t.Cleanup(func() { hammerredis.Stop(b) })

	dialFailures := func(n uint64) {
		t.Helper()
		testenv.WaitUntil(t, fmt.Sprint(n, " failed connection attempts"), func() bool { return b.Stats().DialFailures >= n })
	}
	dialFailures(1)
	callBegin := time.Now()
	_, err = b.CountHit(context.Background(), hammerredis.BucketKey{Bucket: 1, ID: "pw"}, 1)
	assert.LessOrEqual(t, time.Since(callBegin), time.Second, "CountHit with a wrong password fails at once")
	if assert.ErrorIs(t, err, hammerredis.ErrClosed, "CountHit with a wrong password") {
		assert.Contains(t, err.Error(), "WRONGPASS", "CountHit with a wrong password")
	}

	dialFailures(3)                           // it retries,
	time.Sleep(time.Until(begin.Add(window))) // but how often? Watch for a while.
	logged := rec.Count("cannot connect to redis")
	dialed := badConnections(t, admin) - conns0
	elapsed := time.Since(begin)
	bound := badDialsWithin(elapsed, minBackoff, maxBackoff)
	t.Logf("in %v: %d dial failures logged, %d connections accepted; the backoff allows at most %d",
		elapsed.Round(time.Millisecond), logged, dialed, bound)
	assert.LessOrEqual(t, logged, bound, "dial failures logged in %v with MinBackoff %v, MaxBackoff %v",
		elapsed, minBackoff, maxBackoff)
	assert.LessOrEqual(t, dialed, bound, "connections accepted in %v with MinBackoff %v, MaxBackoff %v",
		elapsed, minBackoff, maxBackoff)
	st := b.Stats()
	assert.False(t, st.Connected, "Stats().Connected")
	assert.Zero(t, st.Connects, "Stats().Connects")
	assert.GreaterOrEqual(t, st.DialFailures, uint64(logged), "Stats().DialFailures counts every failure logged")
	for _, s := range []string{err.Error(), rec.String(), b.String(), fmt.Sprint(opts), fmt.Sprintf("%#v", opts)} {
		assert.NotContains(t, s, wrong, "a password shows")
		assert.NotContains(t, s, secret, "a password shows")
	}
}

var clientIDRe = regexp.MustCompile(`id=(\d+) `)

// clientLine returns the CLIENT LIST line of the connection named name, or "".
func clientLine(t *testing.T, admin redis.Conn, name string) string {
	t.Helper()
	list, err := redis.String(admin.Do("CLIENT", "LIST"))
	require.NoError(t, err)
	for _, l := range strings.Split(list, "\n") {
		if strings.Contains(l, " name="+name+" ") {
			return l
		}
	}
	return ""
}

// killClient kills the connection named name with CLIENT KILL ID.
func killClient(t *testing.T, admin redis.Conn, name string) {
	t.Helper()
	line := clientLine(t, admin, name)
	m := clientIDRe.FindStringSubmatch(line)
	require.NotNil(t, m, "no client named %q", name)
	testenv.Do(t, admin, "CLIENT", "KILL", "ID", m[1])
}

// waitClient polls CLIENT LIST until the client named name matches ok. Redis
// offers no event for a client's state, so this is the one poll of the tests.
func waitClient(t *testing.T, admin redis.Conn, name string, ok func(line string) bool) {
	t.Helper()
	deadline := time.Now().Add(testenv.WaitLong)
	for !ok(clientLine(t, admin, name)) {
		if time.Now().After(deadline) {
			require.FailNow(t, "a client never reached the awaited state", "client %q: %q", name, clientLine(t, admin, name))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestStartWhileRedisDownThenRecover(t *testing.T) {
	srv := redistest.New(t)
	srv.Kill() // a port nobody listens on, until Restart
	f := startNoWait(t, srv, hammerredis.Options{CallTimeout: time.Hour})

	ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitLong)
	defer cancel()
	// A call that waited would get ErrTimeout; ErrClosed means it did not.
	_, err := f.B.CountHit(ctx, hammerredis.BucketKey{ID: "down"}, 1)
	require.ErrorIs(t, err, hammerredis.ErrClosed)
	testenv.WaitDialFailures(t, f.B, 2) // retried
	_, err = f.B.CountHit(ctx, hammerredis.BucketKey{ID: "down"}, 1)
	require.ErrorIs(t, err, hammerredis.ErrClosed)
	assert.ErrorContains(t, err, "connection refused", "ErrClosed says why")

	require.NoError(t, srv.Restart())
	up := time.Now()
	testenv.WaitConnects(t, f.B, 1)
	recovery := time.Since(up)
	t.Logf("connected %v after redis-server was ready", recovery)
	assert.Less(t, recovery, 3*time.Second, "with MaxBackoff 1s, the backend redials within about a second")
	assert.Equal(t, int64(1), hit(t, f.B, "down"))
}

func TestReconnectAfterRedisRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("waits through seconds of backoff: make test runs it")
	}
	srv := redistest.New(t)
	f := start(t, srv, hammerredis.Options{})
	assert.Equal(t, int64(1), hit(t, f.B, "r"))

	require.NoError(t, srv.Restart()) // SIGKILL, then a new process
	testenv.WaitConnects(t, f.B, 2)
	assert.Equal(t, int64(1), hit(t, f.B, "r"), "a fresh server: the data is gone, the backend is back")
	assert.GreaterOrEqual(t, f.B.Stats().Restarts, uint64(1), "the connection was lost")
	assert.GreaterOrEqual(t, f.Log.Count("service ended"), 1, "the supervisor logged the restart:\n%s", f.Log)
	st := f.B.Stats()
	assert.True(t, st.Connected)
	assert.GreaterOrEqual(t, st.Restarts, uint64(1))
	assert.GreaterOrEqual(t, st.Connects, uint64(2))
	assert.Equal(t, uint64(2), st.Calls.CountHit)
	assert.Equal(t, uint64(0), st.Errors.Total())
}

func TestRequestInFlightGetsErrDisconnectedAndIsNotResent(t *testing.T) {
	srv := redistest.New(t)
	f := start(t, srv, hammerredis.Options{RedixConfig: named("inflight")})
	assert.Equal(t, int64(1), hit(t, f.B, "f"))

	// Hold write commands in Redis, so the next hit stays in flight.
	testenv.Do(t, f.Admin, "CLIENT", "PAUSE", 20000, "WRITE")
	errc := make(chan error, 1)
	go func() {
		_, err := f.B.CountHit(context.Background(), hammerredis.BucketKey{Bucket: 1, ID: "f"}, 2)
		errc <- err
	}()
	waitClient(t, f.Admin, "inflight", func(l string) bool { return strings.Contains(l, " flags=b ") })
	killClient(t, f.Admin, "inflight")
	err := <-errc
	assert.ErrorIs(t, err, hammerredis.ErrDisconnected)
	testenv.Do(t, f.Admin, "CLIENT", "UNPAUSE")

	testenv.WaitConnects(t, f.B, 2)
	assert.Equal(t, "1", fmt.Sprintf("%s", testenv.Do(t, f.Admin, "HGET", f.Key("f", 1), "count")),
		"the hit in flight was not re-sent")
	assert.Equal(t, int64(2), hit(t, f.B, "f"))
	assert.GreaterOrEqual(t, f.Log.Count("service ended"), 1, "suture restarted the server")
}

func TestIdleConnectionKilledIsReplacedByHealthCheck(t *testing.T) {
	srv := redistest.New(t)
	f := start(t, srv, hammerredis.Options{RedixConfig: named("idle"), HealthCheckInterval: 50 * time.Millisecond})
	killClient(t, f.Admin, "idle")
	testenv.WaitConnects(t, f.B, 2)
	assert.Equal(t, int64(1), hit(t, f.B, "idle"))
}

func TestTimeoutsAndAbandonedCallsAreNeverSent(t *testing.T) {
	srv := redistest.New(t)
	f := start(t, srv, hammerredis.Options{RedixConfig: named("slow"), CallTimeout: 300 * time.Millisecond})
	key := hammerredis.BucketKey{Bucket: 1, ID: "t"}
	testenv.Do(t, f.Admin, "CLIENT", "PAUSE", 20000, "WRITE")

	// In flight: the call timeout passes, the outcome is unknown.
	_, err := f.B.CountHit(context.Background(), key, 1)
	assert.ErrorIs(t, err, hammerredis.ErrTimeout)
	waitClient(t, f.Admin, "slow", func(l string) bool { return strings.Contains(l, " flags=b ") })

	// Queued behind it: never sent, whichever way the caller leaves.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = f.B.CountHit(ctx, key, 1)
	assert.ErrorIs(t, err, hammerredis.ErrTimeout)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err = f.B.CountHit(ctx, key, 1)
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, hammerredis.ErrTimeout)

	_, err = f.B.CountHit(context.Background(), key, 1)
	assert.ErrorIs(t, err, hammerredis.ErrTimeout)

	testenv.Do(t, f.Admin, "CLIENT", "UNPAUSE")
	// The first hit ran when Redis resumed; the three abandoned ones never do.
	assert.Equal(t, int64(2), hit(t, f.B, "t"))
	assert.Equal(t, uint64(1), f.B.Stats().Connects, "a timeout in the caller leaves the connection alone")
}

func TestFrozenRedisCallsReturnByTheirDeadline(t *testing.T) {
	srv := redistest.New(t)
	f := start(t, srv, hammerredis.Options{
		RedixConfig: &hammerredis.RedisConfig{ReadTimeout: 300 * time.Millisecond, ConnectTimeout: 300 * time.Millisecond},
	})
	require.NoError(t, srv.Signal(syscall.SIGSTOP))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			begin := time.Now()
			_, err := f.B.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: fmt.Sprint(i)}, 1)
			took := time.Since(begin)
			assert.True(t, errors.Is(err, hammerredis.ErrTimeout) || errors.Is(err, hammerredis.ErrClosed),
				"call %d on a frozen redis: %v, want ErrTimeout or ErrClosed", i, err)
			assert.Less(t, took, 2*time.Second, "call %d returned %v after its 200ms deadline", i, took)
		}()
	}
	wg.Wait()
	testenv.WaitRestarts(t, f.B, 1) // the read timeout
	require.NoError(t, srv.Signal(syscall.SIGCONT))
	testenv.WaitConnects(t, f.B, 2)
	_, err := f.B.CountHit(context.Background(), hammerredis.BucketKey{Bucket: 2, ID: "after"}, 1)
	require.NoError(t, err)
}

func TestDeleteOnAFrozenRedisEndsByItsDeadlineAndAtStop(t *testing.T) {
	srv := redistest.New(t)
	proxy, err := faultproxy.New(srv.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { proxy.Close() })
	f := start(t, srv, hammerredis.Options{RedisURL: "redis://" + proxy.Addr()})
	hit(t, f.B, "frozen")
	proxy.SetBlackhole(true) // connections are accepted; nothing gets through

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err = f.B.DeleteBuckets(ctx, "frozen")
	assert.ErrorIs(t, err, hammerredis.ErrTimeout, "the caller's deadline ends the delete")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(begin), time.Second)

	accepted := proxy.Accepted()
	errc := make(chan error, 1)
	go func() { // no deadline but DeleteBucketsTimeout (5s): Stop ends it
		_, err := f.B.DeleteBuckets(context.Background(), "frozen")
		errc <- err
	}()
	testenv.WaitUntil(t, "the delete's own connection", func() bool { return proxy.Accepted() > accepted })
	begin = time.Now()
	require.NoError(t, hammerredis.Stop(f.B))
	assert.ErrorIs(t, <-errc, hammerredis.ErrStopped)
	assert.Less(t, time.Since(begin), time.Second, "Stop does not wait for the delete's timeout")
}

func TestStop(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f := start(t, nil, hammerredis.Options{RedixConfig: named("stopme")})
	hit(t, f.B, "s")
	require.NotEmpty(t, clientLine(t, f.Admin, "stopme"))

	require.NoError(t, hammerredis.Stop(f.B))
	require.NoError(t, hammerredis.Stop(f.B), "Stop is idempotent")
	_, err := f.B.CountHit(context.Background(), hammerredis.BucketKey{ID: "s"}, 1)
	assert.ErrorIs(t, err, hammerredis.ErrStopped)
	_, err = f.B.GetBucket(context.Background(), hammerredis.BucketKey{ID: "s"})
	assert.ErrorIs(t, err, hammerredis.ErrStopped)
	_, err = f.B.DeleteBuckets(context.Background(), "s")
	assert.ErrorIs(t, err, hammerredis.ErrStopped)
	assert.False(t, f.B.Connected())
	waitClient(t, f.Admin, "stopme", func(l string) bool { return l == "" }) // the connection is closed
}

func TestStartLinkLivesAndDiesWithItsTree(t *testing.T) {
	rec := logtest.New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sup := suture.New("app", suture.Spec{EventHook: func(e suture.Event) { rec.Logger().Info(e.String()) }})
	errc := sup.ServeBackground(ctx)

	f := &fixture{Log: logtest.New(), Prefix: testenv.Prefix(t)}
	b, err := hammerredis.StartLink(sup, hammerredis.Options{ExpiryMs: 1000, RedisURL: redisURL,
		KeyPrefix: f.Prefix, Logger: f.Log.Logger()})
	require.NoError(t, err)
	testenv.WaitConnects(t, b, 1)
	assert.Equal(t, int64(1), hit(t, b, "l"))
	assert.Contains(t, sup.Services(), suture.Service(b))

	cancel() // the parent tree stops
	<-errc
	_, err = b.CountHit(context.Background(), hammerredis.BucketKey{ID: "l"}, 1)
	assert.ErrorIs(t, err, hammerredis.ErrStopped)
	require.NoError(t, hammerredis.Stop(b))
}

func TestStopRemovesALinkedBackendFromItsTree(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sup := suture.New("app", suture.Spec{EventHook: func(suture.Event) {}})
	errc := sup.ServeBackground(ctx)
	defer func() { cancel(); <-errc }()

	rec := logtest.New()
	b, err := hammerredis.StartLink(sup, hammerredis.Options{ExpiryMs: 1000, RedisURL: redisURL,
		KeyPrefix: testenv.Prefix(t), Logger: rec.Logger()})
	require.NoError(t, err)
	testenv.WaitConnects(t, b, 1)
	require.NoError(t, hammerredis.Stop(b))
	assert.NotContains(t, sup.Services(), suture.Service(b))
	_, err = b.CountHit(context.Background(), hammerredis.BucketKey{ID: "x"}, 1)
	assert.ErrorIs(t, err, hammerredis.ErrStopped)
}

func TestBackendIsASutureService(t *testing.T) {
	rec := logtest.New()
	b, err := hammerredis.New(hammerredis.Options{ExpiryMs: 1000, RedisURL: redisURL,
		KeyPrefix: testenv.Prefix(t), Logger: rec.Logger()})
	require.NoError(t, err)
	short, cancelShort := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelShort()
	_, err = b.CountHit(short, hammerredis.BucketKey{ID: "x"}, 1)
	assert.ErrorIs(t, err, hammerredis.ErrTimeout, "not started yet: the call waits for the first dial, within its context")
	early := make(chan error, 1)
	go func() { // made before the backend runs, answered once it does
		_, err := b.CountHit(context.Background(), hammerredis.BucketKey{Bucket: 1, ID: "x"}, 1)
		early <- err
	}()

	ctx, cancel := context.WithCancel(context.Background())
	sup := suture.New("app", suture.Spec{EventHook: func(suture.Event) {}})
	sup.Add(b)
	errc := sup.ServeBackground(ctx)
	require.NoError(t, <-early)
	assert.Equal(t, int64(2), hit(t, b, "x"))
	assert.Equal(t, "hammerredis("+shared.Addr()+")", b.String())
	cancel()
	<-errc
	_, err = b.CountHit(context.Background(), hammerredis.BucketKey{ID: "x"}, 1)
	assert.ErrorIs(t, err, hammerredis.ErrStopped)
}

func TestFirstCallAfterStartWaitsForTheFirstDial(t *testing.T) {
	ctx := context.Background()
	opts := func(t *testing.T) hammerredis.Options {
		return hammerredis.Options{ExpiryMs: 60_000, RedisURL: shared.URL(), KeyPrefix: testenv.Prefix(t),
			Logger: logtest.New().Logger()}
	}
	key := hammerredis.BucketKey{Bucket: 1, ID: "first"}
	t.Run("Start", func(t *testing.T) {
		for i := range 20 {
			b, err := hammerredis.Start(opts(t))
			require.NoError(t, err)
			_, err = b.CountHit(ctx, key, 1)
			hammerredis.Stop(b)
			require.NoError(t, err, "backend %d: the call right after Start", i)
		}
	})
	t.Run("PoolSize", func(t *testing.T) {
		o := opts(t)
		o.PoolSize = 4
		b, err := hammerredis.Start(o)
		require.NoError(t, err)
		defer hammerredis.Stop(b)
		for i := range 8 {
			_, err = b.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: fmt.Sprint(i)}, 1)
			require.NoError(t, err, "id %d", i)
		}
	})
	t.Run("StartLink", func(t *testing.T) {
		sup := suture.NewSimple("app")
		supCtx, cancel := context.WithCancel(ctx)
		done := sup.ServeBackground(supCtx)
		defer func() { cancel(); <-done }()
		b, err := hammerredis.StartLink(sup, opts(t))
		require.NoError(t, err)
		defer hammerredis.Stop(b)
		_, err = b.GetBucket(ctx, key)
		require.NoError(t, err)
	})
	t.Run("DeleteBuckets", func(t *testing.T) {
		b, err := hammerredis.Start(opts(t))
		require.NoError(t, err)
		defer hammerredis.Stop(b)
		_, err = b.DeleteBuckets(ctx, "first")
		require.NoError(t, err)
	})
}

func TestFirstCallWaitsWithinItsContextAndStop(t *testing.T) {
	silent := redistest.NewSilent(t) // the first dial never ends by itself
	b, err := hammerredis.Start(hammerredis.Options{ExpiryMs: 1000, RedisURL: silent.URL(),
		Logger: logtest.New().Logger()})
	require.NoError(t, err)
	defer hammerredis.Stop(b)
	key := hammerredis.BucketKey{Bucket: 1, ID: "x"}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err = b.CountHit(ctx, key, 1)
	assert.ErrorIs(t, err, hammerredis.ErrTimeout, "the caller's deadline ends the wait")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(begin), time.Second)

	errc := make(chan error, 1)
	go func() {
		_, err := b.CountHit(context.Background(), key, 1)
		errc <- err
	}()
	<-silent.Accepted()
	require.NoError(t, hammerredis.Stop(b))
	assert.ErrorIs(t, <-errc, hammerredis.ErrStopped, "Stop ends the wait")
}

func TestFirstCallAfterAFailedFirstDialFailsAtOnce(t *testing.T) {
	srv := redistest.New(t)
	srv.Kill()
	f := startNoWait(t, srv, hammerredis.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitLong)
	defer cancel()
	_, err := f.B.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "x"}, 1)
	require.ErrorIs(t, err, hammerredis.ErrClosed, "the first attempt ended: the call does not wait for the next")
	begin := time.Now()
	_, err = f.B.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "x"}, 1)
	require.ErrorIs(t, err, hammerredis.ErrClosed)
	assert.Less(t, time.Since(begin), 100*time.Millisecond)
}

func TestStopWhileAConnectionIsPreparedReturnsPromptly(t *testing.T) {
	for _, tt := range []struct {
		name string
		url  func(addr string) string
	}{
		{"PING", func(addr string) string { return "redis://" + addr }},
		{"AUTH", func(addr string) string { return "redis://:secret@" + addr }},
		{"SELECT", func(addr string) string { return "redis://" + addr + "/2" }},
		{"TLS handshake", func(addr string) string { return "rediss://" + addr }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			silent := redistest.NewSilent(t)
			b, err := hammerredis.Start(hammerredis.Options{ExpiryMs: 1000, RedisURL: tt.url(silent.Addr()),
				Logger: logtest.New().Logger()}) // ReadTimeout 5s
			require.NoError(t, err)
			<-silent.Received() // the command (or ClientHello) is out
			begin := time.Now()
			require.NoError(t, hammerredis.Stop(b))
			assert.Less(t, time.Since(begin), time.Second, "Stop does not wait for a ReadTimeout")
		})
	}
}
