// Package protocol holds the data that flows between hammerredis callers and
// the server goroutine that owns the Redis connection, and the Redis data
// layout that hammerredis shares with Elixir's hammer_backend_redis.
//
// # Calls
//
// Each backend operation is one request struct ([CountHit], [GetBucket],
// [DeleteBuckets]) answered by one reply struct ([CountHitReply],
// [GetBucketReply], [DeleteBucketsReply]). [Request] is a closed interface: only
// this package can add requests, so the server handles every kind in a single
// type switch. Requests check themselves with Validate before they are queued.
//
// Hammer 7's limiters add [Hit], [Inc], [Set] and [Get], each naming a
// [Policy] (algorithm, prefix, limit, scale or rate), answered by [HitReply]
// or [CountReply]; the rules every backend follows are in hammer7.go.
//
// # Data layout
//
// A bucket is one Redis hash named by [Key]: "<prefix><id>:<bucket>", with the
// fields count, created and updated, in that order, and a TTL of
// [ExpirySeconds] refreshed on every hit. [Layout.DeletePattern] and
// [Layout.IsBucketOf] select the keys of exactly one id when its buckets are
// deleted. Hammer 7's keys are [Policy.Key]: "<prefix>:<id>", with the window
// number (fix_window) or the scale (sliding_window) after another ':'.
//
// # Stats
//
// [Stats] is a snapshot of the counters of a server, or, summed with
// [Stats.Add], of a whole backend: calls by operation ([OpCounts]), errors by
// kind ([ErrorCounts]), connections, queue depth and a latency [Histogram].
// The server keeps the live counters; a snapshot is plain data.
//
// # Errors
//
// The sentinel errors ([ErrClosed], [ErrDisconnected], [ErrTimeout],
// [ErrStopped], ...) are shared by every layer and matched with errors.Is.
//
// The package imports only the standard library: it has no channels, contexts
// or Redis client types.
package protocol
