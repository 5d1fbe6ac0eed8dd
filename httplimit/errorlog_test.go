package httplimit

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/hammer-go/hammerredis/internal/logtest"
)

func TestErrorLogIsThrottled(t *testing.T) {
	rec := logtest.New()
	now := time.UnixMilli(1_700_000_000_000)
	l := newErrorLog(rec.Logger(), FailClosed, func() time.Time { return now })
	boom := errors.New("boom")
	at := func(ms int64) { now = time.UnixMilli(1_700_000_000_000 + ms) }

	steps := []struct {
		at   int64 // ms after the start
		ok   bool  // a success, else a failure
		want string
	}{
		{0, false, `level=ERROR msg="httplimit: rate limit backend error" error=boom policy=fail-closed suppressed=0`},
		{10, false, ""},
		{500, false, ""},
		{999, false, ""},
		{1000, false, `level=ERROR msg="httplimit: rate limit backend error" error=boom policy=fail-closed suppressed=3`},
		{1100, false, ""},
		{1200, true, `level=INFO msg="httplimit: rate limit backend recovered" errors=6 suppressed=1`},
		{1300, true, ""},
		// Flapping: errors within a second of the last error line are
		// counted, and reported by the next error line.
		{1500, false, ""},
		{1600, true, ""},
		{1700, false, ""},
		{2100, false, `level=ERROR msg="httplimit: rate limit backend error" error=boom policy=fail-closed suppressed=2`},
		{2200, true, `level=INFO msg="httplimit: rate limit backend recovered" errors=3 suppressed=0`},
		{9000, true, ""},
		{9001, false, `level=ERROR msg="httplimit: rate limit backend error" error=boom policy=fail-closed suppressed=0`},
	}
	for i, s := range steps {
		at(s.at)
		before := len(rec.Lines())
		if s.ok {
			l.success()
		} else {
			l.failure(boom)
		}
		lines := rec.Lines()[before:]
		switch {
		case s.want == "":
			assert.Empty(t, lines, "step %d at %dms", i, s.at)
		case assert.Len(t, lines, 1, "step %d at %dms", i, s.at):
			assert.Equal(t, s.want, lines[0], "step %d at %dms", i, s.at)
		}
	}
}
