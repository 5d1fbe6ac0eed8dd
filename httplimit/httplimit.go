// Package httplimit is net/http middleware that rate-limits requests with a
// [hammer.Limiter] (a fixed number of requests per client per window) or with
// a [hammer7.Limiter] (any of Hammer 7's four algorithms: fixed or sliding
// windows, leaky or token buckets), counted in the limiter's backend (usually
// Redis, shared by every instance of the service).
//
// # Usage
//
//	limit, err := httplimit.New(httplimit.Config{
//		Limiter: hammer.New(backend),
//		Scale:   time.Minute,
//		Limit:   100,
//	})
//	if err != nil { ... }
//	http.ListenAndServe(addr, limit(mux))
//
// or, with a Hammer 7 limiter, whose policy holds the numbers:
//
//	l, err := hammer7.New(backend, hammer7.TokenBucket{Prefix: "MyApp.API", RefillPerSecond: 10, Capacity: 100})
//	if err != nil { ... }
//	limit, err := httplimit.New(httplimit.Config{Hammer7: l})
//
// # Keys
//
// Requests are counted per key, as returned by Config.Key: by default the
// client's IP address ([ClientIP]). Behind reverse proxies, list them in
// [ClientIP]'s trusted prefixes: the client is then the right-most untrusted
// address of X-Forwarded-For, never an address the client wrote itself.
// [ClientIPWith] reads Forwarded or X-Real-IP instead and can group IPv6
// clients by /64; [Header] keys by a header such as an API key; [FirstOf]
// combines them. A request without a key, or with a key the backend refuses
// as invalid (longer than 1 MiB with Config.IDPrefix), is answered 400 Bad
// Request by default, never let through unlimited.
//
// The backend id of a key is Config.IDPrefix + key, for example
// "http:ip:203.0.113.7". Middlewares with different scales or limits must use
// different prefixes, or they count into each other's buckets. With a Hammer 7
// limiter, the Redis key is the policy's Prefix, ":" and that id, as in
// "MyApp.API:http:ip:203.0.113.7": give each policy its own Prefix.
//
// # Response headers
//
// Every request that was counted gets the fields of the IETF draft
// "RateLimit header fields for HTTP" (draft-ietf-httpapi-ratelimit-headers-06,
// the separate-fields form), set before the next handler runs:
//
//	RateLimit-Limit: 100        the requests allowed per window
//	RateLimit-Remaining: 42     the requests left in the current window
//	RateLimit-Reset: 17         seconds until the window resets, rounded up
//	RateLimit-Policy: 100;w=60  the limit and the window in seconds
//
// RateLimit-Policy is sent only when Scale is a whole number of seconds.
// A request over the limit is answered 429 Too Many Requests with
// Retry-After (the same seconds as RateLimit-Reset) and does not reach the
// next handler. As in Hammer, denied requests are counted too, so a client
// that keeps retrying stays denied until the window ends.
//
// # Hammer 7
//
// With Config.Hammer7, each request is one hit of cost 1 on the limiter
// ([hammer7.Limiter.Hit]), and the fields follow its [hammer7.Result]:
//
//	RateLimit-Limit      Result.Limit: the window's limit, or the bucket's capacity
//	RateLimit-Remaining  Result.Remaining: Limit−Count for windows, the tokens
//	                     left for a token bucket, Capacity−level for a leaky bucket
//	RateLimit-Reset      on a 429 only: Result.RetryAfter in seconds, rounded up
//	Retry-After          on a 429 only: the same seconds
//
// RateLimit-Reset is left out of allowed responses, and RateLimit-Policy out
// of every response: a hammer7.Result says when a denied request would fit,
// not when the quota is whole again, and the limiter does not tell its
// window or rate. A request that can never be allowed (Result.Never: a
// window whose Limit is 0) is answered 429 without Retry-After nor
// RateLimit-Reset, since no wait helps. Whether denied requests count
// depends on the algorithm: they do in a fixed window, not in the others.
// [Hammer7ResultFrom] gives the next handler and Config.DeniedHandler the
// hammer7.Result.
//
// # Failures
//
// When the backend fails (Redis unreachable:
// [github.com/hammer-go/hammerredis.ErrClosed]; too slow:
// [github.com/hammer-go/hammerredis.ErrTimeout]; ...), the request is handled
// by Config.OnError: [FailOpen] (the default) lets it through without RateLimit
// headers, since nothing is known about the client's usage; [FailClosed]
// answers 503 Service Unavailable with Retry-After: 1. Either way the error
// is logged to Config.Logger, throttled: the first error, then at most one
// line a second with the number of errors not logged, and one line when the
// backend answers again. A request whose client went away while it waited
// is dropped without a response or a log line.
//
// # Latency
//
// Each request makes one backend call, bounded by the request's context and
// Config.Timeout (default [DefaultTimeout], 100ms): a Redis that hangs adds at
// most that much latency before the error policy applies. While the backend
// knows Redis is down, calls fail at once.
package httplimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/hammer7"
	"github.com/hammer-go/hammerredis/protocol"
)

// Defaults of Config.
const (
	// DefaultIDPrefix starts the backend id of every key.
	DefaultIDPrefix = "http:"
	// DefaultTimeout bounds each backend call. A Redis round trip takes
	// well under a millisecond on a local network, so 100ms leaves room for
	// load while keeping a hung Redis from holding every request for the
	// backend's own call timeout (5s by default).
	DefaultTimeout = 100 * time.Millisecond
)

// Errors passed to Config.ErrorHandler; match them with errors.Is.
var (
	// ErrNoKey means Config.Key returned an error or an empty key, or a
	// key the backend refuses as invalid (hammerredis.ErrInvalid, such as
	// an id over 1 MiB): the request cannot be attributed to a client. The
	// KeyFunc's or the backend's error is wrapped too. Answered 400 Bad
	// Request by default, whatever Config.OnError says.
	ErrNoKey = errors.New("httplimit: no rate-limit key for the request")
	// ErrUnavailable means the backend failed and Config.OnError is
	// FailClosed. The backend's error is wrapped too, so errors.Is(err,
	// hammerredis.ErrClosed) works. Answered 503 Service Unavailable by
	// default.
	ErrUnavailable = errors.New("httplimit: rate limiter unavailable")
)

var errEmptyKey = errors.New("httplimit: the KeyFunc returned an empty key")

// ErrorPolicy says what to do with a request when the backend fails.
type ErrorPolicy int

const (
	// FailOpen lets the request through to the next handler, without
	// RateLimit headers: an outage of the limiter is not an outage of the
	// service.
	FailOpen ErrorPolicy = iota
	// FailClosed answers 503 Service Unavailable with Retry-After: 1, for
	// endpoints that must never run unlimited, such as logins.
	FailClosed
)

// String returns "fail-open" or "fail-closed".
func (p ErrorPolicy) String() string {
	switch p {
	case FailOpen:
		return "fail-open"
	case FailClosed:
		return "fail-closed"
	}
	return "ErrorPolicy(" + strconv.Itoa(int(p)) + ")"
}

// Config configures the middleware. The zero value of every field but
// Limiter and Scale (or Hammer7) means its documented default.
type Config struct {
	// Limiter counts the requests in Hammer 6's fixed windows. Required,
	// unless Hammer7 is set instead.
	Limiter *hammer.Limiter
	// Scale is the window: Limit requests are allowed per Scale, in fixed
	// windows aligned to the Unix epoch. Required with Limiter; a whole
	// number of milliseconds, at least 1ms. Zero with Hammer7.
	Scale time.Duration
	// Limit is how many requests a key may make per window; 0 denies every
	// request. Must not be negative. Zero with Hammer7.
	Limit int64
	// Hammer7 counts the requests with a Hammer 7 limiter instead of
	// Limiter: any of its algorithms, whose numbers are its policy's, so
	// Scale and Limit stay zero. Each request is a hit of cost 1. See
	// "Hammer 7" in the package docs for the response fields.
	Hammer7 *hammer7.Limiter

	// Key returns the key a request is counted under; default
	// ClientIP(nil), the direct peer's IP address.
	Key KeyFunc
	// IDPrefix is prepended to each key to form its backend id; default
	// "http:". Give each middleware with its own Scale or Limit its own
	// prefix, such as "http:login:", and keep them apart from ids that
	// other code checks with the same limiter. With Hammer7, the policy's
	// Prefix already separates limiters: IDPrefix then separates the
	// middlewares that share one hammer7.Limiter.
	IDPrefix string
	// Skip, when set, lets the requests it returns true for through without
	// counting them and without RateLimit headers, such as health checks.
	Skip func(r *http.Request) bool

	// Timeout bounds each backend call, on top of the request's context;
	// default 100ms ([DefaultTimeout]). A negative Timeout sets no bound of
	// the middleware's own: the request's context and the backend's call
	// timeout still apply. A call that times out is handled by OnError; it
	// may still be counted once Redis answers.
	Timeout time.Duration
	// OnError says what happens to a request when the backend fails:
	// FailOpen (the default) or FailClosed.
	OnError ErrorPolicy
	// Logger receives backend errors, throttled (see the package docs);
	// default slog.Default().
	Logger *slog.Logger

	// DeniedHandler writes the response to a request over the limit; its
	// status should be 429. The RateLimit headers and Retry-After are set
	// before it runs, and [ResultFrom] (with Hammer7: [Hammer7ResultFrom])
	// returns the check's result. Default: 429 Too Many Requests with a
	// short text body.
	DeniedHandler http.Handler
	// ErrorHandler writes the response to a request without a key (err
	// wraps ErrNoKey) or, with FailClosed, to a request the backend failed
	// to check (err wraps ErrUnavailable, and Retry-After: 1 is set before
	// it runs). Default: [DefaultErrorHandler].
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
}

// Result is the outcome of a request's rate check.
type Result = hammer.Result

type resultKey struct{}

// ResultFrom returns the rate check's result for a request that the
// middleware counted, from the request's context in the next handler or in
// Config.DeniedHandler. It returns false for a request that was not counted:
// skipped, or let through by FailOpen, and for one counted by Config.Hammer7
// (see [Hammer7ResultFrom]).
func ResultFrom(ctx context.Context) (Result, bool) {
	res, ok := ctx.Value(resultKey{}).(Result)
	return res, ok
}

// Hammer7ResultFrom is [ResultFrom] for a middleware on Config.Hammer7: the
// hit's result, from the request's context in the next handler or in
// Config.DeniedHandler. It returns false for a request that was not counted,
// and for one counted by Config.Limiter.
func Hammer7ResultFrom(ctx context.Context) (hammer7.Result, bool) {
	res, ok := ctx.Value(resultKey{}).(hammer7.Result)
	return res, ok
}

// DefaultErrorHandler answers a request without a key (err wraps ErrNoKey)
// with 400 Bad Request and any other error with 503 Service Unavailable,
// each with a short text body that does not reveal err.
func DefaultErrorHandler(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrNoKey) {
		http.Error(w, "Bad Request: the request cannot be rate limited", http.StatusBadRequest)
		return
	}
	http.Error(w, "Service Unavailable: the rate limiter is unavailable", http.StatusServiceUnavailable)
}

func defaultDenied(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "Too Many Requests: rate limit exceeded", http.StatusTooManyRequests)
}

// Header names set by the middleware.
const (
	headerLimit      = "RateLimit-Limit"
	headerRemaining  = "RateLimit-Remaining"
	headerReset      = "RateLimit-Reset"
	headerPolicy     = "RateLimit-Policy"
	headerRetryAfter = "Retry-After"
)

// New validates cfg and returns the middleware. Its errors wrap
// protocol.ErrInvalid (hammerredis.ErrInvalid) and name the problem.
func New(cfg Config) (func(http.Handler) http.Handler, error) {
	if err := cfg.configure(); err != nil {
		return nil, err
	}
	l := &limiter{cfg: cfg, log: newErrorLog(cfg.Logger, cfg.OnError, time.Now)}
	if cfg.Hammer7 == nil && cfg.Scale%time.Second == 0 {
		l.policy = strconv.FormatInt(cfg.Limit, 10) + ";w=" + strconv.FormatInt(int64(cfg.Scale/time.Second), 10)
	}
	l.limit = strconv.FormatInt(cfg.Limit, 10)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { l.serve(w, r, next) })
	}, nil
}

// configure validates c and applies the defaults, in one place.
func (c *Config) configure() error {
	switch {
	case c.Limiter != nil && c.Hammer7 != nil:
		return fmt.Errorf("%w: httplimit: Config.Limiter and Config.Hammer7 are both set: set one of them", protocol.ErrInvalid)
	case c.Hammer7 != nil:
		if c.Scale != 0 || c.Limit != 0 {
			return fmt.Errorf("%w: httplimit: Config.Scale %v and Config.Limit %d are for Config.Limiter: "+
				"with Config.Hammer7 they must be zero, the limiter's policy holds the numbers",
				protocol.ErrInvalid, c.Scale, c.Limit)
		}
	case c.Limiter == nil:
		return fmt.Errorf("%w: httplimit: Config.Limiter is required (or Config.Hammer7)", protocol.ErrInvalid)
	case c.Scale < time.Millisecond || c.Scale%time.Millisecond != 0:
		return fmt.Errorf("%w: httplimit: Config.Scale %v must be a whole number of milliseconds, at least 1ms",
			protocol.ErrInvalid, c.Scale)
	case c.Limit < 0:
		return fmt.Errorf("%w: httplimit: Config.Limit %d must not be negative", protocol.ErrInvalid, c.Limit)
	}
	if c.OnError != FailOpen && c.OnError != FailClosed {
		return fmt.Errorf("%w: httplimit: Config.OnError %v is neither FailOpen nor FailClosed",
			protocol.ErrInvalid, c.OnError)
	}
	if c.Key == nil {
		c.Key = ClientIP(nil)
	}
	if c.IDPrefix == "" {
		c.IDPrefix = DefaultIDPrefix
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.DeniedHandler == nil {
		c.DeniedHandler = http.HandlerFunc(defaultDenied)
	}
	if c.ErrorHandler == nil {
		c.ErrorHandler = DefaultErrorHandler
	}
	return nil
}

type limiter struct {
	cfg    Config
	log    *errorLog
	limit  string // RateLimit-Limit of Config.Limiter
	policy string // RateLimit-Policy, "" when Scale is not whole seconds or with Hammer7
}

// verdict is a rate check's outcome, from either limiter, as the response
// fields show it.
type verdict struct {
	allowed bool
	// limit is RateLimit-Limit, "" to use limiter.limit.
	limit     string
	remaining int64
	// reset is RateLimit-Reset and retryAfter Retry-After (of a denied
	// request), in seconds; -1 leaves them out.
	reset, retryAfter int64
	// result is the Result or hammer7.Result, for the request's context.
	result any
}

func (l *limiter) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if l.cfg.Skip != nil && l.cfg.Skip(r) {
		next.ServeHTTP(w, r)
		return
	}
	key, err := l.cfg.Key(r)
	if err == nil && key == "" {
		err = errEmptyKey
	}
	if err != nil {
		l.cfg.ErrorHandler(w, r, fmt.Errorf("%w: %w", ErrNoKey, err))
		return
	}

	v, err := l.check(r.Context(), l.cfg.IDPrefix+key)
	if err != nil {
		if r.Context().Err() != nil {
			return // the client left: nobody to answer, and not an outage
		}
		if errors.Is(err, protocol.ErrInvalid) {
			// The backend refused the key itself (an id over
			// protocol.MaxIDBytes): a request that cannot be rate
			// limited, not an outage to fail open on.
			l.cfg.ErrorHandler(w, r, fmt.Errorf("%w: %w", ErrNoKey, err))
			return
		}
		l.log.failure(err)
		if l.cfg.OnError == FailOpen {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set(headerRetryAfter, "1")
		l.cfg.ErrorHandler(w, r, fmt.Errorf("%w: %w", ErrUnavailable, err))
		return
	}
	l.log.success()

	h := w.Header()
	if v.limit == "" {
		v.limit = l.limit
	}
	h.Set(headerLimit, v.limit)
	h.Set(headerRemaining, strconv.FormatInt(v.remaining, 10))
	if v.reset >= 0 {
		h.Set(headerReset, strconv.FormatInt(v.reset, 10))
	}
	if l.policy != "" {
		h.Set(headerPolicy, l.policy)
	}
	r = r.WithContext(context.WithValue(r.Context(), resultKey{}, v.result))
	if !v.allowed {
		if v.retryAfter >= 0 {
			h.Set(headerRetryAfter, strconv.FormatInt(v.retryAfter, 10))
		}
		l.cfg.DeniedHandler.ServeHTTP(w, r)
		return
	}
	next.ServeHTTP(w, r)
}

// check counts the request, within the configured timeout.
func (l *limiter) check(ctx context.Context, id string) (verdict, error) {
	if l.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.cfg.Timeout)
		defer cancel()
	}
	if l.cfg.Hammer7 != nil {
		res, err := l.cfg.Hammer7.Hit(ctx, id)
		if err != nil {
			return verdict{}, err
		}
		v := verdict{allowed: res.Allowed, limit: strconv.FormatInt(res.Limit, 10), remaining: res.Remaining,
			reset: -1, retryAfter: -1, result: res}
		if !res.Allowed && !res.Never {
			// RetryAfter is at least 1ms: at least one second.
			v.reset = max(ceilSeconds(res.RetryAfter), 1)
			v.retryAfter = v.reset
		}
		return v, nil
	}
	res, err := l.cfg.Limiter.CheckRate(ctx, id, l.cfg.Scale, l.cfg.Limit)
	if err != nil {
		return verdict{}, err
	}
	reset := ceilSeconds(res.ResetAfter)
	return verdict{allowed: res.Allowed, remaining: res.Remaining, reset: reset, retryAfter: max(reset, 1), result: res}, nil
}

// ceilSeconds returns d in whole seconds, rounded up: at least 1 when d > 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// errorLog logs backend errors without flooding the log during an outage:
// the first error at once, then at most one line a second, each with the
// number of errors not logged since the previous line, and one line when the
// backend answers again after an error was logged.
type errorLog struct {
	logger *slog.Logger
	policy ErrorPolicy
	now    func() time.Time

	dirty atomic.Bool // down || pending > 0: a success has something to do

	mu      sync.Mutex
	last    time.Time // of the latest error line; zero before the first
	pending int64     // errors not logged yet
	total   int64     // errors since the latest recovery line
	down    bool      // an error line was logged and no recovery line since
}

func newErrorLog(logger *slog.Logger, policy ErrorPolicy, now func() time.Time) *errorLog {
	return &errorLog{logger: logger, policy: policy, now: now}
}

// failure records a backend error and logs it unless a line was logged less
// than a second ago.
func (l *errorLog) failure(err error) {
	l.mu.Lock()
	l.dirty.Store(true)
	l.total++
	now := l.now()
	if !l.last.IsZero() && now.Sub(l.last) < time.Second {
		l.pending++
		l.mu.Unlock()
		return
	}
	suppressed := l.pending
	l.last, l.pending, l.down = now, 0, true
	l.mu.Unlock()
	l.logger.Error("httplimit: rate limit backend error", "error", err, "policy", l.policy.String(),
		"suppressed", suppressed)
}

// success records a backend call that worked: after an error line, it logs
// that the backend is back.
func (l *errorLog) success() {
	if !l.dirty.Load() {
		return
	}
	l.mu.Lock()
	if !l.down {
		// Errors within a second of an error line, after its recovery line:
		// the next error line reports them.
		l.dirty.Store(false)
		l.mu.Unlock()
		return
	}
	suppressed, total := l.pending, l.total
	l.pending, l.total, l.down = 0, 0, false
	l.dirty.Store(false)
	l.mu.Unlock()
	l.logger.Info("httplimit: rate limit backend recovered", "errors", total, "suppressed", suppressed)
}
