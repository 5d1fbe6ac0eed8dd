// Package hammer7 is the Go API of Elixir Hammer 7's rate limiters: four
// algorithms on top of a backend, reading and writing the Redis data of
// hammer_backend_redis 7.x, without its defects.
//
// A [Limiter] is what an Elixir module with `use Hammer, backend:,
// algorithm:, prefix:` is, with the numbers its hit takes fixed: [New]
// takes a [Backend] (*hammerredis.Backend, or package memory's backend for
// one process and for tests) and a [Policy], one of [FixWindow],
// [SlidingWindow], [LeakyBucket] and [TokenBucket]. [Limiter.Hit] and
// [Limiter.HitN] count and decide a request; being limited is a normal
// [Result], not an error. Errors come from the backend (Redis unreachable,
// a timeout, a key of another type) or from invalid arguments (wrapping
// protocol.ErrInvalid, which is hammerredis.ErrInvalid). A Limiter is safe
// for concurrent use; make one per policy, and as many as there are
// policies (Elixir passes the numbers to each hit instead).
//
// # Algorithms
//
// [FixWindow] counts in windows of fixed length aligned on the Unix epoch,
// and allows Limit units per window. It is the cheapest (one counter per
// key and window) and the only one whose state a client can reason about
// ("100 per minute, reset at the minute"), but a client can get up to twice
// the limit across a window boundary. Denied hits count, so a client that
// keeps retrying stays denied until the window ends. Choose it for quotas
// and for plain "N per period" limits.
//
// [SlidingWindow] allows Limit units in any span of Window whole seconds:
// no burst at a boundary, at the cost of one sorted-set member per counted
// unit (memory and time grow with Limit, bounded by
// protocol.MaxSlidingAdd per call). Denied hits do not count. Choose it
// when "at most N in any minute" must hold exactly and Limit is modest.
//
// [LeakyBucket] holds up to Capacity units that leak at LeakPerSecond, and
// starts empty: a hit fits while the bucket has room for its cost.
// [TokenBucket] holds up to Capacity tokens, refills at RefillPerSecond and
// starts full: a hit takes its cost in tokens. Both allow a burst of
// Capacity after idleness, then their rate; with the same numbers they make
// the same decisions and retry times (a leaky level is Capacity minus the
// tokens) and differ only in what Count and Get report: the level held, or
// the tokens left. Choose either to hold a client to a rate with bounded
// bursts and weighted costs, by which quantity you want to show.
//
// Leaky and token buckets count in whole seconds of the backend's clock:
// they leak or refill in steps at second boundaries, as in Hammer 7.
//
// # Keys and Elixir compatibility
//
// With P the policy's Prefix and K the key of a call, the Redis data is
// Hammer 7's (see protocol/hammer7.go for every rule):
//
//	fix_window      "P:K:<now_ms/window_ms>"  string counter, expiring at the window's end
//	sliding_window  "P:K:<window_ms>"         sorted set, one member per unit, scored by its second
//	leaky_bucket    "P:K"                     hash {level, last_update (s)}, level = units held
//	token_bucket    "P:K"                     hash {level, last_update (s)}, level = tokens left
//
// A Go limiter and an Elixir one with the same algorithm, prefix and
// numbers share their counts. Elixir's default prefix is the module's
// name; Go has no default, so spell it out. Keys are not escaped: a leaky
// and a token bucket with the same prefix and key are one hash, and "P:a:5"
// is both leaky key "a:5" and fix-window key "a" in window 5. Give each
// limiter its own prefix. Nor may a prefix overlap the Hammer 6 keys of the
// same Redis ("Hammer:Redis:" by default): New refuses that (see
// [KeyPrefixer]).
//
// Elixir to Go, with b a backend and ctx a context:
//
//	use Hammer, backend: Hammer.Redis, algorithm: :fix_window, prefix: "MyApp.RateLimit"
//	hit(key, scale_ms, limit, n)
//	    l, err := hammer7.New(b, hammer7.FixWindow{Prefix: "MyApp.RateLimit", Window: scale_ms * time.Millisecond, Limit: limit})
//	    r, err := l.HitN(ctx, key, n)          // l.Hit(ctx, key) for n = 1
//	inc(key, scale_ms, n)         l.Inc(ctx, key, n)
//	set(key, scale_ms, count)     l.Set(ctx, key, count)
//	get(key, scale_ms)            l.Get(ctx, key)
//
//	use Hammer, backend: Hammer.Redis, algorithm: :sliding_window, prefix: "MyApp.SW"
//	hit(key, scale_ms, limit, n)
//	    l, err := hammer7.New(b, hammer7.SlidingWindow{Prefix: "MyApp.SW", Window: scale_ms * time.Millisecond, Limit: limit})
//	    r, err := l.HitN(ctx, key, n)
//	inc / set / get               l.Inc(ctx, key, n) / l.Set(ctx, key, count) / l.Get(ctx, key)
//
//	use Hammer, backend: Hammer.Redis, algorithm: :leaky_bucket, prefix: "MyApp.LB"
//	hit(key, rate, capacity, cost)
//	    l, err := hammer7.New(b, hammer7.LeakyBucket{Prefix: "MyApp.LB", LeakPerSecond: rate, Capacity: capacity})
//	    r, err := l.HitN(ctx, key, cost)
//	get(key, _)                   l.Get(ctx, key)
//
//	use Hammer, backend: Hammer.Redis, algorithm: :token_bucket, prefix: "MyApp.RateLimit"
//	hit(key, rate, capacity, cost)
//	    l, err := hammer7.New(b, hammer7.TokenBucket{Prefix: "MyApp.RateLimit", RefillPerSecond: rate, Capacity: capacity})
//	    r, err := l.HitN(ctx, key, cost)
//	get(key, _)                   l.Get(ctx, key)
//
//	{:allow, x}                   r.Allowed, r.Count == x
//	{:deny, ms}                   !r.Allowed, r.RetryAfter (or r.Never)
//	timeout: ms                   a ctx deadline (the backend also has a default)
//
// Buckets have no Inc nor Set (Hammer 7 generates none): they return an
// error wrapping protocol.ErrInvalid. The rate of a bucket is per second,
// as in Hammer 7, whatever its tests pass.
//
// # Differences from Hammer 7
//
// Each fixes a defect of hammer_backend_redis 7.1.1 and keeps its data
// layout, so Go and Elixir can share keys; mixed fleets differ only where
// noted.
//
//   - fix_window expires a key at its window's end to the millisecond
//     (PEXPIREAT end_ms NX, not EXPIREAT in whole seconds), so windows that
//     are not a whole number of seconds are limited throughout: Elixir
//     deletes a key on arrival, and lets every hit through, in the first
//     half of each second at 500ms and in the last 500ms of every other
//     window at 1500ms. A sliding window shorter than 1s, which Hammer 7
//     never limits, is refused by New.
//   - sliding_window's Inc, Set and Get work on the key and rules of its
//     hits: Inc drops expired members, adds n and returns the count; Set
//     replaces the members (0 deletes the key, and n = 0 adds none, where
//     Elixir adds two); Get counts the members in the window. Elixir's own
//     inc, set and get use another key, the fix-window one, with the
//     caller's clock and a TTL of hours to days: a Go and an Elixir service
//     agree on hits but not on those three.
//   - token_bucket's RetryAfter is the real wait for the tokens, not a
//     constant 1s.
//   - leaky_bucket allows a hit only when the cost fits (level + cost ≤
//     capacity): Elixir tests only level < capacity, so the level can
//     overshoot the capacity by cost − 1. RetryAfter is the real wait until
//     the cost fits, never 0 nor negative.
//   - sliding_window's RetryAfter is when enough of the oldest units leave
//     the window (the k-th oldest, k = count + cost − limit), not when the
//     whole key expires, nor a negative time when the key does not exist.
//   - A hit whose cost exceeds the limit or capacity is denied with Never,
//     instead of a retry time that cannot help.
//   - fix_window reads the caller's clock, as Elixir does (its key must be
//     known before the call, which Redis Cluster needs); [Limiter.WithClock]
//     replaces it. The other algorithms read the backend's clock.
//   - Errors are returned, never raised nor turned into answers: a key of
//     another type (WRONGTYPE) is an error, not a deny nor a count, and
//     bucket gets no longer return 0 on an error. Calls have deadlines; a
//     hit that may have reached Redis is never re-sent; failing open or
//     closed is the caller's choice.
//   - fix_window's INCRBY and PEXPIREAT run atomically, so no key is left
//     without an expiry; sliding-window members ("<s>-<µs>-<i>") stay
//     unique when a hit adds 10 or more; Get of a bucket applies the leak or
//     refill up to now, and a token bucket never hit has Capacity tokens,
//     not 0.
//
// # Time
//
// fix_window reads the Limiter's clock, time.Now unless [Limiter.WithClock]
// replaces it, in milliseconds: a window is now_ms / window_ms, and a
// denied hit's RetryAfter is the window's end minus now. Its keys expire on
// the backend's clock (Redis's), at the window's end: hosts whose clocks
// disagree near a boundary count in neighbouring windows, as Elixir hosts
// do, and a clock d behind the backend's counts nothing in the last d of
// each window, whose key has expired already (a test clock set in the past
// lets every hit through).
//
// The other three algorithms read the backend's clock (Redis TIME inside
// their script, the memory backend's clock), so every host of a fleet
// agrees on them whatever its own clock. They store whole seconds: a
// sliding window drops a unit counted at second s once the clock reaches
// s + Window, and buckets leak or refill once per second. RetryAfter is
// measured from the backend's clock in milliseconds, to the first instant
// at which the same hit would be allowed.
package hammer7
