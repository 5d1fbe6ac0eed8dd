package hammerredis_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/thejerf/suture/v4"
	"go.uber.org/goleak"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/internal/redistest"
)

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
	do(t, admin, "CLIENT", "KILL", "ID", m[1])
}

// waitClient polls CLIENT LIST until the client named name matches ok. Redis
// offers no event for a client's state, so this is the one poll of the tests.
func waitClient(t *testing.T, admin redis.Conn, name string, ok func(line string) bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !ok(clientLine(t, admin, name)) {
		if time.Now().After(deadline) {
			t.Fatalf("client %q never reached the awaited state: %q", name, clientLine(t, admin, name))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func named(name string) *hammerredis.RedisConfig { return &hammerredis.RedisConfig{ClientName: name} }

func hit(t *testing.T, b *hammerredis.Backend, id string) int64 {
	t.Helper()
	n, err := b.CountHit(context.Background(), hammerredis.BucketKey{Bucket: 1, ID: id}, 1)
	require.NoError(t, err)
	return n
}

func TestStartWhileRedisDownThenRecover(t *testing.T) {
	srv := redistest.New(t)
	srv.Kill() // a port nobody listens on, until Restart
	f := startNoWait(t, srv, hammerredis.Options{CallTimeout: time.Hour})

	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	// A call that waited would get ErrTimeout; ErrClosed means it did not.
	_, err := f.b.CountHit(ctx, hammerredis.BucketKey{ID: "down"}, 1)
	require.ErrorIs(t, err, hammerredis.ErrClosed)
	f.log.WaitCount(t, "cannot connect to redis", 2, waitLong) // retried
	_, err = f.b.CountHit(ctx, hammerredis.BucketKey{ID: "down"}, 1)
	require.ErrorIs(t, err, hammerredis.ErrClosed)
	assert.ErrorContains(t, err, "connection refused", "ErrClosed says why")

	require.NoError(t, srv.Restart())
	up := time.Now()
	f.log.WaitCount(t, connectedMsg, 1, waitLong)
	recovery := time.Since(up)
	t.Logf("connected %v after redis-server was ready", recovery)
	assert.Less(t, recovery, 3*time.Second, "with MaxBackoff 1s, the backend redials within about a second")
	assert.Equal(t, int64(1), hit(t, f.b, "down"))
}

func TestReconnectAfterRedisRestart(t *testing.T) {
	srv := redistest.New(t)
	f := start(t, srv, hammerredis.Options{})
	assert.Equal(t, int64(1), hit(t, f.b, "r"))

	require.NoError(t, srv.Restart()) // SIGKILL, then a new process
	f.log.WaitCount(t, connectedMsg, 2, waitLong)
	assert.Equal(t, int64(1), hit(t, f.b, "r"), "a fresh server: the data is gone, the backend is back")
	assert.GreaterOrEqual(t, f.log.Count("connection to redis lost"), 1)
	assert.GreaterOrEqual(t, f.log.Count("service ended"), 1, "the supervisor logged the restart:\n%s", f.log)
	st := f.b.Stats()
	assert.True(t, st.Connected)
	assert.GreaterOrEqual(t, st.Restarts, uint64(1))
	assert.GreaterOrEqual(t, st.Connects, uint64(2))
	assert.Equal(t, uint64(2), st.Calls.CountHit)
	assert.Equal(t, uint64(0), st.Errors.Total())
}

func TestRequestInFlightGetsErrDisconnectedAndIsNotResent(t *testing.T) {
	srv := redistest.New(t)
	f := start(t, srv, hammerredis.Options{RedixConfig: named("inflight")})
	assert.Equal(t, int64(1), hit(t, f.b, "f"))

	// Hold write commands in Redis, so the next hit stays in flight.
	do(t, f.admin, "CLIENT", "PAUSE", 20000, "WRITE")
	errc := make(chan error, 1)
	go func() {
		_, err := f.b.CountHit(context.Background(), hammerredis.BucketKey{Bucket: 1, ID: "f"}, 2)
		errc <- err
	}()
	waitClient(t, f.admin, "inflight", func(l string) bool { return strings.Contains(l, " flags=b ") })
	killClient(t, f.admin, "inflight")
	err := <-errc
	assert.ErrorIs(t, err, hammerredis.ErrDisconnected)
	do(t, f.admin, "CLIENT", "UNPAUSE")

	f.log.WaitCount(t, connectedMsg, 2, waitLong)
	assert.Equal(t, "1", fmt.Sprintf("%s", do(t, f.admin, "HGET", f.key("f", 1), "count")),
		"the hit in flight was not re-sent")
	assert.Equal(t, int64(2), hit(t, f.b, "f"))
	assert.GreaterOrEqual(t, f.log.Count("service ended"), 1, "suture restarted the server")
}

func TestIdleConnectionKilledIsReplacedByHealthCheck(t *testing.T) {
	srv := redistest.New(t)
	f := start(t, srv, hammerredis.Options{RedixConfig: named("idle"), HealthCheckInterval: 50 * time.Millisecond})
	killClient(t, f.admin, "idle")
	f.log.WaitCount(t, connectedMsg, 2, waitLong)
	assert.Equal(t, int64(1), hit(t, f.b, "idle"))
}

func TestTimeoutsAndAbandonedCallsAreNeverSent(t *testing.T) {
	srv := redistest.New(t)
	f := start(t, srv, hammerredis.Options{RedixConfig: named("slow"), CallTimeout: 300 * time.Millisecond})
	key := hammerredis.BucketKey{Bucket: 1, ID: "t"}
	do(t, f.admin, "CLIENT", "PAUSE", 20000, "WRITE")

	// In flight: the call timeout passes, the outcome is unknown.
	_, err := f.b.CountHit(context.Background(), key, 1)
	assert.ErrorIs(t, err, hammerredis.ErrTimeout)
	waitClient(t, f.admin, "slow", func(l string) bool { return strings.Contains(l, " flags=b ") })

	// Queued behind it: never sent, whichever way the caller leaves.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = f.b.CountHit(ctx, key, 1)
	assert.ErrorIs(t, err, hammerredis.ErrTimeout)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err = f.b.CountHit(ctx, key, 1)
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, hammerredis.ErrTimeout)

	_, err = f.b.CountHit(context.Background(), key, 1)
	assert.ErrorIs(t, err, hammerredis.ErrTimeout)

	do(t, f.admin, "CLIENT", "UNPAUSE")
	// The first hit ran when Redis resumed; the three abandoned ones never do.
	assert.Equal(t, int64(2), hit(t, f.b, "t"))
	assert.Equal(t, 1, f.log.Count(connectedMsg), "a timeout in the caller leaves the connection alone")
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
			_, err := f.b.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: fmt.Sprint(i)}, 1)
			took := time.Since(begin)
			if !errors.Is(err, hammerredis.ErrTimeout) && !errors.Is(err, hammerredis.ErrClosed) {
				t.Errorf("call %d on a frozen redis: %v, want ErrTimeout or ErrClosed", i, err)
			}
			assert.Less(t, took, 2*time.Second, "call %d returned %v after its 200ms deadline", i, took)
		}()
	}
	wg.Wait()
	f.log.WaitCount(t, "connection to redis lost", 1, waitLong) // the read timeout
	require.NoError(t, srv.Signal(syscall.SIGCONT))
	f.log.WaitCount(t, connectedMsg, 2, waitLong)
	_, err := f.b.CountHit(context.Background(), hammerredis.BucketKey{Bucket: 2, ID: "after"}, 1)
	require.NoError(t, err)
}

func TestStop(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f := start(t, nil, hammerredis.Options{RedixConfig: named("stopme")})
	hit(t, f.b, "s")
	require.NotEmpty(t, clientLine(t, f.admin, "stopme"))

	require.NoError(t, hammerredis.Stop(f.b))
	require.NoError(t, hammerredis.Stop(f.b), "Stop is idempotent")
	_, err := f.b.CountHit(context.Background(), hammerredis.BucketKey{ID: "s"}, 1)
	assert.ErrorIs(t, err, hammerredis.ErrStopped)
	_, err = f.b.GetBucket(context.Background(), hammerredis.BucketKey{ID: "s"})
	assert.ErrorIs(t, err, hammerredis.ErrStopped)
	_, err = f.b.DeleteBuckets(context.Background(), "s")
	assert.ErrorIs(t, err, hammerredis.ErrStopped)
	assert.False(t, f.b.Connected())
	waitClient(t, f.admin, "stopme", func(l string) bool { return l == "" }) // the connection is closed
}

func TestStopRacingCalls(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f := start(t, nil, hammerredis.Options{})
	var wg sync.WaitGroup
	started := make(chan struct{})
	var once sync.Once
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				_, err := f.b.CountHit(context.Background(), hammerredis.BucketKey{Bucket: 1, ID: fmt.Sprint(i)}, 1)
				if j == 10 {
					once.Do(func() { close(started) })
				}
				switch {
				case err == nil, errors.Is(err, hammerredis.ErrDisconnected), errors.Is(err, hammerredis.ErrClosed):
				case errors.Is(err, hammerredis.ErrStopped):
					return
				default:
					t.Errorf("call during Stop: %v", err)
					return
				}
			}
		}()
	}
	<-started
	var stops sync.WaitGroup
	for range 3 {
		stops.Add(1)
		go func() { defer stops.Done(); hammerredis.Stop(f.b) }()
	}
	stops.Wait()
	wg.Wait()
}

func TestStartLinkLivesAndDiesWithItsTree(t *testing.T) {
	rec := logtest.New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sup := suture.New("app", suture.Spec{EventHook: func(e suture.Event) { rec.Logger().Info(e.String()) }})
	errc := sup.ServeBackground(ctx)

	f := &fixture{log: logtest.New(), prefix: testPrefix(t)}
	b, err := hammerredis.StartLink(sup, hammerredis.Options{ExpiryMs: 1000, RedisURL: redisURL,
		KeyPrefix: f.prefix, Logger: f.log.Logger()})
	require.NoError(t, err)
	f.log.WaitCount(t, connectedMsg, 1, waitLong)
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
		KeyPrefix: testPrefix(t), Logger: rec.Logger()})
	require.NoError(t, err)
	rec.WaitCount(t, connectedMsg, 1, waitLong)
	require.NoError(t, hammerredis.Stop(b))
	assert.NotContains(t, sup.Services(), suture.Service(b))
	_, err = b.CountHit(context.Background(), hammerredis.BucketKey{ID: "x"}, 1)
	assert.ErrorIs(t, err, hammerredis.ErrStopped)
}

func TestBackendIsASutureService(t *testing.T) {
	rec := logtest.New()
	b, err := hammerredis.New(hammerredis.Options{ExpiryMs: 1000, RedisURL: redisURL,
		KeyPrefix: testPrefix(t), Logger: rec.Logger()})
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

func TestPasswordsNeverLeak(t *testing.T) {
	const secret = "s3cret-Pa55"
	srv := redistest.New(t, redistest.Options{Args: []string{"--requirepass", secret}})

	wrong := "wrong-" + secret
	opts := hammerredis.Options{ExpiryMs: 1000, RedisURL: "redis://:" + wrong + "@" + srv.Addr(),
		RedixConfig: &hammerredis.RedisConfig{ClientName: "pw"}}
	f := startNoWait(t, srv, opts)
	f.log.WaitCount(t, "cannot connect to redis", 3, waitLong) // retried, with backoff
	_, err := f.b.CountHit(context.Background(), hammerredis.BucketKey{ID: "x"}, 1)
	require.ErrorIs(t, err, hammerredis.ErrClosed)
	assert.ErrorContains(t, err, "WRONGPASS", "the error says why")

	seen := strings.Join([]string{err.Error(), f.log.String(), f.b.String(), fmt.Sprint(opts), fmt.Sprintf("%+v", opts),
		fmt.Sprintf("%#v", opts), fmt.Sprintf("%v", *opts.RedixConfig), fmt.Sprintf("%#v", opts.RedixConfig)}, "\n")
	assert.NotContains(t, seen, secret)

	// The right password, in a config that overrides the URL's.
	opts.RedixConfig = &hammerredis.RedisConfig{Password: secret}
	opts.KeyPrefix = ""
	g := start(t, srv, opts)
	assert.Equal(t, int64(1), hit(t, g.b, "x"))
	seen = strings.Join([]string{g.log.String(), fmt.Sprint(opts), fmt.Sprintf("%+v", opts), fmt.Sprintf("%#v", opts),
		fmt.Sprintf("%#v", *opts.RedixConfig)}, "\n")
	assert.NotContains(t, seen, secret)
}

func TestUnixSocketAndDatabase(t *testing.T) {
	f := start(t, nil, hammerredis.Options{RedisConfig: &hammerredis.RedisConfig{SocketPath: shared.Socket, Database: 3}})
	assert.Equal(t, int64(1), hit(t, f.b, "u"))
	do(t, f.admin, "SELECT", 3)
	assert.Equal(t, int64(1), do(t, f.admin, "EXISTS", f.key("u", 1)))
	do(t, f.admin, "SELECT", 0)
	assert.Equal(t, int64(0), do(t, f.admin, "EXISTS", f.key("u", 1)))
}

func TestOptionErrors(t *testing.T) {
	const pw = "hunter2-secret"
	for _, tt := range []struct {
		name string
		opts hammerredis.Options
		want string
	}{
		{"missing expiry", hammerredis.Options{}, "ExpiryMs"},
		{"negative expiry", hammerredis.Options{ExpiryMs: -1}, "ExpiryMs"},
		{"unknown scheme", hammerredis.Options{ExpiryMs: 1, RedisURL: "http://:" + pw + "@h:1"}, `unknown scheme "http"`},
		{"no scheme", hammerredis.Options{ExpiryMs: 1, RedisURL: "localhost:6379"}, "scheme"},
		{"bad port", hammerredis.Options{ExpiryMs: 1, RedisURL: "redis://:" + pw + "@h:99999"}, "port"},
		{"port not a number", hammerredis.Options{ExpiryMs: 1, RedisURL: "redis://u:" + pw + "@h:abc"}, "port"},
		{"bad database", hammerredis.Options{ExpiryMs: 1, RedisURL: "redis://:" + pw + "@h:1/x"}, "database"},
		{"bad escape in password", hammerredis.Options{ExpiryMs: 1, RedisURL: "redis://u:%zz" + pw + "@h:1"}, "password"},
		{"malformed", hammerredis.Options{ExpiryMs: 1, RedisURL: "redis://:" + pw + "@[::1"}, "RedisURL"},
		{"query", hammerredis.Options{ExpiryMs: 1, RedisURL: "redis://h/0?timeout=1"}, "query"},
		{"config port", hammerredis.Options{ExpiryMs: 1, RedisConfig: &hammerredis.RedisConfig{Port: 70000, Password: pw}}, "port 70000"},
		{"negative database", hammerredis.Options{ExpiryMs: 1, RedisConfig: &hammerredis.RedisConfig{Database: -1}}, "database"},
		{"user without password", hammerredis.Options{ExpiryMs: 1, RedixConfig: &hammerredis.RedisConfig{Username: "u"}}, "Password"},
		{"negative timeout", hammerredis.Options{ExpiryMs: 1, CallTimeout: -1}, "CallTimeout"},
		{"backoff order", hammerredis.Options{ExpiryMs: 1, MinBackoff: time.Second, MaxBackoff: time.Millisecond}, "MaxBackoff"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := hammerredis.Start(tt.opts)
			require.Error(t, err)
			assert.Nil(t, b)
			assert.ErrorIs(t, err, hammerredis.ErrInvalid)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), pw)
			_, err = hammerredis.StartLink(suture.NewSimple("x"), tt.opts)
			assert.ErrorIs(t, err, hammerredis.ErrInvalid)
		})
	}
	_, err := hammerredis.StartLink(nil, hammerredis.Options{ExpiryMs: 1})
	assert.ErrorIs(t, err, hammerredis.ErrInvalid)
}
