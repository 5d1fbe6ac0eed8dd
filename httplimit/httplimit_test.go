package httplimit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/httplimit"
	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/internal/testmain"
	"github.com/hammer-go/hammerredis/protocol"
)

// shared is the private redis-server of this test binary; tests that kill
// or freeze a server start their own.
var shared *redistest.Server

// redisURL points the examples at the shared server.
var redisURL string

func TestMain(m *testing.M) {
	os.Exit(testmain.Main(m, func(s *redistest.Server) { shared, redisURL = s, s.URL() }))
}

// waitLong bounds waits for events that normally take milliseconds.
const waitLong = 10 * time.Second

// t0 is the fixed time of the tests: 20.25s into a minute window, so the
// window resets after 39.75s, which RateLimit-Reset rounds up to 40.
var t0 = time.UnixMilli(1_700_000_000_250)

// clock is a settable time source for hammer.Limiter.WithClock.
type clock struct{ ms atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ms.Store(t.UnixMilli())
	return c
}

func (c *clock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *clock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }
func (c *clock) set(t time.Time)         { c.ms.Store(t.UnixMilli()) }
func (c *clock) String() string          { return c.now().UTC().Format(time.RFC3339Nano) }

// fixture is a backend with its log, on a test's server, and a limiter on
// it reading a fixed clock.
type fixture struct {
	b     *hammerredis.Backend
	blog  *logtest.Recorder // the backend's log
	srv   *redistest.Server
	clock *clock
	lim   *hammer.Limiter
}

var prefixes atomic.Int64

// start starts a backend on srv (the shared server when nil) with a key
// prefix unique to the test, and waits until it is connected unless
// noWait.
func start(t *testing.T, srv *redistest.Server, opts hammerredis.Options, noWait ...bool) *fixture {
	t.Helper()
	if srv == nil {
		srv = shared
	}
	f := &fixture{blog: logtest.New(), srv: srv, clock: newClock(t0)}
	opts.ExpiryMs = 60_000
	opts.RedisURL = srv.URL() // never the system Redis
	opts.KeyPrefix = fmt.Sprintf("T:%s:%d:", t.Name(), prefixes.Add(1))
	opts.Logger = f.blog.Logger()
	b, err := hammerredis.Start(opts)
	require.NoError(t, err)
	t.Cleanup(func() { hammerredis.Stop(b) })
	if len(noWait) == 0 || !noWait[0] {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		require.NoError(t, b.WaitConnected(ctx))
	}
	f.b = b
	f.lim = hammer.New(b).WithClock(f.clock.now)
	return f
}

// app is the next handler: it counts its calls and answers 200 "ok".
type app struct {
	calls   atomic.Int64
	results chan httplimit.Result // when non-nil, gets ResultFrom of each call
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.calls.Add(1)
	if a.results != nil {
		res, ok := httplimit.ResultFrom(r.Context())
		if !ok {
			panic("no result in the context of a counted request")
		}
		a.results <- res
	}
	io.WriteString(w, "ok")
}

// handler builds the middleware from cfg around a new app. Its fields are
// the legacy ones, which rateHeaders shows, unless cfg asks for another
// style than the default.
func handler(t *testing.T, cfg httplimit.Config) (http.Handler, *app) {
	t.Helper()
	if cfg.Headers == httplimit.DraftHeaders {
		cfg.Headers = httplimit.LegacyHeaders
	}
	mw, err := httplimit.New(cfg)
	require.NoError(t, err)
	a := &app{}
	return mw(a), a
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// rateHeaders returns the rate-limit fields of a response, "-" for those
// missing.
func rateHeaders(w *httptest.ResponseRecorder) string {
	get := func(name string) string {
		if v := w.Header().Values(name); len(v) > 0 {
			return fmt.Sprint(v)
		}
		return "-"
	}
	return fmt.Sprintf("%d limit=%s remaining=%s reset=%s policy=%s retry-after=%s", w.Code,
		get("RateLimit-Limit"), get("RateLimit-Remaining"), get("RateLimit-Reset"),
		get("RateLimit-Policy"), get("Retry-After"))
}

func TestHeadersOnAllowedAndDeniedResponses(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	h, a := handler(t, httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 2})
	a.results = make(chan httplimit.Result, 10)

	steps := []struct {
		advance time.Duration
		want    string
		calls   int64
	}{
		{0, "200 limit=[2] remaining=[1] reset=[40] policy=[2;w=60] retry-after=-", 1},
		{time.Second, "200 limit=[2] remaining=[0] reset=[39] policy=[2;w=60] retry-after=-", 2},
		{38_740 * time.Millisecond, "429 limit=[2] remaining=[0] reset=[1] policy=[2;w=60] retry-after=[1]", 2},
		{9 * time.Millisecond, "429 limit=[2] remaining=[0] reset=[1] policy=[2;w=60] retry-after=[1]", 2},
		// The next window.
		{time.Millisecond, "200 limit=[2] remaining=[1] reset=[60] policy=[2;w=60] retry-after=-", 3},
	}
	for i, s := range steps {
		f.clock.advance(s.advance)
		w := serve(h, request(client))
		assert.Equal(t, s.want, rateHeaders(w), "step %d at %v", i, f.clock)
		assert.Equal(t, s.calls, a.calls.Load(), "step %d: calls of the next handler", i)
		if w.Code == http.StatusOK {
			assert.Equal(t, "ok", w.Body.String())
			res := <-a.results
			assert.True(t, res.Allowed)
			assert.Equal(t, int64(2), res.Limit)
		} else {
			assert.Equal(t, "Too Many Requests: rate limit exceeded\n", w.Body.String())
		}
	}
}

func TestResetIsRoundedUpAndPolicyNeedsWholeSeconds(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	h, _ := handler(t, httplimit.Config{Limiter: f.lim, Scale: 1500 * time.Millisecond, Limit: 100})
	base := int64(1_700_000_001_000) // a multiple of 1500ms: a window starts
	tests := []struct {
		offsetMs int64
		want     string
	}{
		{0, "200 limit=[100] remaining=[99] reset=[2] policy=- retry-after=-"},    // 1500ms left
		{499, "200 limit=[100] remaining=[98] reset=[2] policy=- retry-after=-"},  // 1001ms
		{500, "200 limit=[100] remaining=[97] reset=[1] policy=- retry-after=-"},  // 1000ms
		{1499, "200 limit=[100] remaining=[96] reset=[1] policy=- retry-after=-"}, // 1ms
	}
	for _, tt := range tests {
		f.clock.set(time.UnixMilli(base + tt.offsetMs))
		assert.Equal(t, tt.want, rateHeaders(serve(h, request(client))), "at +%dms", tt.offsetMs)
	}
}

func TestLimitZeroDeniesEveryRequest(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	h, a := handler(t, httplimit.Config{Limiter: f.lim, Scale: time.Hour, Limit: 0})
	for range 2 {
		assert.Equal(t, "429 limit=[0] remaining=[0] reset=[2800] policy=[0;w=3600] retry-after=[2800]",
			rateHeaders(serve(h, request(client))))
	}
	assert.Zero(t, a.calls.Load())
}

func TestKeysAreIsolated(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	tests := []struct {
		name string
		key  httplimit.KeyFunc
		a, b *http.Request
	}{
		{"client IPs", nil, request("198.51.100.1:1000"), request("198.51.100.2:1000")},
		{"IPv6 clients", nil, request("[2001:db8::1]:1000"), request("[2001:db8::2]:1000")},
		{"IPv6 networks", httplimit.ClientIPWith(httplimit.ClientIPConfig{GroupIPv6: true}),
			request("[2001:db8:0:1::1]:1000"), request("[2001:db8:0:2::1]:1000")},
		{"header values", httplimit.Header("X-Api-Key"),
			request(client, "X-Api-Key: a"), request(client, "X-Api-Key: b")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, a := handler(t, httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 1,
				Key: tt.key, IDPrefix: "http:" + t.Name() + ":"})
			assert.Equal(t, http.StatusOK, serve(h, tt.a).Code, "a's first")
			assert.Equal(t, http.StatusOK, serve(h, tt.b).Code, "b's first")
			assert.Equal(t, http.StatusTooManyRequests, serve(h, tt.a).Code, "a's second")
			assert.Equal(t, http.StatusTooManyRequests, serve(h, tt.b).Code, "b's second")
			assert.Equal(t, int64(2), a.calls.Load())
		})
	}
}

func TestIPv6ClientsOfOneNetworkShareALimitWhenGrouped(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	h, _ := handler(t, httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 1,
		Key: httplimit.ClientIPWith(httplimit.ClientIPConfig{GroupIPv6: true})})
	assert.Equal(t, http.StatusOK, serve(h, request("[2001:db8:0:1::1]:1000")).Code)
	assert.Equal(t, http.StatusTooManyRequests, serve(h, request("[2001:db8:0:1:ffff::2]:1000")).Code,
		"another address of the same /64")
}

func TestForgedForwardingHeadersDoNotEscapeTheLimit(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	h, a := handler(t, httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 1,
		Key: httplimit.ClientIP(proxies)})

	// A client talking to the server directly: its headers are ignored.
	assert.Equal(t, http.StatusOK, serve(h, request(client, "X-Forwarded-For: 198.51.100.1")).Code)
	for i, forged := range []string{"X-Forwarded-For: 198.51.100.2", "X-Forwarded-For: 10.0.0.1",
		"X-Real-IP: 198.51.100.3", "Forwarded: for=198.51.100.4"} {
		assert.Equal(t, http.StatusTooManyRequests, serve(h, request(client, forged)).Code, "forged %d: %s", i, forged)
	}

	// Through a trusted proxy, a client that prepends addresses still gets
	// the address the proxy appended.
	viaProxy := func(forged string) *http.Request {
		return request(proxy, "X-Forwarded-For: "+forged+", 198.51.100.50")
	}
	assert.Equal(t, http.StatusOK, serve(h, viaProxy("1.1.1.1")).Code)
	assert.Equal(t, http.StatusTooManyRequests, serve(h, viaProxy("1.1.1.2")).Code)
	// Another client through the same proxy has its own limit.
	assert.Equal(t, http.StatusOK, serve(h, request(proxy, "X-Forwarded-For: 198.51.100.51")).Code)
	assert.Equal(t, int64(3), a.calls.Load())
}

func TestConcurrentRequestsAllowExactlyTheLimit(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	h, a := handler(t, httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 10,
		Timeout: waitLong}) // the race detector and 50 callers on one connection
	var wg sync.WaitGroup
	var denied atomic.Int64
	for range 50 {
		wg.Go(func() {
			if serve(h, request(client)).Code == http.StatusTooManyRequests {
				denied.Add(1)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(10), a.calls.Load())
	assert.Equal(t, int64(40), denied.Load())
}

// errorLines counts the middleware's backend error lines.
const errorMsg = "httplimit: rate limit backend error"

func TestBackendErrorPolicies(t *testing.T) {
	for _, policy := range []httplimit.ErrorPolicy{httplimit.FailOpen, httplimit.FailClosed} {
		t.Run(policy.String(), func(t *testing.T) {
			srv := redistest.New(t)
			f := start(t, srv, hammerredis.Options{HealthCheckInterval: 20 * time.Millisecond})
			log := logtest.New()
			var handled error
			h, a := handler(t, httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 1,
				OnError: policy, Logger: log.Logger(),
				ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
					handled = err
					httplimit.DefaultErrorHandler(w, r, err)
				}})
			assert.Equal(t, http.StatusOK, serve(h, request(client)).Code)

			srv.Kill()
			f.blog.WaitCount(t, "connection to redis lost", 1, waitLong)
			w := serve(h, request(client))
			switch policy {
			case httplimit.FailOpen:
				assert.Equal(t, "200 limit=- remaining=- reset=- policy=- retry-after=-", rateHeaders(w))
				assert.Equal(t, int64(2), a.calls.Load(), "let through, though over the limit")
				assert.NoError(t, handled)
			case httplimit.FailClosed:
				assert.Equal(t, "503 limit=- remaining=- reset=- policy=- retry-after=[1]", rateHeaders(w))
				assert.Equal(t, "Service Unavailable: the rate limiter is unavailable\n", w.Body.String())
				assert.Equal(t, int64(1), a.calls.Load())
				assert.ErrorIs(t, handled, httplimit.ErrUnavailable)
				assert.ErrorIs(t, handled, hammerredis.ErrClosed)
			}
			require.Equal(t, 1, log.Count(errorMsg), "%s", log)
			assert.Contains(t, log.String(), "not connected to redis")
			assert.Contains(t, log.String(), "policy="+policy.String())
		})
	}
}

func TestErrorLogIsThrottledDuringAnOutageAndRecoveryIsLogged(t *testing.T) {
	srv := redistest.New(t)
	srv.Kill() // a port where nothing listens, until Restart
	f := start(t, srv, hammerredis.Options{}, true)
	log := logtest.New()
	h, a := handler(t, httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 100, Logger: log.Logger()})

	begin := time.Now()
	const n = 200
	for range n {
		assert.Equal(t, http.StatusOK, serve(h, request(client)).Code)
	}
	elapsed := time.Since(begin)
	assert.Equal(t, int64(n), a.calls.Load())
	lines := log.Count(errorMsg)
	assert.GreaterOrEqual(t, lines, 1)
	// One line for the first error, then at most one a second.
	assert.LessOrEqual(t, lines, 1+int(elapsed/time.Second), "%d requests in %v:\n%s", n, elapsed, log)
	t.Logf("%d requests failed open in %v, logged in %d lines", n, elapsed, lines)

	require.NoError(t, srv.Restart())
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	require.NoError(t, f.b.WaitConnected(ctx))
	w := serve(h, request(client))
	assert.Equal(t, "200 limit=[100] remaining=[99] reset=[40] policy=[100;w=60] retry-after=-", rateHeaders(w))
	assert.Equal(t, 1, log.Count("httplimit: rate limit backend recovered"), "%s", log)
	assert.Contains(t, log.String(), fmt.Sprintf("errors=%d", n))
	serve(h, request(client))
	assert.Equal(t, 1, log.Count("httplimit: rate limit backend recovered"), "logged once")
}

func TestHungRedisAddsAtMostTheTimeout(t *testing.T) {
	srv := redistest.New(t)
	f := start(t, srv, hammerredis.Options{
		RedixConfig: &hammerredis.RedisConfig{ReadTimeout: 300 * time.Millisecond, ConnectTimeout: 300 * time.Millisecond},
	})
	open, _ := handler(t, httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 10,
		Timeout: 50 * time.Millisecond, Logger: logtest.New().Logger()})
	closed, _ := handler(t, httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 10,
		Timeout: 50 * time.Millisecond, OnError: httplimit.FailClosed, Logger: logtest.New().Logger()})
	require.NoError(t, srv.Signal(syscall.SIGSTOP))
	t.Cleanup(func() { srv.Signal(syscall.SIGCONT) })

	for i := range 4 {
		begin := time.Now()
		assert.Equal(t, http.StatusOK, serve(open, request(client)).Code, "fail open %d", i)
		assert.Equal(t, http.StatusServiceUnavailable, serve(closed, request(client)).Code, "fail closed %d", i)
		took := time.Since(begin)
		assert.Less(t, took, 2*time.Second, "two requests with a 50ms timeout took %v", took)
	}
}

func TestClientThatLeftIsNotAnOutage(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	log := logtest.New()
	h, _ := handler(t, httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 10,
		OnError: httplimit.FailClosed, Logger: log.Logger()})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := serve(h, request(client).WithContext(ctx))
	assert.NotEqual(t, http.StatusServiceUnavailable, w.Code)
	assert.Empty(t, log.Lines())
}

func TestRequestsWithoutAKey(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	empty := func(*http.Request) (string, error) { return "", nil }
	tests := []struct {
		name    string
		key     httplimit.KeyFunc
		r       *http.Request
		wantErr string
	}{
		{"missing header", httplimit.Header("X-Api-Key"), request(client), "missing header X-Api-Key"},
		{"unix socket peer", nil, request("@"), "is not an IP address"},
		{"empty key", empty, request(client), "empty key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, a := handler(t, httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 10, Key: tt.key})
			w := serve(h, tt.r)
			assert.Equal(t, "400 limit=- remaining=- reset=- policy=- retry-after=-", rateHeaders(w))
			assert.Equal(t, "Bad Request: the request cannot be rate limited\n", w.Body.String())
			assert.Zero(t, a.calls.Load())

			var got error
			h, _ = handler(t, httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 10, Key: tt.key,
				ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
					got = err
					w.WriteHeader(http.StatusUnauthorized)
				}})
			assert.Equal(t, http.StatusUnauthorized, serve(h, tt.r).Code)
			assert.ErrorIs(t, got, httplimit.ErrNoKey)
			assert.ErrorContains(t, got, tt.wantErr)
		})
	}

	// With a fallback, the request is limited by IP instead.
	h, a := handler(t, httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 10,
		Key: httplimit.FirstOf(httplimit.Header("X-Api-Key"), httplimit.ClientIP(nil))})
	assert.Equal(t, http.StatusOK, serve(h, request(client)).Code)
	assert.Equal(t, int64(1), a.calls.Load())
}

// TestKeyTheBackendRefusesIsAMissingKey: a key the backend refuses as
// invalid (an id over 1 MiB) is the client's doing, not an outage: 400 Bad
// Request whatever the error policy, the next handler not called and no
// backend error logged.
func TestKeyTheBackendRefusesIsAMissingKey(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	huge := strings.Repeat("k", protocol.MaxIDBytes+1)
	key := func(*http.Request) (string, error) { return huge, nil }
	for _, policy := range []httplimit.ErrorPolicy{httplimit.FailOpen, httplimit.FailClosed} {
		t.Run(policy.String(), func(t *testing.T) {
			log := logtest.New()
			var handled error
			h, a := handler(t, httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 10, Key: key,
				OnError: policy, Logger: log.Logger(),
				ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
					handled = err
					httplimit.DefaultErrorHandler(w, r, err)
				}})
			w := serve(h, request(client))
			assert.Equal(t, "400 limit=- remaining=- reset=- policy=- retry-after=-", rateHeaders(w))
			assert.Equal(t, "Bad Request: the request cannot be rate limited\n", w.Body.String())
			assert.Zero(t, a.calls.Load(), "never let through")
			assert.ErrorIs(t, handled, httplimit.ErrNoKey)
			assert.ErrorIs(t, handled, hammerredis.ErrInvalid)
			assert.Zero(t, log.Count(errorMsg), "not logged as a backend error: %s", log)
		})
	}
}

func TestDeniedHandler(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	denied := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, ok := httplimit.ResultFrom(r.Context())
		if !ok {
			t.Error("no result in the denied handler's context")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprintf(w, `{"count":%d,"retry_after_ms":%d}`, res.Count, res.ResetAfter.Milliseconds())
	})
	h, _ := handler(t, httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 1, DeniedHandler: denied})
	serve(h, request(client))
	w := serve(h, request(client))
	assert.Equal(t, "429 limit=[1] remaining=[0] reset=[40] policy=[1;w=60] retry-after=[40]", rateHeaders(w))
	assert.Equal(t, `{"count":2,"retry_after_ms":39750}`, w.Body.String())
}

func TestSkip(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	h, a := handler(t, httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 1,
		Skip: func(r *http.Request) bool { return r.URL.Path == "/healthz" }})
	for range 3 {
		r := request(client)
		r.URL.Path = "/healthz"
		assert.Equal(t, "200 limit=- remaining=- reset=- policy=- retry-after=-", rateHeaders(serve(h, r)))
	}
	assert.Equal(t, http.StatusOK, serve(h, request(client)).Code, "skipped requests were not counted")
	assert.Equal(t, int64(4), a.calls.Load())
}

func TestIDPrefixSeparatesLimits(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	login, _ := handler(t, httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 1, IDPrefix: "http:login:"})
	api, _ := handler(t, httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 1})
	assert.Equal(t, http.StatusOK, serve(login, request(client)).Code)
	assert.Equal(t, http.StatusOK, serve(api, request(client)).Code)

	// The default prefix: the key's backend id is "http:ip:<addr>".
	ins, err := f.lim.InspectBucket(context.Background(), "http:ip:203.0.113.7", time.Minute, 1)
	require.NoError(t, err)
	assert.Equal(t, int64(1), ins.Count)
	ins, err = f.lim.InspectBucket(context.Background(), "http:login:ip:203.0.113.7", time.Minute, 1)
	require.NoError(t, err)
	assert.Equal(t, int64(1), ins.Count)
}

func TestNewValidatesTheConfig(t *testing.T) {
	lim := hammer.New(nil) // never called
	tests := []struct {
		name string
		cfg  httplimit.Config
		want string
	}{
		{"no limiter", httplimit.Config{Scale: time.Minute, Limit: 1}, "Config.Limiter is required"},
		{"no scale", httplimit.Config{Limiter: lim, Limit: 1}, "Config.Scale 0s must be a whole number of milliseconds"},
		{"negative scale", httplimit.Config{Limiter: lim, Scale: -time.Second, Limit: 1}, "Config.Scale -1s"},
		{"sub-millisecond scale", httplimit.Config{Limiter: lim, Scale: 1500 * time.Microsecond, Limit: 1}, "Config.Scale 1.5ms"},
		{"negative limit", httplimit.Config{Limiter: lim, Scale: time.Minute, Limit: -1}, "Config.Limit -1 must not be negative"},
		{"unknown policy", httplimit.Config{Limiter: lim, Scale: time.Minute, OnError: 7},
			"Config.OnError ErrorPolicy(7) is neither FailOpen nor FailClosed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := httplimit.New(tt.cfg)
			assert.Nil(t, mw)
			assert.ErrorIs(t, err, hammerredis.ErrInvalid)
			assert.ErrorContains(t, err, tt.want)
		})
	}
	_, err := httplimit.New(httplimit.Config{Limiter: lim, Scale: time.Millisecond})
	assert.NoError(t, err, "the smallest valid config")
}

func TestErrorsAreDistinct(t *testing.T) {
	assert.False(t, errors.Is(httplimit.ErrNoKey, httplimit.ErrUnavailable))
	assert.Equal(t, "fail-open", httplimit.FailOpen.String())
	assert.Equal(t, "fail-closed", httplimit.FailClosed.String())
}
