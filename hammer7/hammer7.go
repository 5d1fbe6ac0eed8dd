package hammer7

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hammer-go/hammerredis/protocol"
)

// Backend runs Hammer 7 limiter calls. *hammerredis.Backend and
// *memory.Backend implement it. Its types are package protocol's, so this
// package does not depend on the Redis client. A Backend validates every
// request again and follows the rules of protocol/hammer7.go.
type Backend interface {
	// Hit counts a hit and decides it.
	Hit(ctx context.Context, r protocol.Hit) (protocol.HitReply, error)
	// Inc adds to a window's count, without a limit check, and returns it.
	Inc(ctx context.Context, r protocol.Inc) (int64, error)
	// Set sets a window's count and returns it.
	Set(ctx context.Context, r protocol.Set) (int64, error)
	// Get reads a window's count or a bucket's level, changing nothing.
	Get(ctx context.Context, r protocol.Get) (int64, error)
}

// KeyPrefixer is implemented by a backend that keeps Hammer 6 buckets in
// the same keyspace as Hammer 7 limiters, as *hammerredis.Backend does.
// KeyPrefix returns the prefix of its Hammer 6 keys ("<prefix><id>:<bucket>";
// hammerredis.Options.KeyPrefix, default "Hammer:Redis:").
//
// [New] refuses a policy whose keys ("<Prefix>:…") could also be Hammer 6
// keys of that backend: when one of KeyPrefix() and Prefix+":" starts with
// the other. Such keys hold different types (a Hammer 6 hash, a Hammer 7
// string or sorted set), or the same type with other fields (buckets), and
// Hammer 6's delete_buckets would delete Hammer 7 keys.
type KeyPrefixer interface {
	KeyPrefix() string
}

// Policy is what a Limiter enforces: one of [FixWindow], [SlidingWindow],
// [LeakyBucket] and [TokenBucket], each with its own field names, so that a
// window's length can never be passed as a rate per second. It is what
// Elixir's `use Hammer, algorithm:, prefix:` fixes, together with the two
// numbers its hit takes. No other package can implement it.
type Policy interface {
	// policy converts to the backend's policy, unvalidated.
	policy() (protocol.Policy, error)
}

// FixWindow counts hits in fixed windows of Window aligned on the Unix
// epoch, and allows Limit units per window. Denied hits count too, so a
// client that keeps retrying stays denied until the window ends. Elixir:
// algorithm: :fix_window (Hammer's default).
type FixWindow struct {
	// Prefix starts every key, followed by ":". Required: Elixir's default
	// is the limiter module's name ("MyApp.RateLimit").
	Prefix string
	// Window is a window's length: a whole number of milliseconds, at least
	// 1ms. Elixir: hit's scale (ms).
	Window time.Duration
	// Limit is how many units a window allows; 0 denies every hit that
	// costs anything.
	Limit int64
}

// SlidingWindow allows Limit units in any span of Window, counted in whole
// seconds: a unit counted in second s stops counting at second s+Window.
// Denied hits do not count. Elixir: algorithm: :sliding_window.
type SlidingWindow struct {
	// Prefix starts every key, followed by ":". Required.
	Prefix string
	// Window is the span: at least 1s and a whole number of milliseconds.
	// Only its whole seconds count (1500ms acts as 1s), as in Hammer 7;
	// the milliseconds still name the key, so that it is Elixir's.
	// Elixir: hit's scale (ms).
	Window time.Duration
	// Limit is how many units a window allows; 0 denies every hit that
	// costs anything.
	Limit int64
}

// LeakyBucket holds up to Capacity units and leaks LeakPerSecond units per
// second; a hit of cost n is allowed when n more units fit in the bucket.
// Elixir: algorithm: :leaky_bucket.
type LeakyBucket struct {
	// Prefix starts every key, followed by ":". Required.
	Prefix string
	// LeakPerSecond is how many units leak out each second, at least 1.
	// Elixir: hit's second argument (a rate per second, not ms).
	LeakPerSecond int64
	// Capacity is how many units the bucket holds, at least 1. Elixir:
	// hit's third argument.
	Capacity int64
}

// TokenBucket holds up to Capacity tokens, starts full and gains
// RefillPerSecond tokens per second; a hit of cost n takes n tokens, and is
// allowed when there are that many. Elixir: algorithm: :token_bucket.
type TokenBucket struct {
	// Prefix starts every key, followed by ":". Required.
	Prefix string
	// RefillPerSecond is how many tokens come back each second, at least 1.
	// Elixir: hit's second argument (a rate per second, not ms).
	RefillPerSecond int64
	// Capacity is the most tokens the bucket holds, at least 1. Elixir:
	// hit's third argument.
	Capacity int64
}

func (p FixWindow) policy() (protocol.Policy, error) {
	ms, err := windowMs(protocol.FixWindow, p.Window, time.Millisecond)
	return protocol.Policy{Algorithm: protocol.FixWindow, Prefix: p.Prefix, ScaleMs: ms, Limit: p.Limit}, err
}

func (p SlidingWindow) policy() (protocol.Policy, error) {
	ms, err := windowMs(protocol.SlidingWindow, p.Window, time.Second)
	return protocol.Policy{Algorithm: protocol.SlidingWindow, Prefix: p.Prefix, ScaleMs: ms, Limit: p.Limit}, err
}

func (p LeakyBucket) policy() (protocol.Policy, error) {
	return protocol.Policy{Algorithm: protocol.LeakyBucket, Prefix: p.Prefix, Rate: p.LeakPerSecond, Limit: p.Capacity}, nil
}

func (p TokenBucket) policy() (protocol.Policy, error) {
	return protocol.Policy{Algorithm: protocol.TokenBucket, Prefix: p.Prefix, Rate: p.RefillPerSecond, Limit: p.Capacity}, nil
}

// windowMs returns w in ms, refusing a window shorter than least or not a
// whole number of ms. protocol.Policy.Validate checks the upper bound.
func windowMs(a protocol.Algorithm, w, least time.Duration) (int64, error) {
	switch {
	case w < least && a == protocol.SlidingWindow:
		return 0, fmt.Errorf("%w: %s: window %v is shorter than %v (Hammer 7 counts whole seconds, and never limits a shorter window)", protocol.ErrInvalid, a, w, least)
	case w < least:
		return 0, fmt.Errorf("%w: %s: window %v is shorter than %v", protocol.ErrInvalid, a, w, least)
	case w%time.Millisecond != 0:
		return 0, fmt.Errorf("%w: %s: window %v is not a whole number of milliseconds", protocol.ErrInvalid, a, w)
	}
	return w.Milliseconds(), nil
}

// Limiter enforces one Policy in a Backend: Elixir's module with `use
// Hammer`. It is safe for concurrent use.
type Limiter struct {
	backend Backend
	policy  protocol.Policy
	now     func() time.Time
}

// New returns a limiter enforcing p in b. It refuses, with an error
// wrapping protocol.ErrInvalid (hammerredis.ErrInvalid), a policy out of
// range (see the fields of each policy, and protocol.Policy.Validate for
// the upper bounds), and a Prefix whose keys could be Hammer 6 keys of b
// (see [KeyPrefixer]). It sends nothing to b.
func New(b Backend, p Policy) (*Limiter, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: hammer7: nil backend", protocol.ErrInvalid)
	}
	pp, err := Resolve(b, p)
	if err != nil {
		return nil, err
	}
	return &Limiter{backend: b, policy: pp, now: time.Now}, nil
}

// Resolve returns p as the backend sees it, or the error [New] would give
// for p on backend b: a policy out of range, or a Prefix whose keys could
// be Hammer 6 keys of b (when b is a [KeyPrefixer]). Packages that build
// checks of several limits (hammer.Checker) call it.
func Resolve(b any, p Policy) (protocol.Policy, error) {
	if p == nil {
		return protocol.Policy{}, fmt.Errorf("%w: hammer7: nil policy", protocol.ErrInvalid)
	}
	pp, err := p.policy()
	if err == nil {
		err = pp.Validate()
	}
	if err != nil {
		return protocol.Policy{}, err
	}
	if kp, ok := b.(KeyPrefixer); ok {
		k6, k7 := kp.KeyPrefix(), pp.Prefix+":"
		if strings.HasPrefix(k6, k7) || strings.HasPrefix(k7, k6) {
			return protocol.Policy{}, fmt.Errorf("%w: %s: prefix %q gives keys %q… that can also be the backend's Hammer 6 keys %q…; "+
				"choose a prefix such that neither of %q and %q starts with the other",
				protocol.ErrInvalid, pp.Algorithm, pp.Prefix, k7, k6, k7, k6)
		}
	}
	return pp, nil
}

// WithClock returns a copy of l that reads the time from now instead of
// time.Now. Only fix_window reads this clock (the Now of each request: its
// window and its RetryAfter); the other algorithms, and the expiry of every
// key, follow the backend's clock (Redis TIME). A fix-window key expires at
// its window's end on the backend's clock: with a clock d behind the
// backend's, the hits of the last d of each window find their key already
// expired and count nothing (every one is allowed). See the package doc,
// Time.
func (l *Limiter) WithClock(now func() time.Time) *Limiter {
	c := *l
	c.now = now
	return &c
}

// Policy returns the limiter's policy as the backend sees it: algorithm,
// prefix, window in ms or rate per second, limit or capacity (for headers
// and logs).
func (l *Limiter) Policy() protocol.Policy { return l.policy }

// Result is the outcome of a hit. Being limited is a Result, not an error.
type Result struct {
	// Allowed reports whether the hit was let through.
	Allowed bool
	// Count is Hammer 7's value: a window's count after the hit, a leaky
	// bucket's level after it, or a token bucket's tokens left. Elixir:
	// the X of {:allow, X}. When denied, it is the same quantity as it
	// stands: with the denied hit for a fixed window (which counts it), as
	// before the hit otherwise.
	Count int64
	// Limit is the window's limit or the bucket's capacity.
	Limit int64
	// Remaining is how many more units a hit could take now: Limit−Count
	// for windows and leaky buckets (at least 0), Count for token buckets.
	Remaining int64
	// RetryAfter is, when denied, how long until a hit of the same cost
	// could be allowed (as things stand: another client's hits may take the
	// room first), at least 1ms. 0 when allowed, and when Never. Elixir:
	// the Y ms of {:deny, Y}, corrected (see the package doc).
	RetryAfter time.Duration
	// Never reports a hit denied because its cost exceeds the limit or the
	// capacity: it can never be allowed, and RetryAfter is 0.
	Never bool
}

// Hit counts one unit for key and decides it: Elixir's hit(key, a, b).
func (l *Limiter) Hit(ctx context.Context, key string) (Result, error) {
	return l.HitN(ctx, key, 1)
}

// HitN counts cost units for key and decides them together: Elixir's
// hit(key, a, b, cost). A cost of 0 takes nothing and reports Count as it
// stands, allowed unless a window is already over its limit. A cost above
// the limit or capacity is denied with Never.
func (l *Limiter) HitN(ctx context.Context, key string, cost int64) (Result, error) {
	r := protocol.Hit{Policy: l.policy, ID: key, Cost: cost, Now: l.now().UnixMilli()}
	if err := r.Validate(); err != nil {
		return Result{}, err
	}
	rep, err := l.backend.Hit(ctx, r)
	if err != nil {
		return Result{}, err
	}
	res := Result{Allowed: rep.Allowed, Count: rep.Count, Limit: l.policy.Limit}
	if l.policy.Algorithm == protocol.TokenBucket {
		res.Remaining = rep.Count
	} else {
		res.Remaining = max(l.policy.Limit-rep.Count, 0)
	}
	if !rep.Allowed {
		if rep.RetryAfterMs == protocol.Never {
			res.Never = true
		} else {
			res.RetryAfter = time.Duration(rep.RetryAfterMs) * time.Millisecond
		}
	}
	return res, nil
}

// Inc adds n units to key's window without checking the limit, and returns
// the window's count. Windows only: an error wrapping protocol.ErrInvalid
// for buckets. Elixir: inc(key, scale, n).
func (l *Limiter) Inc(ctx context.Context, key string, n int64) (int64, error) {
	r := protocol.Inc{Policy: l.policy, ID: key, N: n, Now: l.now().UnixMilli()}
	if err := r.Validate(); err != nil {
		return 0, err
	}
	return l.backend.Inc(ctx, r)
}

// Set sets key's window count to count and returns it; 0 clears the window.
// Windows only: an error wrapping protocol.ErrInvalid for buckets. Elixir:
// set(key, scale, count).
func (l *Limiter) Set(ctx context.Context, key string, count int64) (int64, error) {
	r := protocol.Set{Policy: l.policy, ID: key, Count: count, Now: l.now().UnixMilli()}
	if err := r.Validate(); err != nil {
		return 0, err
	}
	return l.backend.Set(ctx, r)
}

// Get returns, without changing anything, key's window count, a leaky
// bucket's level or a token bucket's tokens, with the leak or refill up to
// now applied: 0 for a window or leaky bucket never hit, Capacity for a
// token bucket never hit. Elixir: get(key, scale).
func (l *Limiter) Get(ctx context.Context, key string) (int64, error) {
	r := protocol.Get{Policy: l.policy, ID: key, Now: l.now().UnixMilli()}
	if err := r.Validate(); err != nil {
		return 0, err
	}
	return l.backend.Get(ctx, r)
}
