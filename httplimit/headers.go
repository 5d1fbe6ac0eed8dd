package httplimit

import (
	"net/http"
	"strconv"
	"time"

	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/internal/sfv"
	"github.com/hammer-go/hammerredis/protocol"
)

// HeaderStyle says which rate-limit fields a response carries. Whatever
// the style, a denied request gets Retry-After (unless no wait can help),
// and a request that was not counted gets none of them.
type HeaderStyle int

const (
	// DraftHeaders, the default: RateLimit-Policy and RateLimit, as
	// draft-ietf-httpapi-ratelimit-headers-10 and -11 define them
	// (Sections 3 and 4 of both); see "Response headers" in the package
	// docs.
	DraftHeaders HeaderStyle = iota
	// LegacyHeaders: RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset
	// and RateLimit-Policy ("100;w=60"), the separate fields of
	// draft-ietf-httpapi-ratelimit-headers-06, for clients written
	// against it. This package's only style before DraftHeaders.
	LegacyHeaders
	// XRateLimitHeaders: X-RateLimit-Limit, X-RateLimit-Remaining and
	// X-RateLimit-Reset, the same numbers as LegacyHeaders' three (Reset
	// in seconds from now, not a Unix time), for clients that read those.
	XRateLimitHeaders
	// NoHeaders: no rate-limit field; Retry-After only.
	NoHeaders
)

var styleNames = [...]string{"draft", "legacy", "x-ratelimit", "none"}

// String returns "draft", "legacy", "x-ratelimit" or "none".
func (s HeaderStyle) String() string {
	if s >= 0 && int(s) < len(styleNames) {
		return styleNames[s]
	}
	return "HeaderStyle(" + strconv.Itoa(int(s)) + ")"
}

// Header names set by the middleware.
const (
	headerRateLimit  = "RateLimit"
	headerPolicy     = "RateLimit-Policy"
	headerLimit      = "RateLimit-Limit"
	headerRemaining  = "RateLimit-Remaining"
	headerReset      = "RateLimit-Reset"
	headerXLimit     = "X-RateLimit-Limit"
	headerXRemaining = "X-RateLimit-Remaining"
	headerXReset     = "X-RateLimit-Reset"
	headerRetryAfter = "Retry-After"
)

// ShadowParam is the parameter that marks a Shadow limit's items in
// RateLimit-Policy and RateLimit (a Boolean, written as the key alone):
// a vendor-prefixed parameter, as Sections 3.1 and 4.1 of the drafts ask
// of implementation-specific ones.
const ShadowParam = "hammer-shadow"

// DefaultPolicyName names the limit of Config.Limiter and Config.Hammer7 in
// the RateLimit fields, as the drafts' examples do.
const DefaultPolicyName = "default"

// quota is one limit as the response fields tell it.
type quota struct {
	name   string
	shadow bool
	q      int64 // the quota: a window's limit, a bucket's capacity
	w      int64 // the window in whole seconds; 0 when unknown or not whole
	r      int64 // how much of q is left
	t      int64 // seconds until reset, rounded up; -1 when unknown
}

// verdict is a rate check's outcome, from any of the three limiters, as
// the response fields show it.
type verdict struct {
	allowed bool
	quotas  []quota // every limit, in order: RateLimit-Policy
	named   int     // the quota that RateLimit and the legacy trio name
	// retryAfter is Retry-After of a denied request, in seconds; -1 leaves
	// it out (no wait can help).
	retryAfter int64
	// violated names the limits that denied the request.
	violated []string
	// result is the Result, hammer7.Result or hammer.Decision, for the
	// request's context.
	result any
}

// setHeaders writes v's fields in style to h, except Retry-After.
// legacyPolicy leaves RateLimit-Policy out of the legacy style (Hammer 7,
// whose legacy fields never had it).
func setHeaders(h http.Header, style HeaderStyle, v *verdict, legacyPolicy bool) {
	n := v.quotas[v.named]
	switch style {
	case DraftHeaders:
		items := make([]sfv.Item, len(v.quotas))
		for i, qt := range v.quotas {
			items[i] = sfv.Item{Value: qt.name, Params: []sfv.Param{{Key: "q", Value: sfv.Clamp(qt.q)}}}
			if qt.w > 0 {
				items[i].Params = append(items[i].Params, sfv.Param{Key: "w", Value: sfv.Clamp(qt.w)})
			}
			if qt.shadow {
				items[i].Params = append(items[i].Params, sfv.Param{Key: ShadowParam, Value: true})
			}
		}
		setList(h, headerPolicy, items...)
		it := sfv.Item{Value: n.name, Params: []sfv.Param{{Key: "r", Value: sfv.Clamp(n.r)}}}
		if n.t >= 0 {
			it.Params = append(it.Params, sfv.Param{Key: "t", Value: sfv.Clamp(n.t)})
		}
		if n.shadow {
			it.Params = append(it.Params, sfv.Param{Key: ShadowParam, Value: true})
		}
		setList(h, headerRateLimit, it)
	case LegacyHeaders:
		setTrio(h, n, headerLimit, headerRemaining, headerReset)
		if !legacyPolicy {
			return
		}
		var items []sfv.Item
		for _, qt := range v.quotas {
			if qt.w > 0 {
				it := sfv.Item{Value: sfv.Clamp(qt.q), Params: []sfv.Param{{Key: "w", Value: sfv.Clamp(qt.w)}}}
				if qt.shadow {
					it.Params = append(it.Params, sfv.Param{Key: ShadowParam, Value: true})
				}
				items = append(items, it)
			}
		}
		setList(h, headerPolicy, items...)
	case XRateLimitHeaders:
		setTrio(h, n, headerXLimit, headerXRemaining, headerXReset)
	}
}

func setTrio(h http.Header, n quota, limit, remaining, reset string) {
	h.Set(limit, strconv.FormatInt(n.q, 10))
	h.Set(remaining, strconv.FormatInt(n.r, 10))
	if n.t >= 0 {
		h.Set(reset, strconv.FormatInt(n.t, 10))
	}
}

// setList sets field name to the sf-list of items, or leaves it out when
// there are none. The items are built from validated names and clamped
// numbers: an error would be this package's bug, and leaves the field out
// rather than send one a client must ignore.
func setList(h http.Header, name string, items ...sfv.Item) {
	if len(items) == 0 {
		return
	}
	if v, err := sfv.List(items...); err == nil {
		h.Set(name, v)
	}
}

// window7 returns the window of a Hammer 7 policy in whole seconds (0 when
// it is not whole): a window's length, or the time a bucket takes to go
// from empty to full (capacity/rate, rounded up), as hammer.LimitResult's
// Window.
func window7(p protocol.Policy) int64 {
	if p.Algorithm.IsWindow() {
		return sfv.WholeSeconds(time.Duration(p.ScaleMs) * time.Millisecond)
	}
	if p.Rate < 1 {
		return 0
	}
	return (p.Limit + p.Rate - 1) / p.Rate
}

// decisionVerdict returns what a Checker's decision d shows.
func decisionVerdict(d hammer.Decision) verdict {
	v := verdict{allowed: d.Allowed, quotas: make([]quota, len(d.Limits)), result: d, retryAfter: -1}
	for i, l := range d.Limits {
		qt := quota{name: l.Name, shadow: l.Shadow, q: l.Quota, w: sfv.WholeSeconds(l.Window), r: l.Remaining,
			t: sfv.CeilSeconds(l.Reset)}
		if !l.Allowed {
			// A denied limit's quota comes back when a request fits again:
			// t is then Retry-After, never earlier, as Section 6 of the
			// drafts asks.
			qt.t = -1
			if !l.Never {
				qt.t = max(sfv.CeilSeconds(l.RetryAfter), 1)
			}
			if !l.Shadow {
				v.violated = append(v.violated, l.Name)
			}
		}
		v.quotas[i] = qt
	}
	v.named = closest(d.Limits)
	if !d.Allowed {
		if wait, never := d.RetryAfter(); !never {
			v.retryAfter = max(sfv.CeilSeconds(wait), 1)
		}
	}
	return v
}

// closest returns the index of the limit that RateLimit names: of the
// limits that are not Shadow (of all of them when every one is), the one
// that denies, or else the one closest to denying, as Appendix B.1.2 of the
// drafts shows ("the closest limit to reach").
func closest(ls []hammer.LimitResult) int {
	best := -1
	allShadow := true
	for _, l := range ls {
		allShadow = allShadow && l.Shadow
	}
	for i, l := range ls {
		if l.Shadow && !allShadow {
			continue
		}
		if best < 0 || closer(l, ls[best]) {
			best = i
		}
	}
	return best
}

// closer reports whether a is closer to denying than b: a denial before an
// allowance; of two denials, one no wait can help, else the longer wait
// (the one Retry-After reports); of two allowances, the fewer units left,
// then the longer time until they come back. Ties keep the earlier limit.
func closer(a, b hammer.LimitResult) bool {
	switch {
	case a.Allowed != b.Allowed:
		return !a.Allowed
	case !a.Allowed:
		if a.Never != b.Never {
			return a.Never
		}
		return a.RetryAfter > b.RetryAfter
	case a.Remaining != b.Remaining:
		return a.Remaining < b.Remaining
	}
	return a.Reset > b.Reset
}
