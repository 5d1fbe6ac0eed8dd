package memory

import (
	"testing"

	"github.com/hammer-go/hammerredis/internal/rules7"
)

// TestHammer7Rules runs the rule table that the Redis backend runs too
// (internal/rules7): the same calls give the same answers on both.
func TestHammer7Rules(t *testing.T) {
	rules7.Run(t, func(t *testing.T) rules7.Env {
		clk := &rules7.Clock{} // Run sets it
		b, err := newBackend(Options{ExpiryMs: 60_000, CleanupInterval: -1}, clk.Now)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return rules7.Env{Backend: b, Clock: clk, PExpireTime: func(key string) (int64, error) {
			return b.pexpireTime(key), nil
		}}
	})
}

// pexpireTime is what PEXPIRETIME would answer for key on b's clock.
func (b *Backend) pexpireTime(key string) int64 {
	s := b.t.h7.shard(b.t.seed, []byte(key))
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.live([]byte(key), b.t.instant())
	if e == nil {
		return -2
	}
	return e.expireMs
}
