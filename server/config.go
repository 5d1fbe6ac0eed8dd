package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/protocol"
)

// Config configures a Server. It has no defaults: the caller (the root
// package's Options) resolves them, and New refuses a Config with a required
// field left zero or out of range, with an error matching
// protocol.ErrInvalid.
type Config struct {
	// Dial opens a new connection to Redis. Required.
	Dial func(ctx context.Context) (redis.Conn, error)
	// Name identifies the server in logs and String, e.g. "127.0.0.1:6379".
	// It must not hold a password.
	Name string
	// ExpiryMs is the bucket expiry in ms; the TTL is ExpirySeconds of it.
	// Required, > 0.
	ExpiryMs int64
	// KeyPrefix is prepended to every key. Required, not "".
	KeyPrefix string
	// CallTimeout bounds a call when the caller's context has no earlier
	// deadline. Required, > 0.
	CallTimeout time.Duration
	// DeleteBucketsTimeout replaces CallTimeout for DeleteBuckets. Required,
	// > 0.
	DeleteBucketsTimeout time.Duration
	// HealthCheckInterval is how often an idle connection is PINGed so that
	// a dead one is replaced before a caller needs it. Negative disables
	// health checks; 0 is invalid, so that a value left unresolved does not
	// turn them off unnoticed.
	HealthCheckInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait between failed dials; it
	// doubles from MinBackoff up to MaxBackoff, with jitter. Required,
	// 0 < MinBackoff <= MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Cluster says the server talks to a Redis Cluster node: a DEL names
	// keys of one slot only.
	Cluster bool
	// HashTag selects the key layout "<prefix>{<id>}:<bucket>" (see
	// protocol.Layout), not the Elixir library's. KeyPrefix must not then
	// hold a '{'.
	HashTag bool
	// QueueSize bounds the requests waiting for the server. Required, > 0.
	QueueSize int
	// MaxPipeline bounds how many queued calls are written before their
	// replies are read; 1 turns pipelining off. Required, > 0.
	MaxPipeline int
	// DisableCoalescing sends every hit on its own, even when several hits
	// are queued together (see coalesce.go and multi.go).
	DisableCoalescing bool
	// ScriptClock, when set, replaces Redis TIME as the clock of Hammer 7's
	// sliding-window and bucket scripts: tests step it to walk through time.
	// Leave it nil in production, where every client must share Redis's
	// clock.
	ScriptClock func() time.Time
	// stallAfter replaces the constant stallAfter when set: tests that hold
	// a reply for long lengthen it.
	stallAfter time.Duration
	// Logger receives connection events. Required.
	Logger *slog.Logger
}

// validate checks the invariants that Config documents. It changes nothing:
// defaults are the caller's to apply.
func (c *Config) validate() error {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: server.Config."+format, append([]any{protocol.ErrInvalid}, args...)...)
	}
	switch {
	case c.Dial == nil:
		return invalid("Dial is nil")
	case c.ExpiryMs <= 0:
		return invalid("ExpiryMs must be > 0, got %d", c.ExpiryMs)
	case c.KeyPrefix == "":
		return invalid("KeyPrefix is empty")
	case c.HashTag && strings.Contains(c.KeyPrefix, "{"):
		return invalid("KeyPrefix %q holds a '{', which the hash-tag layout cannot have", c.KeyPrefix)
	case c.CallTimeout <= 0:
		return invalid("CallTimeout must be > 0, got %v", c.CallTimeout)
	case c.DeleteBucketsTimeout <= 0:
		return invalid("DeleteBucketsTimeout must be > 0, got %v", c.DeleteBucketsTimeout)
	case c.HealthCheckInterval == 0:
		return invalid("HealthCheckInterval is 0: it must be > 0, or negative to disable health checks")
	case c.MinBackoff <= 0:
		return invalid("MinBackoff must be > 0, got %v", c.MinBackoff)
	case c.MaxBackoff < c.MinBackoff:
		return invalid("MaxBackoff %v is less than MinBackoff %v", c.MaxBackoff, c.MinBackoff)
	case c.QueueSize <= 0:
		return invalid("QueueSize must be > 0, got %d", c.QueueSize)
	case c.MaxPipeline <= 0:
		return invalid("MaxPipeline must be > 0, got %d", c.MaxPipeline)
	case c.Logger == nil:
		return invalid("Logger is nil")
	}
	return nil
}
