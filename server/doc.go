// Package server runs the goroutine that owns one Redis connection and
// answers hammerredis calls over a request channel.
//
// # Concurrency
//
// A [Server] is a handle: its methods are safe for concurrent use by any
// number of goroutines. The redis.Conn never leaves the goroutine running
// [Server.Serve]; callers only send typed requests (package protocol) on the
// handle's channel and wait for the reply. The channel lives on the handle,
// not in Serve, so callers keep the same handle while Serve is restarted.
// [Server.DeleteBuckets] is the exception: it scans on a connection of its
// own, dialed on the caller's goroutine and closed after it (delete.go), so
// that rate checks never wait behind it.
//
// # Goroutines
//
// The handle and the state of a connection are separate types, as net/http's
// Server and conn are, and every method runs on one kind of goroutine: the
// callers' own, or the server goroutine, the one running Serve.
//
//   - [Server], the handle (server.go), lives as long as the server. Its
//     methods run on the callers' goroutines: New, String, Connected,
//     WaitConnected, Stopped, Stop, Redial and Stats; CountHit,
//     GetBucket and their ASKING variants (caller.go), Hammer 7's Hit,
//     Inc, Set and Get (hammer7.go) and Check (check.go), which queue a
//     call and wait for its answer; and DeleteBuckets (delete.go), which runs a
//     whole delete on the caller's goroutine, on a connection of its own.
//     What they share with the server goroutine is atomic, a channel or
//     behind a mutex.
//   - Serve and its dial-and-backoff loop (serve.go) run on the server
//     goroutine. Of the handle's fields only that goroutine touches the
//     count of failed dials, which outlives each connection.
//   - conn (conn.go) is the state of one connection: the redis.Conn, the
//     calls taken, the flights in the air (flight.go), the coalescing plan
//     (coalesce.go) and the buffers commands are written from (exec.go).
//     Serve creates one when a dial succeeds and drops it when the
//     connection ends. Two goroutines share it, as redigo allows one
//     writer and one reader: the server goroutine writes (conn.serve takes
//     calls, plans and sends them), and a reader goroutine it starts for the
//     connection reads replies and answers calls (reader.go). A flight
//     belongs to one of them at a time, handed over on a channel; what both
//     touch is atomic, a channel or behind the conn's mutex.
//   - call (call.go) crosses between them: the caller fills it and waits on
//     it, the server takes it and answers it once, each step an atomic
//     state change.
//
// # Lifecycle
//
// Serve dials Redis, retrying with capped exponential backoff while Redis is
// unreachable, then serves requests until the connection breaks, its context
// is cancelled or [Server.Stop] is called. It pipelines: a call goes out as
// soon as it is queued while few are in the air, calls queued while many are
// go out together (flight.go), hits on one bucket queued together are
// coalesced (coalesce.go), and on a single server hits on distinct buckets
// share multi-key script runs (multi.go), as do Hammer 7's calls and
// checks. A broken connection ends Serve with an error so that its
// supervisor restarts it; the restarted Serve dials again. A call made
// before the first connection attempt has ended waits for it; after that,
// while no connection is up, calls fail at once with protocol.ErrClosed.
// [Server.Redial] drops a working connection whose address is no longer
// the one to use.
//
// Package server does not import suture: *Server satisfies suture.Service by
// shape (Serve and String); package supervisor wires it into a tree.
//
// # Hammer 7
//
// Hammer 7's calls (protocol.Hit, Inc, Set and Get) take the same path as
// count_hit: each runs its algorithm's script (script7.go) or, for a fix
// window's count, a GET; fix-window hits and incs on one key queued
// together are coalesced into one INCRBY of their sum. At connect, INFO
// tells the server's version: before Redis 7.0 those calls fail unsent with
// protocol.ErrUnsupported, and Hammer 6's go on.
//
// # Check
//
// A protocol.Check (several limits at once) is one call too: one run of the
// check script (scriptcheck.go), built on Hammer 7's, which decides every
// limit before it writes anything, so that all-or-nothing writes nothing
// when a limit denies. It is never coalesced; on a single server the checks
// of one flight share runs of the multi-check script (multicheck.go), which
// runs them one after the other, each as the check script would. Like
// Hammer 7's calls it needs Redis 7.0.
//
// # Errors
//
// An error reply from Redis goes back to its caller (protocol.ErrRedis) and
// the connection stays. A request whose connection broke after it was taken
// gets protocol.ErrDisconnected or protocol.ErrTimeout: its outcome is
// unknown, and it is never re-sent. Only a call that Redis says did not run
// is sent again: NOSCRIPT, and a coalesced group or the buckets of a
// multi-key run refused before their first write (script.go, multi.go).
package server
