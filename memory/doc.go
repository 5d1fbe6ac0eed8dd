// Package memory is an in-process rate-limit backend with the same calls and
// the same counting rules as the Redis backend,
// [github.com/hammer-go/hammerredis.Backend]: the Go counterpart of Elixir
// Hammer's ETS backend.
//
// It is the embedded default for a service that runs as a single instance,
// and the backend to use in unit tests of code that rate-limits: nothing to
// start, no network, no Redis. Buckets live in this process only, so several
// instances of a service each count on their own and the counts are lost on
// restart; use the Redis backend to share counts between instances.
//
// A [Backend] is ready as soon as [New] returns it. Call [Backend.Close] when
// done with it, to stop its sweeper goroutine.
//
// # Semantics
//
// The calls behave as those of the Redis backend, so one test table passes on
// both:
//
//   - [Backend.CountHitN] adds the increment to the bucket and returns the new
//     count; the first hit of a bucket returns the increment. Increments are
//     taken as given, zero and negative ones included. An increment that would
//     take the count past math.MaxInt64 or below math.MinInt64 fails as
//     Redis's HINCRBY does: with an error wrapping [protocol.ErrRedis] and
//     saying "increment or decrement would overflow", leaving the bucket and
//     its expiry as they were.
//   - Created is the now of the bucket's first hit and never changes; Updated
//     is the now of its latest hit, as given, even when it is earlier than a
//     previous one.
//   - [Backend.GetBucket] returns nil and no error when there is no bucket. It
//     changes nothing, not even the bucket's expiry.
//   - [Backend.DeleteBuckets] deletes exactly the buckets of one id and
//     returns how many it deleted. Id "a" never deletes the buckets of id
//     "a:b", nor does any id delete another's.
//   - Ids longer than [protocol.MaxIDBytes] are rejected with an error
//     wrapping [protocol.ErrInvalid].
//   - A call whose context is already done returns the context's error (an
//     expired deadline also matches [protocol.ErrTimeout], as in the Redis
//     backend) and does nothing.
//   - Calls after [Backend.Close] return [protocol.ErrStopped].
//
// The key and result types are [protocol.BucketKey] and [protocol.BucketInfo],
// which package hammerredis re-exports as hammerredis.BucketKey and
// hammerredis.BucketInfo, and the errors are the values hammerredis exports
// (protocol.ErrInvalid is hammerredis.ErrInvalid): a *Backend stands wherever
// the Redis backend's four calls are expected. This package imports neither
// redigo nor suture.
//
// # Expiry
//
// A bucket expires as a Redis bucket does: every hit sets its time to live
// to round(ExpiryMs/1000 + 1) seconds ([protocol.ExpirySeconds]; 60000 ms
// gives 61 s, 1500 ms gives 3 s), the TTL the Redis backend sets with
// EXPIRE. It is measured on the wall clock of this process, as Redis
// measures a TTL on its own clock: the now the caller passes plays no part.
// Once that time has passed, the bucket is gone for every call: GetBucket
// returns nil, DeleteBuckets does not count it, and a new hit starts it
// afresh, with count = increment and created = now. A hit that fails
// (overflow) does not push the expiry back, nor does GetBucket.
//
// Expired buckets stop counting at once; their memory is reclaimed by a
// sweeper goroutine that runs every Options.CleanupInterval (one minute by
// default, as Hammer's ETS cleanup_interval_ms), one shard at a time. The
// sweeper changes nothing that a call can see.
//
// # Hammer 7
//
// [Backend.Hit], [Backend.Inc], [Backend.Set] and [Backend.Get] run Hammer
// 7's four algorithms (fix_window, sliding_window, leaky_bucket and
// token_bucket) by the rules at the top of protocol/hammer7.go, with the
// results the Redis backend's scripts give; package hammer7's limiters call
// them. Each entry stands for the Redis key the rules name
// ([protocol.Policy.Key]) and holds what that key would: a counter, a sorted
// set (kept as a count per second, not a member per unit) or a hash. So
// policies that share a prefix and key share its state, as on Redis, and a
// key of another type fails as Redis's WRONGTYPE does, with an error
// wrapping [protocol.ErrRedis]. These entries are kept apart from the
// Hammer 6 buckets: Len, GetBucket and DeleteBuckets never see them.
//
// fix_window takes its window from the request's Now, but its key expires
// at the window's end on the backend's clock, as a Redis key does on Redis's
// clock: pass a Now from the same clock (time.Now), or a window that has
// already ended counts nothing. The other algorithms read the backend's
// clock in whole seconds, as the scripts read Redis TIME. Every key expires
// when the rules say (a window's end, EXPIRE w, ceil(level/rate)+60 s and
// so on; Options.ExpiryMs plays no part), stops counting at once, and is
// reclaimed by the sweeper.
//
// # Several limits at once
//
// [Backend.Check] decides a request against several limits, Hammer 6
// windows and Hammer 7 hits, by the rules of protocol/check.go, counting
// in the same buckets and keys as CountHitN and Hit: package hammer's
// Checker calls it. It decides every limit on a copy of its keys and
// writes the copy back only when the rules charge the request (always,
// or with AllOrNothing only when it is allowed); a check that fails
// writes nothing.
//
// # Concurrency
//
// A Backend is safe for concurrent use by any number of goroutines. Buckets
// are spread over 32 shards by a hash of their id, each shard with its own
// mutex, so goroutines counting different ids seldom wait for each other;
// all buckets of one id share a shard, so DeleteBuckets takes one lock. Every
// call holds one shard lock at a time, for a few map operations only, and
// never blocks on anything else: a call takes no longer than its own work,
// so the context is only checked at its start. Check alone holds the locks
// of all its keys' shards at once, taken in one fixed order, so that no
// other call on those keys runs between its decisions and its writes. Hammer 7's entries are
// sharded by key the same way; a call holds its key's lock from reading the
// clock to its last write, so the calls on one key apply one at a time and
// in clock order, as scripts do on Redis.
package memory
