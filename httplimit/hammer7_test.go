package httplimit_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/hammer7"
	"github.com/hammer-go/hammerredis/httplimit"
	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/memory"
	"github.com/hammer-go/hammerredis/protocol"
)

// Tests of the middleware on a Hammer 7 limiter. Most run in a synctest
// bubble on package memory's backend: its clock and the limiter's are the
// bubble's, which starts at 2000-01-01T00:00:00Z (a whole minute) and moves
// only with time.Sleep.

// newLimiter7 returns a limiter enforcing p in a new memory backend, closed
// at the end of the test. Call it inside the bubble that uses it.
func newLimiter7(t *testing.T, p hammer7.Policy) *hammer7.Limiter {
	t.Helper()
	b, err := memory.New(memory.Options{ExpiryMs: 60_000, CleanupInterval: -1})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	l, err := hammer7.New(b, p)
	require.NoError(t, err)
	return l
}

// app7 is the next handler of a Hammer 7 middleware: it counts its calls,
// and those without a hammer7.Result in their context (let through by
// FailOpen), and keeps the latest result.
type app7 struct {
	calls, uncounted atomic.Int64
	last             atomic.Pointer[hammer7.Result]
}

func (a *app7) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.calls.Add(1)
	if _, ok := httplimit.ResultFrom(r.Context()); ok {
		panic("ResultFrom found a Hammer 6 result on a Hammer 7 request")
	}
	if res, ok := httplimit.Hammer7ResultFrom(r.Context()); ok {
		a.last.Store(&res)
	} else {
		a.uncounted.Add(1)
		a.last.Store(nil)
	}
	fmt.Fprint(w, "ok")
}

// handler7 is handler for a Hammer 7 middleware.
func handler7(t *testing.T, cfg httplimit.Config) (http.Handler, *app7) {
	t.Helper()
	if cfg.Headers == httplimit.DraftHeaders {
		cfg.Headers = httplimit.LegacyHeaders
	}
	mw, err := httplimit.New(cfg)
	require.NoError(t, err)
	a := &app7{}
	return mw(a), a
}

func TestHammer7HeadersPerAlgorithm(t *testing.T) {
	type step struct {
		sleep time.Duration // before the request
		want  string
	}
	for _, tt := range []struct {
		name   string
		policy hammer7.Policy
		steps  []step
	}{
		{"fix_window", hammer7.FixWindow{Prefix: "F", Window: time.Minute, Limit: 2}, []step{
			{0, "200 limit=[2] remaining=[1] reset=- policy=- retry-after=-"},
			{0, "200 limit=[2] remaining=[0] reset=- policy=- retry-after=-"},
			{20 * time.Second, "429 limit=[2] remaining=[0] reset=[40] policy=- retry-after=[40]"},
			{39_500 * time.Millisecond, "429 limit=[2] remaining=[0] reset=[1] policy=- retry-after=[1]"}, // 500ms, rounded up
			{500 * time.Millisecond, "200 limit=[2] remaining=[1] reset=- policy=- retry-after=-"},        // the next window
		}},
		{"sliding_window", hammer7.SlidingWindow{Prefix: "S", Window: 10 * time.Second, Limit: 2}, []step{
			{0, "200 limit=[2] remaining=[1] reset=- policy=- retry-after=-"},
			{3 * time.Second, "200 limit=[2] remaining=[0] reset=- policy=- retry-after=-"},
			// Until the oldest unit leaves, 10s after the first request.
			{0, "429 limit=[2] remaining=[0] reset=[7] policy=- retry-after=[7]"},
			{6500 * time.Millisecond, "429 limit=[2] remaining=[0] reset=[1] policy=- retry-after=[1]"},
			{500 * time.Millisecond, "200 limit=[2] remaining=[0] reset=- policy=- retry-after=-"},
			// Denied requests did not count: the second unit leaves at 13s.
			{2 * time.Second, "429 limit=[2] remaining=[0] reset=[1] policy=- retry-after=[1]"},
			{time.Second, "200 limit=[2] remaining=[0] reset=- policy=- retry-after=-"},
		}},
		{"leaky_bucket", hammer7.LeakyBucket{Prefix: "L", LeakPerSecond: 1, Capacity: 2}, []step{
			{0, "200 limit=[2] remaining=[1] reset=- policy=- retry-after=-"},
			{0, "200 limit=[2] remaining=[0] reset=- policy=- retry-after=-"},
			{250 * time.Millisecond, "429 limit=[2] remaining=[0] reset=[1] policy=- retry-after=[1]"},
			// One unit leaked at the next second: room for one request.
			{750 * time.Millisecond, "200 limit=[2] remaining=[0] reset=- policy=- retry-after=-"},
			{5 * time.Second, "200 limit=[2] remaining=[1] reset=- policy=- retry-after=-"}, // empty, then one
		}},
		{"token_bucket", hammer7.TokenBucket{Prefix: "T", RefillPerSecond: 1, Capacity: 3}, []step{
			{0, "200 limit=[3] remaining=[2] reset=- policy=- retry-after=-"},
			{0, "200 limit=[3] remaining=[1] reset=- policy=- retry-after=-"},
			{0, "200 limit=[3] remaining=[0] reset=- policy=- retry-after=-"},
			{100 * time.Millisecond, "429 limit=[3] remaining=[0] reset=[1] policy=- retry-after=[1]"},
			{900 * time.Millisecond, "200 limit=[3] remaining=[0] reset=- policy=- retry-after=-"}, // one token back
			{time.Hour, "200 limit=[3] remaining=[2] reset=- policy=- retry-after=-"},              // full, never more
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h, a := handler7(t, httplimit.Config{Hammer7: newLimiter7(t, tt.policy)})
				var allowed int64
				for i, s := range tt.steps {
					time.Sleep(s.sleep)
					w := serve(h, request(client))
					require.Equal(t, s.want, rateHeaders(w), "step %d at %v", i, time.Now().UTC())
					if w.Code == http.StatusOK {
						allowed++
						assert.Equal(t, "ok", w.Body.String())
						res := a.last.Load()
						require.NotNil(t, res, "step %d: no hammer7.Result in the next handler's context", i)
						assert.True(t, res.Allowed)
						assert.Equal(t, w.Header().Get("RateLimit-Remaining"), fmt.Sprint(res.Remaining))
					} else {
						assert.Equal(t, "Too Many Requests: rate limit exceeded\n", w.Body.String())
					}
					assert.Equal(t, allowed, a.calls.Load(), "step %d: calls of the next handler", i)
				}
			})
		})
	}
}

// TestHammer7Never: a request that can never be allowed (a window whose
// limit is 0) is a 429 without Retry-After nor RateLimit-Reset.
func TestHammer7Never(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got hammer7.Result
		denied := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			res, ok := httplimit.Hammer7ResultFrom(r.Context())
			assert.True(t, ok, "no hammer7.Result in the denied handler's context")
			got = res
			w.WriteHeader(http.StatusTooManyRequests)
		})
		h, a := handler7(t, httplimit.Config{DeniedHandler: denied,
			Hammer7: newLimiter7(t, hammer7.FixWindow{Prefix: "F", Window: time.Hour, Limit: 0})})
		for range 2 {
			assert.Equal(t, "429 limit=[0] remaining=[0] reset=- policy=- retry-after=-", rateHeaders(serve(h, request(client))))
			assert.True(t, got.Never)
			assert.False(t, got.Allowed)
		}
		assert.Zero(t, a.calls.Load())
	})
}

func TestHammer7DeniedHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		denied := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			res, ok := httplimit.Hammer7ResultFrom(r.Context())
			if !ok {
				t.Error("no hammer7.Result in the denied handler's context")
			}
			if _, ok := httplimit.ResultFrom(r.Context()); ok {
				t.Error("ResultFrom found a Hammer 6 result on a Hammer 7 request")
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprintf(w, `{"count":%d,"retry_after_ms":%d}`, res.Count, res.RetryAfter.Milliseconds())
		})
		h, _ := handler7(t, httplimit.Config{DeniedHandler: denied,
			Hammer7: newLimiter7(t, hammer7.TokenBucket{Prefix: "T", RefillPerSecond: 1, Capacity: 1})})
		serve(h, request(client))
		time.Sleep(250 * time.Millisecond)
		w := serve(h, request(client))
		assert.Equal(t, "429 limit=[1] remaining=[0] reset=[1] policy=- retry-after=[1]", rateHeaders(w))
		assert.Equal(t, `{"count":0,"retry_after_ms":750}`, w.Body.String())
	})
}

func TestHammer7KeysAndIDPrefix(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter7(t, hammer7.FixWindow{Prefix: "F", Window: time.Minute, Limit: 1})
		api, _ := handler7(t, httplimit.Config{Hammer7: l})
		login, _ := handler7(t, httplimit.Config{Hammer7: l, IDPrefix: "http:login:",
			Key: httplimit.FirstOf(httplimit.Header("X-Api-Key"), httplimit.ClientIP(nil))})
		assert.Equal(t, http.StatusOK, serve(api, request("198.51.100.1:1000")).Code)
		assert.Equal(t, http.StatusOK, serve(api, request("198.51.100.2:1000")).Code, "another client")
		assert.Equal(t, http.StatusTooManyRequests, serve(api, request("198.51.100.1:1000")).Code)
		assert.Equal(t, http.StatusOK, serve(login, request("198.51.100.1:1000")).Code, "another IDPrefix")
		assert.Equal(t, http.StatusOK, serve(login, request("198.51.100.1:1000", "X-Api-Key: k")).Code, "another key")

		// The limiter's id is IDPrefix + key.
		apiKey, err := httplimit.Header("X-Api-Key")(request(client, "X-Api-Key: k"))
		require.NoError(t, err)
		ctx := context.Background()
		for id, want := range map[string]int64{"http:ip:198.51.100.1": 2, "http:ip:198.51.100.2": 1,
			"http:login:ip:198.51.100.1": 1, "http:login:" + apiKey: 1, "http:" + apiKey: 0} {
			n, err := l.Get(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, want, n, "count of %s", id)
		}
	})
}

func TestHammer7ConcurrentRequestsAllowExactlyTheCapacity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, a := handler7(t, httplimit.Config{
			Hammer7: newLimiter7(t, hammer7.TokenBucket{Prefix: "T", RefillPerSecond: 1, Capacity: 10})})
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
	})
}

// backend7 is a hammer7.Backend whose hits fail with err, or wait for the
// caller's context when block is set.
type backend7 struct {
	err   atomic.Pointer[error]
	block bool
	hits  atomic.Int64
}

func (b *backend7) Hit(ctx context.Context, r protocol.Hit) (protocol.HitReply, error) {
	b.hits.Add(1)
	if b.block {
		<-ctx.Done()
		return protocol.HitReply{}, fmt.Errorf("%w: %w", protocol.ErrTimeout, ctx.Err())
	}
	if err := b.err.Load(); err != nil {
		return protocol.HitReply{}, *err
	}
	return protocol.HitReply{Allowed: true, Count: 1}, nil
}

func (b *backend7) Inc(context.Context, protocol.Inc) (int64, error) { return 0, nil }
func (b *backend7) Set(context.Context, protocol.Set) (int64, error) { return 0, nil }
func (b *backend7) Get(context.Context, protocol.Get) (int64, error) { return 0, nil }

func TestHammer7BackendErrorPolicies(t *testing.T) {
	down := fmt.Errorf("%w: dial tcp: connection refused", hammerredis.ErrClosed)
	for _, policy := range []httplimit.ErrorPolicy{httplimit.FailOpen, httplimit.FailClosed} {
		t.Run(policy.String(), func(t *testing.T) {
			b := &backend7{}
			l, err := hammer7.New(b, hammer7.SlidingWindow{Prefix: "S", Window: time.Minute, Limit: 5})
			require.NoError(t, err)
			log := logtest.New()
			var handled error
			h, a := handler7(t, httplimit.Config{Hammer7: l, OnError: policy, Logger: log.Logger(),
				ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
					handled = err
					httplimit.DefaultErrorHandler(w, r, err)
				}})
			assert.Equal(t, "200 limit=[5] remaining=[4] reset=- policy=- retry-after=-", rateHeaders(serve(h, request(client))))

			b.err.Store(&down)
			for range 3 {
				w := serve(h, request(client))
				switch policy {
				case httplimit.FailOpen:
					assert.Equal(t, "200 limit=- remaining=- reset=- policy=- retry-after=-", rateHeaders(w))
					assert.NoError(t, handled)
				case httplimit.FailClosed:
					assert.Equal(t, "503 limit=- remaining=- reset=- policy=- retry-after=[1]", rateHeaders(w))
					assert.Equal(t, "Service Unavailable: the rate limiter is unavailable\n", w.Body.String())
					assert.ErrorIs(t, handled, httplimit.ErrUnavailable)
					assert.ErrorIs(t, handled, hammerredis.ErrClosed)
				}
			}
			if policy == httplimit.FailOpen {
				assert.Equal(t, int64(4), a.calls.Load(), "let through without a check")
				assert.Equal(t, int64(3), a.uncounted.Load(), "no result for the requests let through")
			} else {
				assert.Equal(t, int64(1), a.calls.Load())
			}
			require.Equal(t, 1, log.Count(errorMsg), "throttled: %s", log)
			assert.Contains(t, log.String(), "connection refused")
			assert.Contains(t, log.String(), "policy="+policy.String())

			b.err.Store(nil)
			assert.Equal(t, http.StatusOK, serve(h, request(client)).Code)
			assert.Equal(t, 1, log.Count("httplimit: rate limit backend recovered"), "%s", log)
		})
	}
}

func TestHammer7TimeoutAndClientThatLeft(t *testing.T) {
	b := &backend7{block: true}
	l, err := hammer7.New(b, hammer7.TokenBucket{Prefix: "T", RefillPerSecond: 1, Capacity: 5})
	require.NoError(t, err)
	log := logtest.New()
	closed, a := handler7(t, httplimit.Config{Hammer7: l, OnError: httplimit.FailClosed, Timeout: 50 * time.Millisecond,
		Logger: log.Logger()})
	begin := time.Now()
	assert.Equal(t, http.StatusServiceUnavailable, serve(closed, request(client)).Code)
	assert.Less(t, time.Since(begin), 2*time.Second, "a hung backend adds at most the timeout")
	assert.Equal(t, 1, log.Count(errorMsg))
	assert.Contains(t, log.String(), "timed out")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := serve(closed, request(client).WithContext(ctx))
	assert.NotEqual(t, http.StatusServiceUnavailable, w.Code)
	assert.Equal(t, 1, log.Count(errorMsg), "a client that left is not logged")
	assert.Zero(t, a.calls.Load())
}

// TestHammer7KeyTheBackendRefusesIsAMissingKey: as with Config.Limiter, an
// id over 1 MiB is a request that cannot be limited: 400, whatever the
// error policy.
func TestHammer7KeyTheBackendRefusesIsAMissingKey(t *testing.T) {
	huge := strings.Repeat("k", protocol.MaxIDBytes+1)
	key := func(*http.Request) (string, error) { return huge, nil }
	for _, policy := range []httplimit.ErrorPolicy{httplimit.FailOpen, httplimit.FailClosed} {
		t.Run(policy.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				log := logtest.New()
				var handled error
				h, a := handler7(t, httplimit.Config{Key: key, OnError: policy, Logger: log.Logger(),
					Hammer7: newLimiter7(t, hammer7.LeakyBucket{Prefix: "L", LeakPerSecond: 1, Capacity: 5}),
					ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
						handled = err
						httplimit.DefaultErrorHandler(w, r, err)
					}})
				w := serve(h, request(client))
				assert.Equal(t, "400 limit=- remaining=- reset=- policy=- retry-after=-", rateHeaders(w))
				assert.Zero(t, a.calls.Load(), "never let through")
				assert.ErrorIs(t, handled, httplimit.ErrNoKey)
				assert.ErrorIs(t, handled, hammerredis.ErrInvalid)
				assert.Zero(t, log.Count(errorMsg), "not logged as a backend error: %s", log)
			})
		})
	}
}

func TestHammer7Skip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mw, err := httplimit.New(httplimit.Config{Headers: httplimit.LegacyHeaders,
			Skip:    func(r *http.Request) bool { return r.URL.Path == "/healthz" },
			Hammer7: newLimiter7(t, hammer7.TokenBucket{Prefix: "T", RefillPerSecond: 1, Capacity: 1})})
		require.NoError(t, err)
		var counted, skipped int
		h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := httplimit.Hammer7ResultFrom(r.Context()); ok {
				counted++
			} else {
				skipped++
			}
		}))
		for range 3 {
			r := request(client)
			r.URL.Path = "/healthz"
			assert.Equal(t, "200 limit=- remaining=- reset=- policy=- retry-after=-", rateHeaders(serve(h, r)))
		}
		assert.Equal(t, "200 limit=[1] remaining=[0] reset=- policy=- retry-after=-", rateHeaders(serve(h, request(client))),
			"skipped requests were not counted")
		assert.Equal(t, 1, counted)
		assert.Equal(t, 3, skipped)
	})
}

// TestHammer7OnRedis runs the middleware on the Redis backend: the keys are
// Hammer 7's, under the policy's prefix and the middleware's id.
func TestHammer7OnRedis(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	prefix := fmt.Sprintf("H7:%s:%d", t.Name(), prefixes.Add(1)) // unique on the shared server, also with -count
	l, err := hammer7.New(f.b, hammer7.SlidingWindow{Prefix: prefix, Window: time.Hour, Limit: 2})
	require.NoError(t, err)
	h, a := handler7(t, httplimit.Config{Hammer7: l})
	assert.Equal(t, "200 limit=[2] remaining=[1] reset=- policy=- retry-after=-", rateHeaders(serve(h, request(client))))
	assert.Equal(t, "200 limit=[2] remaining=[0] reset=- policy=- retry-after=-", rateHeaders(serve(h, request(client))))
	w := serve(h, request(client))
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	// An hour after the first request, less the time since.
	assert.Contains(t, []string{"3599", "3600"}, w.Header().Get("Retry-After"))
	assert.Equal(t, w.Header().Get("Retry-After"), w.Header().Get("RateLimit-Reset"))
	assert.Equal(t, int64(2), a.calls.Load())

	c := f.srv.Conn(t)
	n, err := redis.Int(c.Do("ZCARD", prefix+":http:ip:203.0.113.7:3600000"))
	assert.NoError(t, err)
	assert.Equal(t, 2, n, "two units in the sliding window's sorted set")
}

func TestNewValidatesAHammer7Config(t *testing.T) {
	l, err := hammer7.New(&backend7{}, hammer7.FixWindow{Prefix: "F", Window: time.Minute, Limit: 1})
	require.NoError(t, err)
	for _, tt := range []struct {
		name string
		cfg  httplimit.Config
		want string
	}{
		{"both limiters", httplimit.Config{Limiter: hammer.New(nil), Hammer7: l}, "Config.Limiter and Config.Hammer7 are both set"},
		{"a scale", httplimit.Config{Hammer7: l, Scale: time.Minute}, "Config.Scale 1m0s and Config.Limit 0 are for Config.Limiter"},
		{"a limit", httplimit.Config{Hammer7: l, Limit: 10}, "with Config.Hammer7 they must be zero"},
		{"no limiter", httplimit.Config{}, "Config.Limiter is required (or Config.Hammer7"},
		{"unknown policy", httplimit.Config{Hammer7: l, OnError: 7}, "Config.OnError ErrorPolicy(7)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := httplimit.New(tt.cfg)
			assert.Nil(t, mw)
			assert.ErrorIs(t, err, hammerredis.ErrInvalid)
			assert.ErrorContains(t, err, tt.want)
		})
	}
	_, err = httplimit.New(httplimit.Config{Hammer7: l})
	assert.NoError(t, err, "the smallest valid config")
}
