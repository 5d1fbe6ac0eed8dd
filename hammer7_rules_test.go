package hammerredis_test

import (
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/rules7"
	"github.com/hammer-go/hammerredis/internal/testenv"
)

// TestHammer7Rules runs the rule table that the memory backend runs too
// (internal/rules7) against a real redis-server, its scripts reading the
// table's clock instead of Redis TIME.
func TestHammer7Rules(t *testing.T) {
	clk := &rules7.Clock{} // Run sets it
	f := testenv.Start(t, shared, hammerredis.WithScriptClock(hammerredis.Options{}, clk.Now))
	rules7.Run(t, func(t *testing.T) rules7.Env {
		return rules7.Env{Backend: f.B, Clock: clk, PExpireTime: func(key string) (int64, error) {
			return redis.Int64(f.Admin.Do("PEXPIRETIME", key))
		}}
	})
}
