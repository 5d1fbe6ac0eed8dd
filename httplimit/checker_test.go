package httplimit_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/hammer7"
	"github.com/hammer-go/hammerredis/httplimit"
	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/memory"
	"github.com/hammer-go/hammerredis/protocol"
)

// stubBackend is a hammer.CheckBackend that fails every check with err, or
// when err is nil decides each Hammer 6 limit by a count of its own.
type stubBackend struct {
	err   error
	calls atomic.Int64

	mu     sync.Mutex
	counts map[string]int64
}

func (b *stubBackend) Check(ctx context.Context, c protocol.Check) (protocol.CheckReply, error) {
	b.calls.Add(1)
	if b.err != nil {
		return protocol.CheckReply{}, b.err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.counts == nil {
		b.counts = map[string]int64{}
	}
	var rep protocol.CheckReply
	for _, l := range c.Limits {
		bucket, toNext := l.Bucket6(c.Now)
		k := l.ID + ":" + strconv.FormatInt(bucket, 10)
		b.counts[k] += l.Cost
		h := protocol.HitReply{Allowed: b.counts[k] <= l.Policy.Limit, Count: b.counts[k]}
		if !h.Allowed {
			h.RetryAfterMs = toNext
		}
		rep.Decisions = append(rep.Decisions, h)
	}
	return rep, nil
}

// newMemory returns a memory backend closed at the end of the test.
func newMemory(t *testing.T) *memory.Backend {
	t.Helper()
	b, err := memory.New(memory.Options{ExpiryMs: 3_600_000, CleanupInterval: -1})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

// newChecker returns a checker of cfg on b, reading clock.
func newChecker(t *testing.T, b hammer.CheckBackend, clock *clock, cfg hammer.Config) *hammer.Checker {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = logtest.New().Logger()
	}
	c, err := hammer.NewChecker(b, cfg)
	require.NoError(t, err)
	return c.WithClock(clock.now)
}

// decisions is a next handler that keeps the Decision of every request it
// gets, and counts those without one.
type decisions struct {
	mu        sync.Mutex
	got       []hammer.Decision
	uncounted int
}

func (d *decisions) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := httplimit.ResultFrom(r.Context()); ok {
		panic("ResultFrom found a Hammer 6 result on a Checker's request")
	}
	dec, ok := httplimit.CheckResultFrom(r.Context())
	if !ok {
		d.uncounted++
	} else {
		d.got = append(d.got, dec)
	}
	io.WriteString(w, "ok")
}

func (d *decisions) last() hammer.Decision {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.got[len(d.got)-1]
}

// draftHandler builds the middleware from cfg, in the default style,
// around a new app.
func draftHandler(t *testing.T, cfg httplimit.Config) (http.Handler, *app) {
	t.Helper()
	mw, err := httplimit.New(cfg)
	require.NoError(t, err)
	a := &app{}
	return mw(a), a
}

// getWithKey sends a GET with X-Api-Key key (none when "") through a real
// client, and returns its status and fields as draftFields shows them.
func getWithKey(t *testing.T, srv *httptest.Server, key string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("X-Api-Key", key)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return draftFields(t, resp.StatusCode, resp.Header)
}

// twoKeyLimits are 3 a minute per API key and 5 a minute per client IP.
var twoKeyLimits = hammer.Config{Limits: []hammer.Limit{
	{Name: "per-key", Scale: time.Minute, Max: 3},
	{Name: "per-ip", Scale: time.Minute, Max: 5},
}}

// checkTwoKeys drives a real server with a real client through a checker
// of twoKeyLimits on b: RateLimit names the limit closest to denying, or
// the one that denies, and RateLimit-Policy lists both.
func checkTwoKeys(t *testing.T, b hammer.CheckBackend) {
	clock := newClock(t0) // 20.25s into a minute: 39.75s left, t=40
	checker := newChecker(t, b, clock, twoKeyLimits)
	mw, err := httplimit.New(httplimit.Config{Checker: checker,
		Keys: []httplimit.KeyFunc{httplimit.Header("X-Api-Key"), httplimit.ClientIP(nil)}})
	require.NoError(t, err)
	next := &decisions{}
	srv := httptest.NewServer(mw(next))
	defer srv.Close()

	const policy = "policy=[per-key q=3 w=60, per-ip q=5 w=60]"
	steps := []struct{ key, want string }{
		{"a", "200 " + policy + " ratelimit=[per-key r=2 t=40] retry-after=-"},
		{"a", "200 " + policy + " ratelimit=[per-key r=1 t=40] retry-after=-"},
		{"a", "200 " + policy + " ratelimit=[per-key r=0 t=40] retry-after=-"},
		{"a", "429 " + policy + " ratelimit=[per-key r=0 t=40] retry-after=40"},
		// Another key from the same IP: its own per-key limit, but the
		// IP's is now the closer (Hammer 6 counted a's denied request).
		{"b", "200 " + policy + " ratelimit=[per-ip r=0 t=40] retry-after=-"},
		{"c", "429 " + policy + " ratelimit=[per-ip r=0 t=40] retry-after=40"},
	}
	for i, s := range steps {
		assert.Equal(t, s.want, getWithKey(t, srv, s.key), "step %d", i)
	}
	// The next handler saw each allowed request's decision.
	require.Len(t, next.got, 4)
	d := next.last()
	assert.True(t, d.Allowed)
	assert.False(t, d.Degraded)
	assert.Equal(t, []string{"per-key", "per-ip"}, []string{d.Limits[0].Name, d.Limits[1].Name})
	assert.Equal(t, []int64{2, 0}, []int64{d.Limits[0].Remaining, d.Limits[1].Remaining})

	// A request without an API key is not counted: 400, none of the fields.
	assert.Equal(t, "400 policy=- ratelimit=- retry-after=-", getWithKey(t, srv, ""))
	assert.Zero(t, next.uncounted)
}

func TestCheckerWithTwoKeysOnMemory(t *testing.T) { checkTwoKeys(t, newMemory(t)) }

func TestCheckerWithTwoKeysOnRedis(t *testing.T) {
	checkTwoKeys(t, start(t, nil, hammerredis.Options{}).b)
}

// TestCheckerRetryAfterIsTheLongestWait: when several limits deny, Retry-After
// is the longest wait, rounded up to a second, and RateLimit names that
// limit with the same t.
func TestCheckerRetryAfterIsTheLongestWait(t *testing.T) {
	clock := newClock(time.UnixMilli(1_700_000_000_250)) // 0.25s into a 10s window, 20.25s into a minute
	checker := newChecker(t, newMemory(t), clock, hammer.Config{Limits: []hammer.Limit{
		{Name: "short", Scale: 10 * time.Second, Max: 1},
		{Name: "long", Scale: time.Minute, Max: 1},
		{Name: "roomy", Scale: time.Hour, Max: 100},
	}})
	h, _ := draftHandler(t, httplimit.Config{Checker: checker})
	serve(h, request(client))
	w := serve(h, request(client))
	assert.Equal(t, `"long";r=0;t=40`, w.Header().Get("RateLimit"))
	assert.Equal(t, "40", w.Header().Get("Retry-After"), "39.75s rounded up, not short's 9.75s")

	// The short window alone denies, 1ms before it ends: a second.
	clock.set(time.UnixMilli(1_700_000_049_999))
	checker = newChecker(t, newMemory(t), clock, hammer.Config{Limits: []hammer.Limit{
		{Name: "short", Scale: 10 * time.Second, Max: 1},
		{Name: "roomy", Scale: time.Hour, Max: 100},
	}})
	h, _ = draftHandler(t, httplimit.Config{Checker: checker})
	assert.Equal(t, http.StatusOK, serve(h, request(client)).Code)
	w = serve(h, request(client))
	assert.Equal(t, `"short";r=0;t=1`, w.Header().Get("RateLimit"))
	assert.Equal(t, "1", w.Header().Get("Retry-After"))
}

// TestCheckerShadowLimits: a Shadow limit is counted and shown, marked
// hammer-shadow in RateLimit-Policy, but never denies, and RateLimit names
// it only when every limit is Shadow.
func TestCheckerShadowLimits(t *testing.T) {
	clock := newClock(t0)
	b := newMemory(t)
	checker := newChecker(t, b, clock, hammer.Config{Limits: []hammer.Limit{
		{Name: "current", Scale: time.Minute, Max: 100},
		{Name: "planned", Scale: time.Minute, Max: 1, Shadow: true},
	}})
	h, a := draftHandler(t, httplimit.Config{Checker: checker})
	for i := range 3 {
		w := serve(h, request(client))
		assert.Equal(t, http.StatusOK, w.Code, "request %d: the shadow limit never denies", i)
		assert.Equal(t, `"current";q=100;w=60, "planned";q=1;w=60;hammer-shadow`, w.Header().Get("RateLimit-Policy"))
		assert.Equal(t, `"current";r=`+[]string{"99", "98", "97"}[i]+`;t=40`, w.Header().Get("RateLimit"),
			"request %d: the closest enforced limit, not the shadow one", i)
		items := parseField(t, w.Header().Values("RateLimit-Policy"))
		assert.Equal(t, true, items[1].params["hammer-shadow"])
		assert.NotContains(t, items[0].params, "hammer-shadow")
	}
	assert.Equal(t, int64(3), a.calls.Load())

	// Every limit Shadow: RateLimit names the closest, marked.
	checker = newChecker(t, b, clock, hammer.Config{Limits: []hammer.Limit{
		{Name: "dry-a", Scale: time.Minute, Max: 5, Shadow: true},
		{Name: "dry-b", Scale: time.Minute, Max: 1, Shadow: true},
	}})
	h, _ = draftHandler(t, httplimit.Config{Checker: checker})
	serve(h, request(client))
	w := serve(h, request(client))
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, `"dry-b";r=0;t=40;hammer-shadow`, w.Header().Get("RateLimit"))
	assert.Empty(t, w.Header().Get("Retry-After"))

	// The legacy style lists it too; X-RateLimit has no place for it.
	h, _ = handler(t, httplimit.Config{Checker: checker, Headers: httplimit.LegacyHeaders, IDPrefix: "legacy:"})
	w = serve(h, request(client))
	assert.Equal(t, "5;w=60;hammer-shadow, 1;w=60;hammer-shadow", w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, "1", w.Header().Get("RateLimit-Limit"))
}

// TestCheckerDegraded: while Redis is down, the checker's memory Fallback
// decides at FallbackShare of each limit; the middleware serves those
// decisions as any other, the lowered quota in RateLimit-Policy, and
// CheckResultFrom says Degraded.
func TestCheckerDegraded(t *testing.T) {
	srv := redistest.New(t)
	f := start(t, srv, hammerredis.Options{HealthCheckInterval: 20 * time.Millisecond})
	checker := newChecker(t, f.b, f.clock, hammer.Config{
		Limits:   []hammer.Limit{{Name: "per-minute", Scale: time.Minute, Max: 4}},
		Fallback: newMemory(t), FallbackShare: 0.5, ProbeEvery: time.Hour,
	})
	log := logtest.New()
	next := &decisions{}
	mw, err := httplimit.New(httplimit.Config{Checker: checker, OnError: httplimit.FailClosed, Logger: log.Logger()})
	require.NoError(t, err)
	h := mw(next)
	w := serve(h, request(client))
	assert.Equal(t, "200 policy=[per-minute q=4 w=60] ratelimit=[per-minute r=3 t=40] retry-after=-", draftFields(t, w.Code, w.Header()))
	assert.False(t, next.last().Degraded)

	srv.Kill()
	f.blog.WaitCount(t, "connection to redis lost", 1, waitLong)
	steps := []string{
		"200 policy=[per-minute q=2 w=60] ratelimit=[per-minute r=1 t=40] retry-after=-",
		"200 policy=[per-minute q=2 w=60] ratelimit=[per-minute r=0 t=40] retry-after=-",
		"429 policy=[per-minute q=2 w=60] ratelimit=[per-minute r=0 t=40] retry-after=40",
	}
	for i, want := range steps {
		w := serve(h, request(client))
		assert.Equal(t, want, draftFields(t, w.Code, w.Header()), "step %d", i)
	}
	require.Len(t, next.got, 3)
	d := next.last()
	assert.True(t, d.Degraded, "the decision says the fallback made it")
	assert.Equal(t, int64(2), d.Limits[0].Quota)
	assert.Zero(t, log.Count(errorMsg), "a degraded decision is no backend error for the middleware: %s", log)
}

// TestCheckerBackendErrorPolicies: without a Fallback, a failed check is
// handled by OnError, as with the other limiters.
func TestCheckerBackendErrorPolicies(t *testing.T) {
	boom := errors.New("boom")
	for _, policy := range []httplimit.ErrorPolicy{httplimit.FailOpen, httplimit.FailClosed} {
		t.Run(policy.String(), func(t *testing.T) {
			b := &stubBackend{err: boom}
			log := logtest.New()
			var handled error
			next := &decisions{}
			mw, err := httplimit.New(httplimit.Config{Checker: newChecker(t, b, newClock(t0), twoKeyLimits),
				OnError: policy, Logger: log.Logger(),
				ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
					handled = err
					httplimit.DefaultErrorHandler(w, r, err)
				}})
			require.NoError(t, err)
			w := serve(mw(next), request(client))
			assert.Equal(t, int64(1), b.calls.Load())
			switch policy {
			case httplimit.FailOpen:
				assert.Equal(t, "200 policy=- ratelimit=- retry-after=-", draftFields(t, w.Code, w.Header()))
				assert.Equal(t, 1, next.uncounted, "let through, without a decision")
				assert.NoError(t, handled)
			case httplimit.FailClosed:
				assert.Equal(t, "503 policy=- ratelimit=- retry-after=1", draftFields(t, w.Code, w.Header()))
				assert.Zero(t, next.uncounted)
				assert.ErrorIs(t, handled, httplimit.ErrUnavailable)
				assert.ErrorIs(t, handled, boom)
			}
			assert.Equal(t, 1, log.Count(errorMsg), "%s", log)
		})
	}
}

// TestCheckerKeysThatCannotBeCounted: a request lacking one limit's key,
// or with a key the backend refuses, is answered 400 without a check.
func TestCheckerKeysThatCannotBeCounted(t *testing.T) {
	b := &stubBackend{}
	huge := func(*http.Request) (string, error) { return strings.Repeat("k", protocol.MaxIDBytes+1), nil }
	for _, tt := range []struct {
		name  string
		keys  []httplimit.KeyFunc
		calls int64
		want  string
	}{
		{"missing header", []httplimit.KeyFunc{httplimit.Header("X-Api-Key"), httplimit.ClientIP(nil)}, 0, "missing header X-Api-Key"},
		{"empty key", []httplimit.KeyFunc{httplimit.ClientIP(nil), func(*http.Request) (string, error) { return "", nil }}, 0, "empty key"},
		{"too long", []httplimit.KeyFunc{httplimit.ClientIP(nil), huge}, 0, "invalid argument"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var handled error
			next := &decisions{}
			mw, err := httplimit.New(httplimit.Config{Checker: newChecker(t, b, newClock(t0), twoKeyLimits), Keys: tt.keys,
				OnError: httplimit.FailOpen,
				ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
					handled = err
					httplimit.DefaultErrorHandler(w, r, err)
				}})
			require.NoError(t, err)
			w := serve(mw(next), request(client))
			assert.Equal(t, "400 policy=- ratelimit=- retry-after=-", draftFields(t, w.Code, w.Header()))
			assert.ErrorIs(t, handled, httplimit.ErrNoKey)
			assert.ErrorContains(t, handled, tt.want)
			assert.Zero(t, next.uncounted, "never let through")
			assert.Zero(t, b.calls.Load(), "nothing sent to the backend")
		})
	}
}

func TestNewValidatesACheckerConfig(t *testing.T) {
	checker := newChecker(t, &stubBackend{}, newClock(t0), twoKeyLimits)
	slowFallback := twoKeyLimits
	slowFallback.Fallback, slowFallback.FallbackShare, slowFallback.FallbackAfter = &stubBackend{}, 1, 200*time.Millisecond
	late := newChecker(t, &stubBackend{}, newClock(t0), slowFallback)
	l7, err := hammer7.New(&backend7{}, hammer7.FixWindow{Prefix: "F", Window: time.Minute, Limit: 1})
	require.NoError(t, err)
	ip := httplimit.ClientIP(nil)
	for _, tt := range []struct {
		name string
		cfg  httplimit.Config
		want string
	}{
		{"checker and limiter", httplimit.Config{Checker: checker, Limiter: hammer.New(nil)},
			"Config.Checker and Config.Limiter are both set"},
		{"all three", httplimit.Config{Checker: checker, Limiter: hammer.New(nil), Hammer7: l7},
			"Config.Checker, Config.Limiter and Config.Hammer7 are all set"},
		{"a scale", httplimit.Config{Checker: checker, Scale: time.Minute}, "with Config.Checker they must be zero"},
		{"too few keys", httplimit.Config{Checker: checker, Keys: []httplimit.KeyFunc{ip}},
			"1 Config.Keys for the checker's 2 limits"},
		{"too many keys", httplimit.Config{Checker: checker, Keys: []httplimit.KeyFunc{ip, ip, ip}},
			"3 Config.Keys for the checker's 2 limits"},
		{"a nil key", httplimit.Config{Checker: checker, Keys: []httplimit.KeyFunc{ip, nil}}, "Config.Keys[1] is nil"},
		{"key and keys", httplimit.Config{Checker: checker, Key: ip, Keys: []httplimit.KeyFunc{ip, ip}},
			"Config.Key and Config.Keys are both set"},
		{"keys without a checker", httplimit.Config{Limiter: hammer.New(nil), Scale: time.Minute, Keys: []httplimit.KeyFunc{ip}},
			"Config.Keys is for Config.Checker"},
		{"a timeout before the fallback", httplimit.Config{Checker: late}, // Timeout 100ms by default
			"Config.Timeout 100ms ends before the Checker's FallbackAfter 200ms"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := httplimit.New(tt.cfg)
			assert.Nil(t, mw)
			assert.ErrorIs(t, err, hammerredis.ErrInvalid)
			assert.ErrorContains(t, err, tt.want)
		})
	}
	_, err = httplimit.New(httplimit.Config{Checker: checker})
	assert.NoError(t, err, "one key for every limit: the client's IP")
}

// TestCheckerHammer7Limits: a Checker's Hammer 7 limits send every field,
// t on allowed responses too. A denied token bucket's t is the wait for its
// next token (Retry-After), not the time until it is full. In a synctest
// bubble: the memory backend's clock and the checker's are the bubble's.
func TestCheckerHammer7Limits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := memory.New(memory.Options{ExpiryMs: 60_000, CleanupInterval: -1})
		require.NoError(t, err)
		defer b.Close()
		checker, err := hammer.NewChecker(b, hammer.Config{Limits: []hammer.Limit{
			{Name: "tokens", Policy: hammer7.TokenBucket{Prefix: "TB", RefillPerSecond: 1, Capacity: 3}},
			{Name: "sliding", Policy: hammer7.SlidingWindow{Prefix: "SW", Window: time.Minute, Limit: 100}},
		}, Logger: logtest.New().Logger()})
		require.NoError(t, err)
		h, _ := draftHandler(t, httplimit.Config{Checker: checker})
		const policy = "policy=[tokens q=3 w=3, sliding q=100 w=60]"
		for i, want := range []string{
			"200 " + policy + " ratelimit=[tokens r=2 t=1] retry-after=-",
			"200 " + policy + " ratelimit=[tokens r=1 t=2] retry-after=-",
			"200 " + policy + " ratelimit=[tokens r=0 t=3] retry-after=-",
			"429 " + policy + " ratelimit=[tokens r=0 t=1] retry-after=1",
		} {
			w := serve(h, request(client))
			assert.Equal(t, want, draftFields(t, w.Code, w.Header()), "step %d", i)
		}
	})
}
