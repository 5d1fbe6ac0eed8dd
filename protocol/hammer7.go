package protocol

import (
	"fmt"
	"strconv"
)

// Hammer 7's limiters: the four algorithms of Elixir's Hammer 7 with the
// Redis data of hammer_backend_redis 7.x, minus its defects. Every backend
// follows the rules below, so that a limiter gives the same decisions on
// Redis and in memory, and a Hammer 7 service counts into the same keys.
//
// Time. fix_window reads the caller's clock (Now, ms, as Elixir does: the key
// must be known before the call). The other three read Redis TIME inside
// their script (the memory backend: its clock), as whole seconds s and
// microseconds: every stored time is a whole second, so leaking, refilling
// and sliding move in steps at second boundaries, exactly as in Hammer 7.
// "now_ms" below is that instant in ms (s×1000 + µs/1000).
//
// fix_window, key "<prefix>:<id>:<now/scale>", a string counter whose
// expiry is the window's end (PEXPIREAT NX, set by the first writer). A hit
// adds Cost, also when it is then denied (Hammer counts denied hits); it is
// allowed while the count after it is at most Limit. Deny: RetryAfter is the
// window's end minus Now; Never when Cost > Limit. Inc adds N without a
// limit check and returns the count; Set stores Count (0 included) and
// returns it (a key of another type is refused: WRONGTYPE); Get returns the
// count, 0 when there is no key.
//
// sliding_window, key "<prefix>:<id>:<scale>", a sorted set with one member
// per counted unit, scored by its second s. With w = scale/1000 whole
// seconds, the members scored at or below s−w are dropped first; a hit of
// Cost is allowed when the members left plus Cost are at most Limit, and
// then adds Cost members and sets EXPIRE w. A denied hit writes nothing.
// Deny: with k = members + Cost − Limit, RetryAfter is when the k-th oldest
// member leaves, (its score + w)×1000 − now_ms; Never when Cost > Limit.
// Members are "<s>-<µs>-<i>" (made unique if taken): never equal to
// Elixir's all-digit members. Inc, Set and Get use the hit's key and rules
// (unlike Hammer 7, whose own inc, set and get use another key): Inc drops
// the old members, adds N and returns the count; Set (refusing a key of
// another type) replaces the members by Count new ones (0 deletes the key)
// and returns Count; Get counts the members scored above s−w, writing
// nothing.
//
// leaky_bucket, key "<prefix>:<id>", a hash {level, last_update (s)}. The
// level leaks Rate units per second since last_update:
// level' = max(0, level − e×Rate), with e = s − last_update, or 0 should the
// clock be behind last_update (a failover to a server whose clock is). A hit is allowed when
// level' + Cost ≤ Limit (the capacity); it then stores level' + Cost and
// last_update s, and sets EXPIRE ceil(stored level/Rate) + 60. Deny: RetryAfter
// (last_update + ceil((level + Cost − Limit)/Rate))×1000 − now_ms, the
// first second at which it fits; Never when Cost > Limit. Get returns
// level' (0 without a key), writing nothing.
//
// token_bucket, key "<prefix>:<id>", a hash {level (tokens left),
// last_update (s)}; a bucket without a key is full. Tokens refill at Rate
// per second: tokens = min(Limit, level + e×Rate), e as for leaky_bucket. A hit is
// allowed when tokens ≥ Cost; it then stores tokens − Cost and last_update
// s, and sets EXPIRE ceil((Limit − stored level)/Rate) + 60. Deny: RetryAfter
// (last_update + ceil((Cost − level)/Rate))×1000 − now_ms; Never when Cost >
// Limit. Get returns tokens (Limit without a key), writing nothing.
//
// Every stored number is a base-10 integer string, as Elixir writes them.

// Algorithm is one of Hammer 7's rate-limiting algorithms.
type Algorithm uint8

// The algorithms, named as Hammer 7 names them.
const (
	FixWindow Algorithm = iota + 1
	SlidingWindow
	LeakyBucket
	TokenBucket
)

var algorithmNames = [...]string{"", "fix_window", "sliding_window", "leaky_bucket", "token_bucket"}

// String returns Hammer 7's name of a: "fix_window", "sliding_window",
// "leaky_bucket" or "token_bucket".
func (a Algorithm) String() string {
	if int(a) < len(algorithmNames) && a != 0 {
		return algorithmNames[a]
	}
	return "algorithm(" + strconv.Itoa(int(a)) + ")"
}

// ParseAlgorithm returns the algorithm Hammer 7 names s.
func ParseAlgorithm(s string) (Algorithm, error) {
	for i, n := range algorithmNames {
		if i > 0 && n == s {
			return Algorithm(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown algorithm %q (want fix_window, sliding_window, leaky_bucket or token_bucket)", ErrInvalid, s)
}

// IsWindow reports whether a counts in windows (fix_window, sliding_window)
// rather than in a bucket.
func (a Algorithm) IsWindow() bool { return a == FixWindow || a == SlidingWindow }

// Bounds of a Policy and of the amounts of a call. They keep every number a
// script computes exact (Lua numbers are doubles: integers are exact below
// 2^53) and a sliding window's sorted set of a sane size.
const (
	// MaxLevel bounds Limit, Rate, costs and counts: 2^50.
	MaxLevel int64 = 1 << 50
	// MaxScaleMs bounds a window: 100 years, as MaxExpiryMs.
	MaxScaleMs = MaxExpiryMs
	// MaxSlidingAdd bounds the members one sliding-window call adds (its
	// Cost, N or Count) and so a sliding window's Limit as used: each
	// counted unit is one member of a sorted set.
	MaxSlidingAdd int64 = 1_000_000
)

// Policy is one Hammer 7 limiter: what Elixir's `use Hammer, algorithm:,
// prefix:` fixes, with the numbers its hit takes.
type Policy struct {
	Algorithm Algorithm
	// Prefix starts every key, followed by ":" as in Hammer 7. Required:
	// Elixir's default is the limiter module's name, which the Go side
	// must spell out to share its keys.
	Prefix string
	// ScaleMs is a window's length in ms (windows only). Sliding windows
	// count in whole seconds: at least 1000, and a remainder is dropped,
	// as Hammer 7 does.
	ScaleMs int64
	// Limit is a window's limit, or a bucket's capacity.
	Limit int64
	// Rate is the units per second a leaky bucket leaks or a token bucket
	// refills (buckets only).
	Rate int64
}

// Validate reports, wrapping ErrInvalid, why p cannot be used.
func (p Policy) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s: "+format, append([]any{ErrInvalid, p.Algorithm}, a...)...)
	}
	switch p.Algorithm {
	case FixWindow, SlidingWindow, LeakyBucket, TokenBucket:
	default:
		return fmt.Errorf("%w: unknown algorithm %d", ErrInvalid, p.Algorithm)
	}
	switch {
	case p.Prefix == "":
		return bad("a prefix is required (Elixir's default is the limiter module's name)")
	case len(p.Prefix) > MaxIDBytes:
		return bad("prefix is %d bytes long, the limit is %d", len(p.Prefix), MaxIDBytes)
	case p.Limit < 0 || p.Limit > MaxLevel:
		return bad("limit %d is out of range 0..%d", p.Limit, MaxLevel)
	}
	if p.Algorithm.IsWindow() {
		minScale := int64(1)
		if p.Algorithm == SlidingWindow {
			minScale = 1000 // Hammer 7 trims whole seconds: below 1 s nothing counts
		}
		switch {
		case p.ScaleMs < minScale || p.ScaleMs > MaxScaleMs:
			return bad("scale %d ms is out of range %d..%d", p.ScaleMs, minScale, MaxScaleMs)
		case p.Rate != 0:
			return bad("a window has no rate")
		}
		return nil
	}
	switch {
	case p.Rate < 1 || p.Rate > MaxLevel:
		return bad("rate %d per second is out of range 1..%d", p.Rate, MaxLevel)
	case p.Limit < 1:
		return bad("capacity %d is out of range 1..%d", p.Limit, MaxLevel)
	case p.ScaleMs != 0:
		return bad("a bucket has no scale")
	}
	return nil
}

// WindowSeconds is a sliding window's length in whole seconds.
func (p Policy) WindowSeconds() int64 { return p.ScaleMs / 1000 }

// Window returns fix_window's window number at nowMs and when it ends (ms);
// 0, 0 for a policy without a valid scale (Validate refuses it).
func (p Policy) Window(nowMs int64) (window, endMs int64) {
	if p.ScaleMs <= 0 {
		return 0, 0
	}
	w := nowMs / p.ScaleMs
	if nowMs < 0 && nowMs%p.ScaleMs != 0 {
		w-- // floor: Elixir's div on present-day clocks
	}
	return w, (w + 1) * p.ScaleMs
}

// Key returns the Redis key of id at nowMs (which only fix_window reads).
func (p Policy) Key(id string, nowMs int64) string {
	return string(p.AppendKey(make([]byte, 0, len(p.Prefix)+len(id)+24), id, nowMs))
}

// AppendKey appends the Redis key of id at nowMs to dst: "<prefix>:<id>",
// then ":<window>" for fix_window or ":<scale ms>" for sliding_window.
func (p Policy) AppendKey(dst []byte, id string, nowMs int64) []byte {
	dst = append(dst, p.Prefix...)
	dst = append(dst, ':')
	dst = append(dst, id...)
	switch p.Algorithm {
	case FixWindow:
		w, _ := p.Window(nowMs)
		dst = strconv.AppendInt(append(dst, ':'), w, 10)
	case SlidingWindow:
		dst = strconv.AppendInt(append(dst, ':'), p.ScaleMs, 10)
	}
	return dst
}

// Never is RetryAfter for a hit that can never be allowed: its cost exceeds
// the limit or capacity.
const Never int64 = -1

// Hit is one hit of Cost units on id under Policy: the request is allowed,
// or denied with the time to wait. Elixir: hit(key, scale|rate, limit|capacity, cost).
type Hit struct {
	Policy Policy
	ID     string
	Cost   int64
	// Now is the caller's clock, ms since the Unix epoch: fix_window's
	// window and its deny time. The other algorithms read Redis TIME.
	Now int64
}

// HitReply answers Hit.
type HitReply struct {
	Allowed bool
	// Count is Hammer 7's allow value: a window's count after the hit, a
	// leaky bucket's level after it, a token bucket's tokens left. On a
	// deny it is the same quantity as it stands (a fix window counts the
	// denied hit too).
	Count int64
	// RetryAfterMs is, on a deny, how long until a hit of the same cost
	// could be allowed, at least 1; Never when it never can. 0 when allowed.
	RetryAfterMs int64
}

// Inc adds N to a window's count without checking the limit, and answers
// with a CountReply. Windows only. Elixir: inc(key, scale, n).
type Inc struct {
	Policy Policy
	ID     string
	N      int64
	Now    int64
}

// Set sets a window's count to Count and answers with a CountReply.
// Windows only. Elixir: set(key, scale, count).
type Set struct {
	Policy Policy
	ID     string
	Count  int64
	Now    int64
}

// Get reads a window's count or a bucket's level (with the leak or refill
// up to now applied) without changing anything, and answers with a
// CountReply. Elixir: get(key, scale).
type Get struct {
	Policy Policy
	ID     string
	Now    int64
}

// CountReply answers Inc, Set and Get.
type CountReply struct {
	Count int64
}

func (Hit) request() {}
func (Inc) request() {}
func (Set) request() {}
func (Get) request() {}

func (HitReply) reply()   {}
func (CountReply) reply() {}

// Op returns "hit".
func (Hit) Op() string { return "hit" }

// Op returns "inc".
func (Inc) Op() string { return "inc" }

// Op returns "set".
func (Set) Op() string { return "set" }

// Op returns "get".
func (Get) Op() string { return "get" }

// Validate checks the policy, the id and the cost.
func (r Hit) Validate() error { return validate7(r.Policy, r.ID, "cost", r.Cost) }

// Validate checks the policy, the id and n; windows only.
func (r Inc) Validate() error { return validateWindowOp(r.Policy, r.ID, "inc", "n", r.N) }

// Validate checks the policy, the id and the count; windows only.
func (r Set) Validate() error { return validateWindowOp(r.Policy, r.ID, "set", "count", r.Count) }

// Validate checks the policy and the id.
func (r Get) Validate() error { return validate7(r.Policy, r.ID, "", 0) }

func validateWindowOp(p Policy, id, op, name string, n int64) error {
	if err := validate7(p, id, name, n); err != nil {
		return err
	}
	if !p.Algorithm.IsWindow() {
		return fmt.Errorf("%w: %s has no %s (Hammer 7 offers it for windows only)", ErrInvalid, p.Algorithm, op)
	}
	return nil
}

func validate7(p Policy, id, name string, n int64) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if err := validateID(id); err != nil {
		return err
	}
	maxN := MaxLevel
	if p.Algorithm == SlidingWindow {
		maxN = MaxSlidingAdd
	}
	if n < 0 || n > maxN {
		return fmt.Errorf("%w: %s: %s %d is out of range 0..%d", ErrInvalid, p.Algorithm, name, n, maxN)
	}
	return nil
}
