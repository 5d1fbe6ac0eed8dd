package protocol

import "errors"

// Errors shared by every layer of hammerredis. Match them with errors.Is: the
// errors returned by the backend wrap them with details.
var (
	// ErrClosed means the backend is not connected to Redis right now (it is
	// still dialing, or redialing after a failure). The request was not sent,
	// so it is safe to retry. Returned at once, without waiting for a timeout.
	// Elixir: %Redix.ConnectionError{reason: :closed}.
	ErrClosed = errors.New("hammerredis: not connected to redis")

	// ErrDisconnected means the connection broke while the request was in
	// flight: Redis may or may not have applied it. The backend never re-sends
	// such a request by itself. Elixir: %Redix.ConnectionError{reason: :disconnected}.
	ErrDisconnected = errors.New("hammerredis: connection to redis lost while the request was in flight")

	// ErrTimeout means no reply came in time: the call timeout, the
	// delete-buckets timeout, the caller's context deadline or the
	// connection's read timeout passed. If the request had been sent, its
	// outcome is unknown. Elixir: %Redix.ConnectionError{reason: :timeout}.
	ErrTimeout = errors.New("hammerredis: timed out waiting for redis")

	// ErrStopped means the backend was stopped (by Stop, or because its
	// supervisor stopped). It will not serve calls again.
	ErrStopped = errors.New("hammerredis: backend stopped")

	// ErrInvalid means the request or the options were rejected before
	// anything was sent to Redis.
	ErrInvalid = errors.New("hammerredis: invalid argument")

	// ErrRedis means Redis answered the request with an error reply (for
	// example WRONGTYPE, or an overflow in HINCRBY). The connection is fine and
	// the backend goes on serving. The redigo redis.Error is wrapped too.
	ErrRedis = errors.New("hammerredis: redis error reply")

	// ErrBadReply means Redis sent a reply that hammerredis cannot decode,
	// such as a bucket hash with missing or non-integer fields.
	ErrBadReply = errors.New("hammerredis: unexpected reply from redis")

	// ErrUnsupported means the Redis server cannot run the request: Hammer
	// 7's limiters need Redis 7.0 or later, as Hammer 7 does (fix_window's
	// PEXPIREAT NX). Nothing was sent.
	ErrUnsupported = errors.New("hammerredis: not supported by this redis server")
)
