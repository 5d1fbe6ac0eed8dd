package hammer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/hammer-go/hammerredis/hammer7"
	"github.com/hammer-go/hammerredis/protocol"
)

// CheckBackend decides several limits at once (protocol.Check):
// *hammerredis.Backend and *memory.Backend implement it. Check must not use
// its request's Limits once it returns (a call that timed out and is sent
// late uses a copy): the Checker reuses them for its Fallback.
type CheckBackend interface {
	Check(ctx context.Context, c protocol.Check) (protocol.CheckReply, error)
}

// Limit is one named limit of a [Checker]: a Hammer 6 fixed window (Scale
// and Max) or a Hammer 7 policy (Policy), exactly one of the two.
type Limit struct {
	// Name names the limit in results, headers (RateLimit-Policy), logs
	// and metrics: 1 to 64 printable ASCII characters, unique in a
	// Checker. Never a key: metrics label by it.
	Name string
	// Scale and Max make a Hammer 6 fixed window: Max requests per Scale,
	// in windows aligned to the Unix epoch, counted in the backend's
	// Hammer 6 buckets (denied requests count too, as in Hammer).
	Scale time.Duration
	Max   int64
	// Policy makes a Hammer 7 limit instead: hammer7.FixWindow,
	// SlidingWindow, LeakyBucket or TokenBucket.
	Policy hammer7.Policy
	// IDPrefix is prepended to the key to form the id counted: default
	// Name + ":", so that two limits on one key count apart.
	IDPrefix string
	// Shadow limits are counted and reported (results, headers, metrics,
	// a log line a second at most) but never deny a request: the dry run
	// of a new limit.
	Shadow bool
}

// Config configures a Checker. Limits is required; every other field's
// zero value means its documented default.
type Config struct {
	// Limits are checked together on every request, in one round trip per
	// Redis node; 1 to protocol.MaxCheckLimits of them.
	Limits []Limit
	// AllOrNothing charges no limit when one that is not Shadow denies, so
	// that a narrow limit's denial does not use up a broad one. By default
	// every limit counts each request by its own rules, as Hammer does.
	AllOrNothing bool

	// Fallback, when set, decides the requests while the backend cannot
	// (degraded mode): usually a *memory.Backend, which then limits each
	// process on its own at FallbackShare of every limit. Without it, the
	// backend's errors are returned, and the caller fails open or closed.
	Fallback CheckBackend
	// FallbackShare is the share of each limit (a window's limit, a
	// bucket's capacity and rate) that Fallback allows, in (0, 1]: with N
	// instances behind a load balancer, 1/N keeps the sum near the limit.
	// Required with Fallback.
	FallbackShare float64
	// ProbeEvery is how often, while degraded, one request tries the
	// backend again (when the backend reports itself connected); the first
	// that succeeds hands back to it. Default DefaultProbeEvery.
	ProbeEvery time.Duration
	// FallbackAfter bounds each backend call when there is a Fallback: a
	// call that takes longer (a Redis that hangs) is decided by Fallback,
	// as one that fails is. Its outcome on Redis is unknown: it may still
	// count there, and is never sent again. Keep it below the callers'
	// own deadlines (httplimit's Timeout, 100ms by default), or they give
	// up before the fallback decides. Default DefaultFallbackAfter.
	FallbackAfter time.Duration

	// Observer, when set, receives every decision and every backend call
	// (contrib/otel records them as metrics). It must not block.
	Observer Observer
	// Logger receives shadow denials (a line a second at most) and the
	// changes of degraded mode; default slog.Default().
	Logger *slog.Logger
}

// Defaults of Config.
const (
	// DefaultProbeEvery is Config.ProbeEvery's default.
	DefaultProbeEvery = time.Second
	// DefaultFallbackAfter is Config.FallbackAfter's default: half of
	// httplimit's default Timeout.
	DefaultFallbackAfter = 50 * time.Millisecond
)

// maxNameBytes bounds a Limit's Name.
const maxNameBytes = 64

// Outcome is what a check did for one limit, as an Observer sees it.
type Outcome uint8

// The outcomes of one limit's check.
const (
	// Allowed: the limit allowed the request.
	Allowed Outcome = iota + 1
	// Denied: the limit denied the request.
	Denied
	// ShadowDenied: a Shadow limit would have denied the request.
	ShadowDenied
	// Error: the backend failed and there is no fallback.
	Error
)

var outcomeNames = [...]string{"", "allowed", "denied", "shadow_denied", "error"}

// String returns "allowed", "denied", "shadow_denied" or "error".
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) && o != 0 {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Observer receives what a Checker does, for metrics. Its methods are
// called on the checking goroutine, with the check's context (for
// exemplars and trace links; it may be done already): they must be quick
// and never block.
type Observer interface {
	// Decided reports one limit's outcome for one check; degraded is true
	// when Config.Fallback decided it.
	Decided(ctx context.Context, limit string, outcome Outcome, degraded bool)
	// BackendCall reports one call to the backend (not to Fallback): how
	// long it took and its error, nil on success.
	BackendCall(ctx context.Context, d time.Duration, err error)
}

// Checker checks requests against several named limits at once. It is
// safe for concurrent use.
type Checker struct {
	backend CheckBackend
	cfg     Config
	limits  []protocol.CheckLimit // Config.Limits resolved, ids without key
	share   []protocol.CheckLimit // the same at FallbackShare
	meta    []limitMeta
	now     func() time.Time
	health  *health
	shadow  *throttledLog
}

// limitMeta is what results need of a limit beyond its protocol form.
type limitMeta struct {
	name, idPrefix string
}

// NewChecker validates cfg and returns a Checker deciding in b. Its errors
// wrap protocol.ErrInvalid (hammerredis.ErrInvalid) and name the problem.
// It sends nothing to b.
func NewChecker(b CheckBackend, cfg Config) (*Checker, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: hammer: "+format, append([]any{protocol.ErrInvalid}, a...)...)
	}
	if b == nil {
		return nil, bad("nil backend")
	}
	if len(cfg.Limits) < 1 || len(cfg.Limits) > protocol.MaxCheckLimits {
		return nil, bad("%d limits, want 1..%d", len(cfg.Limits), protocol.MaxCheckLimits)
	}
	switch {
	case cfg.Fallback == nil && cfg.FallbackShare != 0:
		return nil, bad("FallbackShare %v without a Fallback", cfg.FallbackShare)
	case cfg.Fallback != nil && !(cfg.FallbackShare > 0 && cfg.FallbackShare <= 1):
		return nil, bad("FallbackShare %v is out of range (0, 1]", cfg.FallbackShare)
	case cfg.ProbeEvery < 0:
		return nil, bad("ProbeEvery %v is negative", cfg.ProbeEvery)
	case cfg.FallbackAfter < 0:
		return nil, bad("FallbackAfter %v is negative", cfg.FallbackAfter)
	case cfg.Fallback == nil && cfg.FallbackAfter != 0:
		return nil, bad("FallbackAfter %v without a Fallback", cfg.FallbackAfter)
	}
	if cfg.ProbeEvery == 0 {
		cfg.ProbeEvery = DefaultProbeEvery
	}
	if cfg.FallbackAfter == 0 {
		cfg.FallbackAfter = DefaultFallbackAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Checker{backend: b, cfg: cfg, now: time.Now}
	names := map[string]bool{}
	for i, l := range cfg.Limits {
		if err := checkName(l.Name); err != nil {
			return nil, bad("limit %d: %v", i, err)
		}
		if names[l.Name] {
			return nil, bad("limit %d: name %q is used twice", i, l.Name)
		}
		names[l.Name] = true
		pl, err := resolveLimit(b, l)
		if err != nil {
			return nil, fmt.Errorf("hammer: limit %q: %w", l.Name, err)
		}
		prefix := l.IDPrefix
		if prefix == "" {
			prefix = l.Name + ":"
		}
		c.limits = append(c.limits, pl)
		c.meta = append(c.meta, limitMeta{name: l.Name, idPrefix: prefix})
	}
	c.cfg.Limits = append([]Limit(nil), cfg.Limits...)
	if cfg.Fallback != nil {
		for _, l := range c.limits {
			c.share = append(c.share, shareOf(l, cfg.FallbackShare))
		}
	}
	c.health = &health{probeEvery: cfg.ProbeEvery}
	c.shadow = newThrottledLog(cfg.Logger, time.Second)
	return c, nil
}

func checkName(n string) error {
	if n == "" || len(n) > maxNameBytes {
		return fmt.Errorf("name %q must be 1 to %d bytes long", n, maxNameBytes)
	}
	for i := 0; i < len(n); i++ {
		if n[i] < 0x20 || n[i] > 0x7e {
			return fmt.Errorf("name %q must be printable ASCII", n)
		}
	}
	return nil
}

// resolveLimit returns l as a protocol limit without id nor cost.
func resolveLimit(b CheckBackend, l Limit) (protocol.CheckLimit, error) {
	six := l.Scale != 0 || l.Max != 0
	switch {
	case six && l.Policy != nil:
		return protocol.CheckLimit{}, fmt.Errorf("%w: set Scale and Max (Hammer 6) or Policy (Hammer 7), not both", protocol.ErrInvalid)
	case l.Policy != nil:
		p, err := hammer7.Resolve(b, l.Policy)
		return protocol.CheckLimit{Policy: p, Shadow: l.Shadow}, err
	}
	if _, _, _, err := window(l.Scale, 0); err != nil {
		return protocol.CheckLimit{}, err
	}
	r := protocol.CheckLimit{Hammer6: true, Policy: protocol.Policy{ScaleMs: l.Scale.Milliseconds(), Limit: l.Max},
		Shadow: l.Shadow, Cost: 1}
	return r, r.Validate()
}

// shareOf returns l at share of its limit, capacity and rate: at least 1
// of each that was at least 1.
func shareOf(l protocol.CheckLimit, share float64) protocol.CheckLimit {
	scale := func(n int64) int64 {
		if n < 1 {
			return n
		}
		return max(1, int64(float64(n)*share))
	}
	l.Policy.Limit, l.Policy.Rate = scale(l.Policy.Limit), scale(l.Policy.Rate)
	return l
}

// WithClock returns a copy of c that reads the time from now instead of
// time.Now: the windows of Hammer 6 limits and fix windows, and the
// reported resets. It shares c's degraded state.
func (c *Checker) WithClock(now func() time.Time) *Checker {
	d := *c
	d.now = now
	return &d
}

// Limits returns the checker's limits, as configured.
func (c *Checker) Limits() []Limit { return append([]Limit(nil), c.cfg.Limits...) }

// FallbackAfter returns how long a backend call may take before
// Config.Fallback decides instead (Config.FallbackAfter, defaults
// applied); 0 without a Fallback. Callers that bound their checks with a
// deadline of their own (httplimit, contrib/grpc) refuse one that would end
// first.
func (c *Checker) FallbackAfter() time.Duration {
	if c.cfg.Fallback == nil {
		return 0
	}
	return c.cfg.FallbackAfter
}

// Degraded reports whether Config.Fallback decides the requests now.
func (c *Checker) Degraded() bool { return c.health.degraded.Load() }

// Decision is the outcome of a check against every limit.
type Decision struct {
	// Allowed reports whether the request may go on: no limit that is not
	// Shadow denied it.
	Allowed bool
	// Charged reports whether the limits counted the request: false only
	// with Config.AllOrNothing when the request was denied.
	Charged bool
	// Degraded reports that Config.Fallback decided, at FallbackShare of
	// each limit, because the backend could not.
	Degraded bool
	// Limits holds each limit's result, in the order of Config.Limits.
	Limits []LimitResult
}

// LimitResult is one limit's part of a Decision, with what the RateLimit
// header fields tell about it.
type LimitResult struct {
	// Name is the limit's name.
	Name string
	// Shadow reports a Shadow limit, whose denial does not deny.
	Shadow bool
	// Allowed is this limit's own verdict.
	Allowed bool
	// Count is Hammer's value: a window's count, a leaky bucket's level, a
	// token bucket's tokens left (hammer7.Result.Count; for a Hammer 6
	// limit, Result.Count). When the request was not Charged, it is the
	// count the limit is left at, without this request, as are Remaining
	// and Reset.
	Count int64
	// Quota is the window's limit or the bucket's capacity (the draft's
	// q), at FallbackShare when Degraded.
	Quota int64
	// Window is the quota's period (the draft's w): the window, or the
	// time a bucket takes to go from empty to full (capacity/rate,
	// rounded up to a second).
	Window time.Duration
	// Remaining is how much of the quota is left (the draft's r).
	Remaining int64
	// Reset is how long until the quota is whole again (the draft's t): a
	// fixed window's end; a bucket full (token) or empty (leaky); for a
	// sliding window, the window's length, or RetryAfter when denied.
	Reset time.Duration
	// RetryAfter is, when denied, how long until a request could be
	// allowed; 0 when allowed or Never.
	RetryAfter time.Duration
	// Never reports a denial no wait can help: the cost exceeds the quota.
	Never bool
}

// RetryAfter returns, for a denied decision, the longest RetryAfter of the
// limits that deny it, and whether one of them can never allow it.
func (d Decision) RetryAfter() (wait time.Duration, never bool) {
	for _, l := range d.Limits {
		if l.Allowed || l.Shadow {
			continue
		}
		never = never || l.Never
		wait = max(wait, l.RetryAfter)
	}
	return wait, never
}

// Check checks one request of cost 1 against every limit. Give one key for
// every limit, or one key per limit in the order of Config.Limits; limit
// i then counts id Limit.IDPrefix + keys[i]. Being limited is a Decision,
// not an error.
func (c *Checker) Check(ctx context.Context, keys ...string) (Decision, error) {
	return c.CheckN(ctx, 1, keys...)
}

// CheckN is Check for a request of cost units, at least 1.
func (c *Checker) CheckN(ctx context.Context, cost int64, keys ...string) (Decision, error) {
	if len(keys) != 1 && len(keys) != len(c.limits) {
		return Decision{}, fmt.Errorf("%w: hammer: %d keys for %d limits: give one key, or one per limit",
			protocol.ErrInvalid, len(keys), len(c.limits))
	}
	if cost < 1 {
		return Decision{}, fmt.Errorf("%w: hammer: cost %d must be at least 1", protocol.ErrInvalid, cost)
	}
	now := c.now()
	req := protocol.Check{Now: now.UnixMilli(), AllOrNothing: c.cfg.AllOrNothing,
		Limits: make([]protocol.CheckLimit, len(c.limits))}
	// The ids are parts of one string: one allocation, not one per limit.
	n := 0
	for i := range c.limits {
		n += len(c.meta[i].idPrefix) + len(keys[min(i, len(keys)-1)])
	}
	var b strings.Builder
	b.Grow(n)
	for i := range c.limits {
		b.WriteString(c.meta[i].idPrefix)
		b.WriteString(keys[min(i, len(keys)-1)])
	}
	ids := b.String()
	for i, l := range c.limits {
		n = len(c.meta[i].idPrefix) + len(keys[min(i, len(keys)-1)])
		l.ID, l.Cost, ids = ids[:n], cost, ids[n:]
		req.Limits[i] = l
	}
	if err := req.Validate(); err != nil {
		return Decision{}, err
	}
	var rep protocol.CheckReply
	err := errDegraded
	if c.share == nil || c.health.tryBackend(c.backend, now) {
		bctx := ctx
		if c.share != nil {
			var cancel context.CancelFunc
			bctx, cancel = context.WithTimeout(ctx, c.cfg.FallbackAfter)
			defer cancel()
		}
		start := time.Now()
		rep, err = c.backend.Check(bctx, req)
		if err == nil && len(rep.Decisions) != len(req.Limits) {
			err = fmt.Errorf("%w: hammer: %d decisions for %d limits", protocol.ErrBadReply, len(rep.Decisions), len(req.Limits))
		}
		if c.cfg.Observer != nil {
			c.cfg.Observer.BackendCall(ctx, time.Since(start), err)
		}
	}
	degraded := false
	if err != nil {
		if c.share == nil || errors.Is(err, protocol.ErrInvalid) || ctx.Err() != nil {
			if err == errDegraded {
				// Degraded, and the caller has left: its context's error,
				// not the fallback's decision.
				err = fmt.Errorf("hammer: %w", ctx.Err())
			}
			c.observeError(ctx)
			return Decision{}, err
		}
		if err != errDegraded {
			c.health.failed(c.cfg.Logger, err, c.cfg.FallbackShare, now)
		}
		for i := range req.Limits {
			req.Limits[i].Policy = c.share[i].Policy
		}
		rep, err = c.cfg.Fallback.Check(ctx, req)
		if err == nil && len(rep.Decisions) != len(req.Limits) {
			err = fmt.Errorf("%w: hammer: %d decisions for %d limits", protocol.ErrBadReply, len(rep.Decisions), len(req.Limits))
		}
		if err != nil {
			c.observeError(ctx)
			return Decision{}, fmt.Errorf("hammer: degraded: the fallback failed too: %w", err)
		}
		degraded = true
	} else if c.share != nil {
		c.health.succeeded(c.cfg.Logger)
	}
	return c.decision(ctx, req, rep, now, degraded), nil
}

// errDegraded marks a check that did not try the backend.
var errDegraded = errors.New("hammer: degraded")

func (c *Checker) observeError(ctx context.Context) {
	if c.cfg.Observer == nil {
		return
	}
	for _, m := range c.meta {
		c.cfg.Observer.Decided(ctx, m.name, Error, false)
	}
}

// decision builds the Decision of req's reply, and reports it.
func (c *Checker) decision(ctx context.Context, req protocol.Check, rep protocol.CheckReply, now time.Time, degraded bool) Decision {
	d := Decision{Allowed: req.Allowed(rep.Decisions), Charged: req.Charged(rep.Decisions), Degraded: degraded,
		Limits: make([]LimitResult, len(req.Limits))}
	shadowDenied := 0
	for i, l := range req.Limits {
		h := rep.Decisions[i]
		if !d.Charged {
			h = uncharged(l, h)
		}
		r := resultOf(l, h, req.Now)
		r.Name = c.meta[i].name
		d.Limits[i] = r
		outcome := Allowed
		switch {
		case r.Allowed:
		case r.Shadow:
			outcome = ShadowDenied
			shadowDenied++
		default:
			outcome = Denied
		}
		if c.cfg.Observer != nil {
			c.cfg.Observer.Decided(ctx, r.Name, outcome, degraded)
		}
	}
	if shadowDenied > 0 {
		c.shadow.note(now, d)
	}
	return d
}

// uncharged returns h, the decision of l in a check that charged nothing,
// with the count l is left at: h tells what the hit would have made of it
// (protocol.Check), but it was not counted. (Of two limits on one key,
// the later one's count also holds the earlier's hit.)
func uncharged(l protocol.CheckLimit, h protocol.HitReply) protocol.HitReply {
	switch {
	case !h.Allowed && !l.Hammer6 && l.Policy.Algorithm != protocol.FixWindow:
		// A denied hit changes no bucket nor sliding window.
	case l.Policy.Algorithm == protocol.TokenBucket:
		h.Count += l.Cost // tokens taken
	default:
		h.Count -= l.Cost // units added
	}
	return h
}

// resultOf returns what l's decision h tells, at nowMs.
func resultOf(l protocol.CheckLimit, h protocol.HitReply, nowMs int64) LimitResult {
	p := l.Policy
	r := LimitResult{Shadow: l.Shadow, Allowed: h.Allowed, Count: h.Count, Quota: p.Limit}
	ms := func(n int64) time.Duration { return time.Duration(n) * time.Millisecond }
	// secs is n units at rate per second, in whole seconds rounded up; at
	// most the longest Duration (a capacity of 2^50 at 1/s is longer).
	secs := func(n int64) time.Duration {
		return time.Duration(min((max(n, 0)+p.Rate-1)/p.Rate, math.MaxInt64/int64(time.Second))) * time.Second
	}
	switch {
	case l.Hammer6 || p.Algorithm == protocol.FixWindow:
		end := int64(0)
		if l.Hammer6 {
			_, toNext := l.Bucket6(nowMs)
			end = toNext
		} else {
			_, e := p.Window(nowMs)
			end = e - nowMs
		}
		r.Window, r.Remaining, r.Reset = ms(p.ScaleMs), max(p.Limit-h.Count, 0), ms(end)
	case p.Algorithm == protocol.SlidingWindow:
		r.Window, r.Remaining, r.Reset = time.Duration(p.WindowSeconds())*time.Second, max(p.Limit-h.Count, 0),
			time.Duration(p.WindowSeconds())*time.Second
	case p.Algorithm == protocol.TokenBucket:
		r.Window, r.Remaining, r.Reset = secs(p.Limit), max(h.Count, 0), secs(p.Limit-h.Count)
	default: // leaky bucket
		r.Window, r.Remaining, r.Reset = secs(p.Limit), max(p.Limit-h.Count, 0), secs(h.Count)
	}
	if !h.Allowed {
		if h.RetryAfterMs == protocol.Never {
			r.Never = true
		} else {
			r.RetryAfter = ms(h.RetryAfterMs)
			if p.Algorithm == protocol.SlidingWindow {
				r.Reset = r.RetryAfter
			}
		}
	}
	return r
}
