package hammerredis_test

// Secrets: passwords, of Redis and of the sentinels, never appear in any
// output: logs, formatted options, errors, supervisor events, panics,
// crashes.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/thejerf/suture/v4"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/internal/testenv"
)

func TestPasswordsNeverLeak(t *testing.T) {
	const secret = "s3cret-Pa55"
	srv := redistest.New(t, redistest.Options{Args: []string{"--requirepass", secret}})

	wrong := "wrong-" + secret
	opts := hammerredis.Options{ExpiryMs: 1000, RedisURL: "redis://:" + wrong + "@" + srv.Addr(),
		RedixConfig: &hammerredis.RedisConfig{ClientName: "pw"}}
	f := startNoWait(t, srv, opts)
	f.Log.WaitCount(t, "cannot connect to redis", 3, testenv.WaitLong) // retried, with backoff
	_, err := f.B.CountHit(context.Background(), hammerredis.BucketKey{ID: "x"}, 1)
	require.ErrorIs(t, err, hammerredis.ErrClosed)
	assert.ErrorContains(t, err, "WRONGPASS", "the error says why")

	seen := strings.Join([]string{err.Error(), f.Log.String(), f.B.String(), fmt.Sprint(opts), fmt.Sprintf("%+v", opts),
		fmt.Sprintf("%#v", opts), fmt.Sprintf("%v", *opts.RedixConfig), fmt.Sprintf("%#v", opts.RedixConfig)}, "\n")
	assert.NotContains(t, seen, secret)

	// The right password, in a config that overrides the URL's.
	opts.RedixConfig = &hammerredis.RedisConfig{Password: secret}
	opts.KeyPrefix = ""
	g := start(t, srv, opts)
	assert.Equal(t, int64(1), hit(t, g.B, "x"))
	seen = strings.Join([]string{g.Log.String(), fmt.Sprint(opts), fmt.Sprintf("%+v", opts), fmt.Sprintf("%#v", opts),
		fmt.Sprintf("%#v", *opts.RedixConfig)}, "\n")
	assert.NotContains(t, seen, secret)
}

// secNoSecret fails the test when any of seen contains the password.
func secNoSecret(t *testing.T, secret string, seen ...string) {
	t.Helper()
	for _, s := range seen {
		assert.NotContains(t, s, secret, "the password appears")
	}
}

// secCollector gathers every text a test produced.
type secCollector struct {
	mu   sync.Mutex
	seen []string
}

func (c *secCollector) add(s ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = append(c.seen, s...)
}

func (c *secCollector) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.seen)
}

// addFormats adds v printed with every common verb.
func (c *secCollector) addFormats(v any) {
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		c.add(fmt.Sprintf(verb, v))
	}
	c.add(fmt.Sprint(v), fmt.Sprintln(v), fmt.Sprint([]any{v}), fmt.Sprintf("%v", map[string]any{"v": v}))
}

// addSlog adds v logged as an attribute through slog's text and JSON
// handlers.
func (c *secCollector) addSlog(v any) {
	var text, js strings.Builder
	slog.New(slog.NewTextHandler(&text, nil)).Info("config", "value", v)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("config", "value", v, slog.Group("g", "value", v))
	c.add(text.String(), js.String())
}

// addPanic adds what recover returns after panic(v), printed.
func (c *secCollector) addPanic(v any) {
	defer func() {
		r := recover()
		c.add(fmt.Sprint(r), fmt.Sprintf("%v %+v %#v", r, r, r))
	}()
	panic(v)
}

// panicOnceHandler panics on the first record whose message holds msg, then
// passes every record to h.
type panicOnceHandler struct {
	slog.Handler
	msg    string
	panics *atomic.Bool
}

func (h panicOnceHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.msg) && h.panics.CompareAndSwap(false, true) {
		panic("panicOnceHandler: boom in the backend's goroutine")
	}
	return h.Handler.Handle(ctx, r)
}

func (h panicOnceHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return panicOnceHandler{h.Handler.WithAttrs(a), h.msg, h.panics}
}

func (h panicOnceHandler) WithGroup(g string) slog.Handler {
	return panicOnceHandler{h.Handler.WithGroup(g), h.msg, h.panics}
}

func TestPasswordsNeverAppearInAnyOutput(t *testing.T) {
	srv := testenv.ACLServer(t)
	admin := srv.Conn(t)
	testenv.SetUser(t, admin, testenv.ACLUser, testenv.ACLRules("~*", "+@all"))
	wrong := "wrong-" + testenv.ACLPassword // contains testenv.ACLPassword: one check covers both
	url := func(user, pw string) string { return testenv.UserURL("redis", user, pw, srv.Addr()) }
	var c secCollector
	for _, tt := range []struct {
		name string
		opts hammerredis.Options
		ok   bool // whether the password is right
	}{
		{"URL only", hammerredis.Options{RedisURL: url(testenv.ACLUser, testenv.ACLPassword)}, true},
		{"URL only, TLS", hammerredis.Options{RedisURL: testenv.UserURL("rediss", testenv.ACLUser, testenv.ACLPassword, "127.0.0.1:1")}, false},
		{"RedixConfig only", hammerredis.Options{RedixConfig: &hammerredis.RedisConfig{Username: testenv.ACLUser, Password: testenv.ACLPassword}}, true},
		{"RedisConfig only", hammerredis.Options{RedisConfig: &hammerredis.RedisConfig{Username: testenv.ACLUser, Password: testenv.ACLPassword}}, true},
		{"both configs and the URL", hammerredis.Options{RedisURL: url(testenv.ACLUser, wrong),
			RedixConfig: &hammerredis.RedisConfig{Username: testenv.ACLUser, Password: testenv.ACLPassword},
			RedisConfig: &hammerredis.RedisConfig{Username: testenv.ACLUser, Password: wrong}}, true},
		{"wrong password in the URL", hammerredis.Options{RedisURL: url(testenv.ACLUser, wrong)}, false},
		{"wrong password in RedixConfig", hammerredis.Options{RedixConfig: &hammerredis.RedisConfig{Username: testenv.ACLUser, Password: wrong}}, false},
		{"lone password, wrong", hammerredis.Options{RedisURL: "redis://:" + wrong + "@" + srv.Addr(),
			RedixConfig: &hammerredis.RedisConfig{Username: testenv.ACLUser}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.KeyPrefix = testenv.ACLPrefix
			name := "pw-" + strconv.Itoa(int(testenv.Unique()))
			opts.HealthCheckInterval = 20 * time.Millisecond // a killed connection is soon replaced
			cfg := hammerredis.RedisConfig{ClientName: name, ReadTimeout: time.Second, ConnectTimeout: time.Second}
			if opts.RedixConfig != nil {
				cfg.Username, cfg.Password = opts.RedixConfig.Username, opts.RedixConfig.Password
			}
			opts.RedixConfig = &cfg
			if opts.RedisURL == "" {
				opts.RedisURL = srv.URL()
			}
			// The options, every way a program might print or log them.
			for _, v := range []any{opts, &opts, opts.RedixConfig, *opts.RedixConfig} {
				c.addFormats(v)
				c.addSlog(v)
				c.addPanic(v)
			}
			if opts.RedisConfig != nil {
				c.addFormats(*opts.RedisConfig)
			}
			c.addPanic(fmt.Errorf("bad config %v", opts))

			f := startNoWait(t, srv, opts)
			c.addFormats(f.B)
			if tt.ok {
				ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitLong)
				defer cancel()
				require.NoError(t, f.B.WaitConnected(ctx))
				_, err := secCount(f.B, hammerredis.BucketKey{Bucket: 1, ID: "pw"})
				require.NoError(t, err)
				killClient(t, admin, name) // "connection lost", "service ended", redial
				f.Log.WaitCount(t, connectedMsg, 2, testenv.WaitLong)
				f.Log.WaitCount(t, "service ended", 1, testenv.WaitLong) // the supervisor's event
			} else {
				f.Log.WaitCount(t, "cannot connect to redis", 2, testenv.WaitLong)
				_, err := secCount(f.B, hammerredis.BucketKey{Bucket: 1, ID: "pw"})
				require.ErrorIs(t, err, hammerredis.ErrClosed)
				c.add(err.Error(), fmt.Sprintf("%+v %#v", err, err))
			}
			for _, call := range []func() error{
				func() error {
					_, err := f.B.GetBucket(context.Background(), hammerredis.BucketKey{ID: "pw"})
					return err
				},
				func() error { _, err := f.B.DeleteBuckets(context.Background(), "pw"); return err },
			} {
				if err := call(); err != nil {
					c.add(err.Error(), fmt.Sprintf("%+v %#v", err, err))
				}
			}
			c.addFormats(f.B.Stats())
			require.NoError(t, hammerredis.Stop(f.B))
			_, err := secCount(f.B, hammerredis.BucketKey{Bucket: 1, ID: "pw"})
			c.add(err.Error())
			c.add(f.Log.String())
		})
	}
	secNoSecret(t, testenv.ACLPassword, c.all()...)
}

func TestPasswordsNeverAppearInSupervisorEventsOrPanics(t *testing.T) {
	srv := testenv.ACLServer(t)
	admin := srv.Conn(t)
	testenv.SetUser(t, admin, testenv.ACLUser, testenv.ACLRules("~*", "+@all"))
	var c secCollector

	// A parent tree whose events are all recorded.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sup := suture.New("app", suture.Spec{EventHook: func(e suture.Event) {
		c.add(e.String(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e))
	}})
	errc := sup.ServeBackground(ctx)

	// A logger that panics in the backend's goroutine the first time it
	// logs a connection: the supervisor logs the panic and its stack, and
	// restarts the server.
	rec := logtest.New()
	var panicked atomic.Bool
	logger := slog.New(panicOnceHandler{rec, connectedMsg, &panicked})
	b, err := hammerredis.StartLink(sup, hammerredis.Options{ExpiryMs: 1000, KeyPrefix: testenv.ACLPrefix, Logger: logger,
		HealthCheckInterval: 20 * time.Millisecond,
		RedisURL:            testenv.UserURL("redis", testenv.ACLUser, testenv.ACLPassword, srv.Addr()), RedixConfig: named("sup-pw")})
	require.NoError(t, err)
	rec.WaitCount(t, "service panicked", 1, testenv.WaitLong)
	rec.WaitCount(t, connectedMsg, 1, testenv.WaitLong) // restarted after the panic
	assert.True(t, panicked.Load())
	assert.Contains(t, rec.String(), "stack=", "the panic's stack was logged")
	n, err := secCount(b, hammerredis.BucketKey{Bucket: 1, ID: "sup"})
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)

	killClient(t, admin, "sup-pw")
	rec.WaitCount(t, connectedMsg, 2, testenv.WaitLong)
	require.NoError(t, hammerredis.Stop(b)) // the parent sees the backend end
	cancel()
	<-errc
	c.add(rec.String())
	secNoSecret(t, testenv.ACLPassword, c.all()...)
}

// secPanicEnv makes TestPasswordNotInACrash's child process crash.
const secPanicEnv = "HAMMERREDIS_TEST_PANIC_WITH_OPTIONS"

// TestPasswordNotInACrash runs this test binary again to panic, unrecovered,
// with options holding a password, and checks what the crash printed.
func TestPasswordNotInACrash(t *testing.T) {
	if os.Getenv(secPanicEnv) != "" {
		panic(hammerredis.Options{ExpiryMs: 1, RedisURL: "redis://" + testenv.ACLUser + ":" + testenv.ACLPassword + "@h:1",
			RedixConfig: &hammerredis.RedisConfig{Password: testenv.ACLPassword}})
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPasswordNotInACrash$", "-test.count=1", "-test.shuffle=off")
	// The child's TestMain starts a redis-server; a crash leaves its
	// directory behind, so keep it in the test's own.
	cmd.Env = append(os.Environ(), secPanicEnv+"=1", "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the child must crash:\n%s", out)
	assert.Contains(t, string(out), "panic: {ExpiryMs:1 ", "the child panicked with the options:\n%s", out)
	assert.Contains(t, string(out), "Password:[redacted]")
	secNoSecret(t, testenv.ACLPassword, string(out))
}

// TestMalformedRedisURLNeverShowsThePassword: the RedisURL is redacted in
// Start's errors and in Options.String even when it cannot be parsed, for
// example because the password holds a '/', '?' or '#' that was not
// percent-encoded, or the scheme lacks its slashes.
func TestMalformedRedisURLNeverShowsThePassword(t *testing.T) {
	// Pieces of passwords: none may be shown.
	const a, b, c = "Zq9xA", "Kk7yB", "Vb3wC"
	for _, tt := range []struct {
		url    string
		pieces []string
	}{
		{"redis://user:" + a + "/" + b + "@h:1", []string{a, b}},
		{"redis://:" + a + "/" + b + "@h:1/0", []string{a, b}},
		{"redis://user:" + a + "?" + b + "@h:1", []string{a, b}},
		{"redis://user:" + a + "#" + b + "@h:1", []string{a, b}},
		{"redis://user:" + a + "@" + b + "#" + c + "@h:1", []string{a, b, c}},
		{"redis//user:" + a + "@h:1", []string{a}},
		{"redis:/user:" + a + "@h:1", []string{a}},
		{"redis:user:" + a + "@h:1", []string{a}},
		{"redis:" + a + "@h:1", []string{a}},
		{"user:" + a + "@h:1", []string{a}},
		{" redis://user:" + a + "@h:1", []string{a}},
		{"redis://user:" + a + "@h:99999", []string{a}},
		{"redis://user:" + a + "%zz@h:1", []string{a}},
		{"redis://user:" + a + "@[::1", []string{a}},
		{"redis://user:" + a + "@h:1/x", []string{a}},
		{"redis://user:" + a + "@h:1/0?password=x", []string{a}},
		{"http://user:" + a + "@h:1", []string{a}},
		{"rediss://user:" + a + " " + b + "@h:1", []string{a, b}},
	} {
		t.Run(tt.url, func(t *testing.T) {
			opts := hammerredis.Options{ExpiryMs: 1, RedisURL: tt.url}
			_, err := hammerredis.New(opts)
			require.Error(t, err)
			assert.ErrorIs(t, err, hammerredis.ErrInvalid)
			_, serr := hammerredis.Start(opts)
			assert.Equal(t, err, serr, "Start fails as New does")
			for _, s := range []string{err.Error(), fmt.Sprint(opts)} {
				for _, p := range tt.pieces {
					if !assert.NotContains(t, s, p, "a piece of the password shows") {
						break
					}
				}
			}
		})
	}
}

// The sentinel password shows in no format of a SentinelConfig, nor of the
// Options that hold one, nor in slog's text and JSON output.
func TestSentinelConfigRedactsPassword(t *testing.T) {
	const secret = "s3cret-sentinel-pw"
	sc := hammerredis.SentinelConfig{Addrs: []string{"127.0.0.1:26379"}, MasterName: "m", Username: "u", Password: secret}
	opts := hammerredis.Options{ExpiryMs: 1, Sentinel: &sc}
	for _, v := range []any{sc, &sc, opts, &opts} {
		var text, js strings.Builder
		slog.New(slog.NewTextHandler(&text, nil)).Info("config", "value", v)
		slog.New(slog.NewJSONHandler(&js, nil)).Info("config", "value", v, slog.Group("g", "value", v))
		for _, s := range []string{
			fmt.Sprint(v), fmt.Sprintf("%v", v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v), fmt.Sprintf("%s", v),
			text.String(), js.String(),
		} {
			assert.NotContains(t, s, secret, "%T printed", v)
			assert.NotEmpty(t, s)
		}
		assert.Contains(t, text.String(), "[redacted]", "%T logged shows that a password is set", v)
	}
	assert.Equal(t, "{Addrs:[127.0.0.1:26379] MasterName:m Username:u Password:[redacted] Timeout:0s}", sc.String())
}
