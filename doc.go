// Package hammerredis is a Redis backend for rate limiting, a Go port of
// Elixir's hammer_backend_redis: many service instances count hits into
// shared buckets held in one Redis, exactly, and Go and Elixir services
// pointed at the same Redis count into the same buckets.
//
// # Starting
//
// A [Backend] is Options.PoolSize goroutines (one by default), each owning one
// Redis connection, under the backend's own suture supervisor, as the Elixir
// library's GenServer pool runs under OTP:
//
//   - [Start] runs it under a private supervisor of its own (Elixir start/1);
//   - [StartLink] adds it to the caller's suture tree (Elixir start_link/1),
//     where it lives and dies with that tree;
//   - [New] returns it unstarted: *Backend is a suture.Service, so sup.Add(b)
//     works too (Elixir child_spec/1);
//   - [Stop] stops it and waits for its goroutine (Elixir stop/0).
//
// Starting never waits for Redis: calls fail with [ErrClosed] until the
// connection is up. [Backend.WaitConnected] waits for it.
//
// # Counting
//
// A bucket is one window of one id: [BucketKey]{Bucket, ID}, where Bucket is
// usually now_ms / scale_ms. [Backend.CountHit] and [Backend.CountHitN] add
// to a bucket and return its new count, [Backend.GetBucket] reads one, and
// [Backend.DeleteBuckets] deletes every bucket of an id. Times are
// milliseconds since the Unix epoch, as the caller passes them. A rate
// limiter allows a request while the count is at most its limit.
//
// # Hammer 7
//
// [Backend.Hit], [Backend.Inc], [Backend.Set] and [Backend.Get] run Hammer
// 7's four algorithms (fix_window, sliding_window, leaky_bucket,
// token_bucket) on the Redis data of hammer_backend_redis 7.x, without its
// defects; package hammer7 is their user API, and docs/algorithms.md says
// which to choose. They need Redis 7.0 or later ([ErrUnsupported] before),
// and a Hammer 7 prefix must not overlap the backend's Hammer 6
// Options.KeyPrefix ([Backend.KeyPrefix]).
//
// # Redis data
//
// Each bucket is a hash "<prefix><id>:<bucket>" (prefix "Hammer:Redis:" by
// default) with the fields count, created and updated, and a TTL of
// round(ExpiryMs/1000 + 1) seconds refreshed on every hit: byte for byte
// what hammer_backend_redis 6.1 writes. A hit runs as one Lua script, as
// atomic as the Elixir library's MULTI/EXEC.
//
// # Differences from Elixir
//
// DeleteBuckets escapes glob characters and deletes only keys of the form
// "<prefix><id>:<integer>", so id "a" no longer deletes the buckets of id
// "a:b", nor id "x*" those of "xy". A Redis error reply (WRONGTYPE, an
// overflowing increment) is returned as an [ErrRedis] error, and a key of
// another type is left untouched. A malformed bucket hash is an
// [ErrBadReply] error, not a crash. Ids longer than 1 MiB are rejected.
//
// # Throughput
//
// Each connection pipelines: its server goroutine writes and a reader
// goroutine reads the replies in order. While few calls are in the air a
// call is written as soon as it is queued; while many are, the calls that
// queue meanwhile share the next write, up to Options.MaxPipeline in the
// air. Hits queued together share script runs: hits on one bucket are
// coalesced into one run of their summed increment, and on a single server
// hits on distinct buckets share a multi-key run, each caller still getting
// the count it would have had in queue order. Calls for one id always go to
// the same connection, so they stay in order.
//
// # Topologies
//
// Options.RedisURL or RedisConfig name one server. Options.Sentinel finds
// the master through Redis Sentinel and follows failovers. Options.Cluster
// talks to a Redis Cluster: one server goroutine per master, calls routed by
// their key's slot, MOVED and ASK followed. Options.HashTagKeys keeps all of
// an id's buckets in one cluster slot, at the price of the Elixir layout.
//
// # Failures
//
// The backend's calls are safe for concurrent use and never wait past their
// context's deadline or the call timeout. While Redis is unreachable the
// backend redials with capped exponential backoff and calls fail at once with
// [ErrClosed]. When the connection breaks, the backend's Serve returns an
// error and its supervisor restarts it; a call that was in flight gets
// [ErrDisconnected] (or [ErrTimeout] after the read timeout) because Redis
// may or may not have applied it, and it is never re-sent. A call whose
// caller left before it was sent is never sent. Redis error replies keep the
// connection. Connection events, restarts and panics are logged through
// Options.Logger; passwords never appear in errors or logs.
package hammerredis
