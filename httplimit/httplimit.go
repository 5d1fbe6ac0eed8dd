// Package httplimit is net/http middleware that rate-limits requests, counted
// in a backend (usually Redis, shared by every instance of the service), with
// one of three limiters:
//
//   - a [hammer.Checker] (Config.Checker): several named limits checked
//     together, such as 10/s and 1000/h per API key plus 100/s per IP, each
//     Hammer 6 window or Hammer 7 algorithm, some of them Shadow (dry run),
//     with a degraded mode while Redis is away;
//   - a [hammer.Limiter] (Config.Limiter): a fixed number of requests per
//     client per window;
//   - a [hammer7.Limiter] (Config.Hammer7): any one of Hammer 7's four
//     algorithms (fixed or sliding windows, leaky or token buckets).
//
// # Usage
//
//	checker, err := hammer.NewChecker(backend, hammer.Config{Limits: []hammer.Limit{
//		{Name: "per-second", Scale: time.Second, Max: 10},
//		{Name: "per-hour", Scale: time.Hour, Max: 1000},
//	}})
//	if err != nil { ... }
//	limit, err := httplimit.New(httplimit.Config{Checker: checker, Key: httplimit.Header("X-Api-Key")})
//	if err != nil { ... }
//	http.ListenAndServe(addr, limit(mux))
//
// or, with one limit:
//
//	limit, err := httplimit.New(httplimit.Config{Limiter: hammer.New(backend), Scale: time.Minute, Limit: 100})
//
//	l, err := hammer7.New(backend, hammer7.TokenBucket{Prefix: "MyApp.API", RefillPerSecond: 10, Capacity: 100})
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
// "MyApp.API:http:ip:203.0.113.7": give each policy its own Prefix. With a
// Checker, each limit counts its own id, [hammer.Limit].IDPrefix (default its
// Name and ":") + Config.IDPrefix + key, as in "per-hour:http:ip:203.0.113.7".
//
// # Several limits
//
// With Config.Checker, every request is checked against all the checker's
// limits in one call (one round trip per Redis node): denied when any limit
// that is not Shadow denies it, and with [hammer.Config].AllOrNothing then
// charged to none. The limits share Config.Key, or each has its own KeyFunc
// in Config.Keys, in the order of the checker's limits: per API key for some,
// per IP for others. [CheckResultFrom] gives the next handler and
// Config.DeniedHandler the [hammer.Decision], every limit's result in it.
//
// A Shadow limit is counted and shown (see below) but never denies: the
// dry run of a new limit; the checker logs the requests it would have denied.
// A degraded decision (the backend failed and [hammer.Config].Fallback
// decided, at FallbackShare of each limit) is served like any other, with
// the lowered quotas in the fields; [hammer.Decision].Degraded says so.
//
// # Response headers
//
// Every request that was counted gets the fields of Config.Headers, set
// before the next handler runs. The default, [DraftHeaders], follows
// draft-ietf-httpapi-ratelimit-headers-10 and -11, whose two fields have
// the same syntax in both (Structured Field Lists, RFC 9651):
//
//	RateLimit-Policy: "per-second";q=10;w=1, "per-hour";q=1000;w=3600
//	RateLimit: "per-second";r=3;t=1
//
// RateLimit-Policy (Section 3) lists every limit, as the policy's name (a
// String) with q its quota (a window's limit, a bucket's capacity) and w its
// window in seconds (for a bucket, the time it takes to fill; left out when
// not a whole number of seconds). RateLimit (Section 4) names one limit:
// the one that denies the request (the longest wait when several do), or
// else the one closest to denying it, with the fewest units left, as
// Appendix B.1.2 of the drafts shows; r is what is left of its quota and t
// the seconds until it is whole again (a fixed window's end; see
// [hammer.LimitResult].Reset for the others), rounded up. On a denied
// request t is instead the seconds until a request fits again, the same as
// Retry-After: Section 6 asks that Retry-After never point before t. The
// names of Config.Limiter and Config.Hammer7 are Config.PolicyName, default
// "default". A Shadow limit's items carry the Boolean parameter
// hammer-shadow ([ShadowParam]); RateLimit names one only when every limit
// is Shadow. Numbers above 999,999,999,999,999, which a Structured Field
// cannot carry, are sent as that.
//
// Drafts 10 and 11 differ only in the meaning of t, not in syntax: draft 10
// calls it the reset, "the number of seconds until additional quota ... is
// made available"; draft 11 the effective window, "the number of seconds
// within which the client can use no more than the available quota" (r),
// which "does not imply anything about when the server will increase" it.
// The t sent here fits both for windows; for buckets, it is the time until
// the bucket is whole, which a client reading draft 10 may find later than
// the next unit. Left out of both drafts' parameters: qu, the quota unit
// (every unit here is a request, the default), and pk, the partition key
// (which would disclose the key), as the drafts allow (both are OPTIONAL).
//
// [LegacyHeaders] sends the separate fields of draft 06, RateLimit-Limit
// (q), RateLimit-Remaining (r) and RateLimit-Reset (t) of the limit RateLimit
// would name, and RateLimit-Policy as a list of "q;w=seconds" of the limits
// with a whole-second window ("100;w=60"); [XRateLimitHeaders] sends the
// same three numbers as X-RateLimit-Limit, X-RateLimit-Remaining and
// X-RateLimit-Reset (seconds from now, not a Unix time); [NoHeaders] none of
// them.
//
// A request over the limit is answered 429 Too Many Requests with
// Retry-After (the longest wait of the limits that deny it, in seconds
// rounded up) and does not reach the next handler. A request that no wait
// can help (its limit is 0) gets no Retry-After. Whether denied requests
// count depends on the algorithm: they do in fixed windows (Hammer 6's too),
// not in the others.
//
// # Problem details
//
// Config.ProblemDetails answers a denied request with the drafts'
// quota-exceeded problem type (Section 5.1) as an RFC 9457 problem-details
// body of type application/problem+json, its violated-policies member naming
// the limits that denied it ([Problem]).
//
// # Hammer 7
//
// With Config.Hammer7, each request is one hit of cost 1 on the limiter
// ([hammer7.Limiter.Hit]), and the fields follow its [hammer7.Result]: q is
// Result.Limit, r Result.Remaining (Limit−Count for windows, the tokens left
// for a token bucket, Capacity−level for a leaky bucket), w the policy's
// window. A hammer7.Result says when a denied request would fit, not when an
// allowed one's quota is whole again: t (RateLimit-Reset) is sent on a 429
// only, as Result.RetryAfter, and the legacy style has no RateLimit-Policy.
// A Checker with one limit of the same policy sends them all.
// [Hammer7ResultFrom] gives the next handler and Config.DeniedHandler the
// hammer7.Result.
//
// # Failures
//
// When the backend fails (Redis unreachable:
// [github.com/hammer-go/hammerredis.ErrClosed]; too slow:
// [github.com/hammer-go/hammerredis.ErrTimeout]; ...), and a Checker has no
// Fallback or it failed too, the request is handled by Config.OnError:
// [FailOpen] (the default) lets it through without rate-limit fields, since
// nothing is known about the client's usage; [FailClosed] answers 503
// Service Unavailable with Retry-After: 1. Either way the error is logged to
// Config.Logger, throttled: the first error, then at most one line a second
// with the number of errors not logged, and one line when the backend
// answers again. A request whose client went away while it waited is dropped
// without a response or a log line.
//
// # Latency
//
// Each request makes one backend call, bounded by the request's context and
// Config.Timeout (default [DefaultTimeout], 100ms): a Redis that hangs adds at
// most that much latency before the error policy applies. While the backend
// knows Redis is down, calls fail at once. A Checker with a Fallback leaves
// a backend call after its own [hammer.Config].FallbackAfter (default 50ms)
// and lets the fallback decide, so keep FallbackAfter below Timeout: a
// Redis that hangs then costs each request at most FallbackAfter, and
// Config.OnError applies only when the fallback fails too.
package httplimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/hammer7"
	"github.com/hammer-go/hammerredis/internal/sfv"
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
	// ErrNoKey means a KeyFunc returned an error or an empty key, or a
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
	// rate-limit fields: an outage of the limiter is not an outage of the
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

// Config configures the middleware. Exactly one of Checker, Limiter (with
// Scale) and Hammer7 is required; every other field's zero value means its
// documented default.
type Config struct {
	// Checker checks every request against several named limits at once
	// (see "Several limits" in the package docs). Scale, Limit and
	// PolicyName stay zero: the checker's limits hold the numbers and
	// names.
	Checker *hammer.Checker
	// Limiter counts the requests in Hammer 6's fixed windows.
	Limiter *hammer.Limiter
	// Scale is the window of Limiter: Limit requests are allowed per
	// Scale, in fixed windows aligned to the Unix epoch. Required with
	// Limiter; a whole number of milliseconds, at least 1ms.
	Scale time.Duration
	// Limit is how many requests a key may make per window of Limiter; 0
	// denies every request. Must not be negative.
	Limit int64
	// Hammer7 counts the requests with a Hammer 7 limiter: any of its
	// algorithms, whose numbers are its policy's, so Scale and Limit stay
	// zero. Each request is a hit of cost 1. See "Hammer 7" in the package
	// docs for the response fields.
	Hammer7 *hammer7.Limiter
	// PolicyName names the limit of Limiter or Hammer7 in the RateLimit
	// fields and problem details; default "default" ([DefaultPolicyName]).
	// 1 to 64 printable ASCII characters, as a Checker's limit names.
	PolicyName string

	// Key returns the key a request is counted under; default
	// ClientIP(nil), the direct peer's IP address. With Checker, every
	// limit's key, unless Keys is set.
	Key KeyFunc
	// Keys, with Checker only, gives each limit its own KeyFunc, in the
	// order of the checker's limits (Checker.Limits()), one for each; Key
	// is then unset. A request is counted only when every KeyFunc gives
	// it a key.
	Keys []KeyFunc
	// IDPrefix is prepended to each key to form its backend id; default
	// "http:". Give each middleware with its own Scale or Limit its own
	// prefix, such as "http:login:", and keep them apart from ids that
	// other code checks with the same limiter. With Hammer7, the policy's
	// Prefix already separates limiters: IDPrefix then separates the
	// middlewares that share one hammer7.Limiter; likewise a Checker's
	// limits each prefix the id with their own IDPrefix.
	IDPrefix string
	// Skip, when set, lets the requests it returns true for through without
	// counting them and without rate-limit fields, such as health checks.
	Skip func(r *http.Request) bool

	// Headers says which rate-limit fields responses carry: DraftHeaders
	// (the default), LegacyHeaders, XRateLimitHeaders or NoHeaders.
	Headers HeaderStyle
	// ProblemDetails answers a denied request with an RFC 9457
	// problem-details body (see [Problem]) instead of DeniedHandler's
	// default text; DeniedHandler is then unset.
	ProblemDetails bool

	// Timeout bounds each backend call, on top of the request's context;
	// default 100ms ([DefaultTimeout]). A negative Timeout sets no bound of
	// the middleware's own: the request's context and the backend's call
	// timeout still apply. A call that times out is handled by OnError;
	// it may still be counted once Redis answers. With a Checker's
	// Fallback, keep its FallbackAfter below Timeout, so that the fallback
	// decides first.
	Timeout time.Duration
	// OnError says what happens to a request when the backend fails:
	// FailOpen (the default) or FailClosed.
	OnError ErrorPolicy
	// Logger receives backend errors, throttled (see the package docs);
	// default slog.Default().
	Logger *slog.Logger

	// DeniedHandler writes the response to a request over the limit; its
	// status should be 429. The rate-limit fields and Retry-After are set
	// before it runs, and [CheckResultFrom], [ResultFrom] or
	// [Hammer7ResultFrom] (for Checker, Limiter and Hammer7) returns the
	// check's result. Default: 429 Too Many Requests with a short text
	// body, or the problem details of ProblemDetails.
	DeniedHandler http.Handler
	// ErrorHandler writes the response to a request without a key (err
	// wraps ErrNoKey) or, with FailClosed, to a request the backend failed
	// to check (err wraps ErrUnavailable, and Retry-After: 1 is set before
	// it runs). Default: [DefaultErrorHandler].
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
}

// Result is the outcome of a request's rate check by Config.Limiter.
type Result = hammer.Result

type resultKey struct{}

// ResultFrom returns the rate check's result for a request that the
// middleware counted with Config.Limiter, from the request's context in the
// next handler or in Config.DeniedHandler. It returns false for a request
// that was not counted: skipped, or let through by FailOpen, and for one
// counted by Config.Hammer7 or Config.Checker (see [Hammer7ResultFrom] and
// [CheckResultFrom]).
func ResultFrom(ctx context.Context) (Result, bool) {
	res, ok := ctx.Value(resultKey{}).(Result)
	return res, ok
}

// Hammer7ResultFrom is [ResultFrom] for a middleware on Config.Hammer7: the
// hit's result, from the request's context in the next handler or in
// Config.DeniedHandler. It returns false for a request that was not counted,
// and for one counted by Config.Limiter or Config.Checker.
func Hammer7ResultFrom(ctx context.Context) (hammer7.Result, bool) {
	res, ok := ctx.Value(resultKey{}).(hammer7.Result)
	return res, ok
}

// CheckResultFrom is [ResultFrom] for a middleware on Config.Checker: the
// decision of every limit, from the request's context in the next handler
// or in Config.DeniedHandler; Decision.Degraded reports a decision of the
// checker's Fallback. It returns false for a request that was not counted,
// and for one counted by Config.Limiter or Config.Hammer7.
func CheckResultFrom(ctx context.Context) (hammer.Decision, bool) {
	res, ok := ctx.Value(resultKey{}).(hammer.Decision)
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

// New validates cfg and returns the middleware. Its errors wrap
// protocol.ErrInvalid (hammerredis.ErrInvalid) and name the problem.
func New(cfg Config) (func(http.Handler) http.Handler, error) {
	if err := cfg.configure(); err != nil {
		return nil, err
	}
	l := &limiter{cfg: cfg, log: newErrorLog(cfg.Logger, cfg.OnError, time.Now)}
	if cfg.Hammer7 != nil {
		l.window7 = window7(cfg.Hammer7.Policy())
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { l.serve(w, r, next) })
	}, nil
}

// configure validates c and applies the defaults, in one place.
func (c *Config) configure() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: httplimit: "+format, append([]any{protocol.ErrInvalid}, a...)...)
	}
	var set []string
	for _, f := range []struct {
		name  string
		isSet bool
	}{{"Config.Checker", c.Checker != nil}, {"Config.Limiter", c.Limiter != nil}, {"Config.Hammer7", c.Hammer7 != nil}} {
		if f.isSet {
			set = append(set, f.name)
		}
	}
	switch {
	case len(set) == 3:
		return bad("Config.Checker, Config.Limiter and Config.Hammer7 are all set: set one of them")
	case len(set) == 2:
		return bad("%s and %s are both set: set one of them", set[0], set[1])
	case c.Checker != nil || c.Hammer7 != nil:
		field := "Config.Hammer7"
		if c.Checker != nil {
			field = "Config.Checker"
		}
		if c.Scale != 0 || c.Limit != 0 {
			return bad("Config.Scale %v and Config.Limit %d are for Config.Limiter: "+
				"with %s they must be zero, its limits hold the numbers", c.Scale, c.Limit, field)
		}
	case c.Limiter == nil:
		return bad("Config.Limiter is required (or Config.Hammer7, or Config.Checker)")
	case c.Scale < time.Millisecond || c.Scale%time.Millisecond != 0:
		return bad("Config.Scale %v must be a whole number of milliseconds, at least 1ms", c.Scale)
	case c.Limit < 0:
		return bad("Config.Limit %d must not be negative", c.Limit)
	}
	if c.Checker != nil {
		if err := c.configureKeys(bad); err != nil {
			return err
		}
	} else {
		if len(c.Keys) > 0 {
			return bad("Config.Keys is for Config.Checker: use Config.Key")
		}
		if c.PolicyName == "" {
			c.PolicyName = DefaultPolicyName
		}
		if err := checkPolicyName(c.PolicyName); err != nil {
			return bad("Config.PolicyName: %v", err)
		}
	}
	switch {
	case c.OnError != FailOpen && c.OnError != FailClosed:
		return bad("Config.OnError %v is neither FailOpen nor FailClosed", c.OnError)
	case c.Headers < DraftHeaders || c.Headers > NoHeaders:
		return bad("Config.Headers %v is not a HeaderStyle", c.Headers)
	case c.ProblemDetails && c.DeniedHandler != nil:
		return bad("Config.ProblemDetails and Config.DeniedHandler are both set: set one of them")
	}
	if c.Key == nil && len(c.Keys) == 0 {
		c.Key = ClientIP(nil)
	}
	if c.IDPrefix == "" {
		c.IDPrefix = DefaultIDPrefix
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if fa := checkerFallbackAfter(c.Checker); c.Timeout > 0 && fa >= c.Timeout {
		return bad("Config.Timeout %v ends before the Checker's FallbackAfter %v: its Fallback could never decide; "+
			"give the Checker a shorter FallbackAfter, or the middleware a longer Timeout", c.Timeout, fa)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.DeniedHandler == nil && !c.ProblemDetails {
		c.DeniedHandler = http.HandlerFunc(defaultDenied)
	}
	if c.ErrorHandler == nil {
		c.ErrorHandler = DefaultErrorHandler
	}
	return nil
}

// configureKeys validates the keys of a Checker's config.
func (c *Config) configureKeys(bad func(string, ...any) error) error {
	if c.PolicyName != "" {
		return bad("Config.PolicyName %q is for Config.Limiter and Config.Hammer7: "+
			"a Checker's limits are named by their Name", c.PolicyName)
	}
	if len(c.Keys) == 0 {
		return nil
	}
	if c.Key != nil {
		return bad("Config.Key and Config.Keys are both set: set one of them")
	}
	if n := len(c.Checker.Limits()); len(c.Keys) != n {
		return bad("%d Config.Keys for the checker's %d limits: give one per limit, in their order", len(c.Keys), n)
	}
	for i, k := range c.Keys {
		if k == nil {
			return bad("Config.Keys[%d] is nil", i)
		}
	}
	return nil
}

// checkPolicyName checks a name the RateLimit fields carry as an
// sf-string: the rules of a Checker's limit names.
func checkPolicyName(n string) error {
	if n == "" || len(n) > 64 {
		return fmt.Errorf("%q must be 1 to 64 bytes long", n)
	}
	for i := 0; i < len(n); i++ {
		if n[i] < 0x20 || n[i] > 0x7e {
			return fmt.Errorf("%q must be printable ASCII", n)
		}
	}
	return nil
}

type limiter struct {
	cfg     Config
	log     *errorLog
	window7 int64 // the window of Config.Hammer7 in whole seconds, or 0
}

func (l *limiter) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if l.cfg.Skip != nil && l.cfg.Skip(r) {
		next.ServeHTTP(w, r)
		return
	}
	keys, err := l.keys(r)
	if err != nil {
		l.cfg.ErrorHandler(w, r, fmt.Errorf("%w: %w", ErrNoKey, err))
		return
	}

	v, err := l.check(r.Context(), keys)
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
	setHeaders(h, l.cfg.Headers, &v, l.cfg.Hammer7 == nil)
	r = r.WithContext(context.WithValue(r.Context(), resultKey{}, v.result))
	if v.allowed {
		next.ServeHTTP(w, r)
		return
	}
	if v.retryAfter >= 0 {
		h.Set(headerRetryAfter, strconv.FormatInt(v.retryAfter, 10))
	}
	if l.cfg.ProblemDetails {
		problemHandler(&v).ServeHTTP(w, r)
		return
	}
	l.cfg.DeniedHandler.ServeHTTP(w, r)
}

// keys returns the request's keys, each prefixed with IDPrefix: one, or
// one per limit with Config.Keys.
func (l *limiter) keys(r *http.Request) ([]string, error) {
	funcs := l.cfg.Keys
	if len(funcs) == 0 {
		funcs = []KeyFunc{l.cfg.Key}
	}
	keys := make([]string, len(funcs))
	for i, f := range funcs {
		key, err := f(r)
		if err == nil && key == "" {
			err = errEmptyKey
		}
		if err != nil {
			return nil, err
		}
		keys[i] = l.cfg.IDPrefix + key
	}
	return keys, nil
}

// check counts the request, within the configured timeout.
func (l *limiter) check(ctx context.Context, keys []string) (verdict, error) {
	if l.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.cfg.Timeout)
		defer cancel()
	}
	switch {
	case l.cfg.Checker != nil:
		d, err := l.cfg.Checker.Check(ctx, keys...)
		if err != nil {
			return verdict{}, err
		}
		return decisionVerdict(d), nil
	case l.cfg.Hammer7 != nil:
		res, err := l.cfg.Hammer7.Hit(ctx, keys[0])
		if err != nil {
			return verdict{}, err
		}
		v := l.single(quota{q: res.Limit, w: l.window7, r: res.Remaining, t: -1}, res.Allowed, res)
		if !res.Allowed && !res.Never {
			// RetryAfter is at least 1ms: at least one second.
			v.quotas[0].t = max(sfv.CeilSeconds(res.RetryAfter), 1)
			v.retryAfter = v.quotas[0].t
		}
		return v, nil
	}
	res, err := l.cfg.Limiter.CheckRate(ctx, keys[0], l.cfg.Scale, l.cfg.Limit)
	if err != nil {
		return verdict{}, err
	}
	v := l.single(quota{q: l.cfg.Limit, w: sfv.WholeSeconds(l.cfg.Scale), r: res.Remaining,
		t: sfv.CeilSeconds(res.ResetAfter)}, res.Allowed, res)
	if !res.Allowed {
		v.retryAfter = max(v.quotas[0].t, 1)
	}
	return v, nil
}

// single returns the verdict of Limiter or Hammer7: one quota, named
// PolicyName; denied, without Retry-After until the caller sets it.
func (l *limiter) single(q quota, allowed bool, result any) verdict {
	q.name = l.cfg.PolicyName
	v := verdict{allowed: allowed, quotas: []quota{q}, retryAfter: -1, result: result}
	if !allowed {
		v.violated = []string{q.name}
	}
	return v
}

// checkerFallbackAfter is c's FallbackAfter, 0 without a Checker.
func checkerFallbackAfter(c *hammer.Checker) time.Duration {
	if c == nil {
		return 0
	}
	return c.FallbackAfter()
}
