package hammerredis_test

import (
	"testing"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/checkrules"
	"github.com/hammer-go/hammerredis/internal/rules7"
	"github.com/hammer-go/hammerredis/internal/testenv"
)

// TestCheckRules runs the rule table of Check that the memory backend runs
// too (internal/checkrules) against a real redis-server, its scripts
// reading the table's clock instead of Redis TIME.
func TestCheckRules(t *testing.T) {
	clk := &rules7.Clock{} // Run sets it
	f := testenv.Start(t, shared, hammerredis.WithScriptClock(hammerredis.Options{}, clk.Now))
	checkrules.Run(t, func(t *testing.T) checkrules.Env {
		return checkrules.Env{Backend: f.B, Clock: clk}
	})
}
