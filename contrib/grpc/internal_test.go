package hammergrpc

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hammer-go/hammerredis/hammer"
)

func TestHeaderMD(t *testing.T) {
	md := headerMD(hammer.Decision{Limits: []hammer.LimitResult{
		{Name: `a "b" \c`, Allowed: true, Quota: 5, Remaining: 5, Window: 1500 * time.Millisecond, Reset: 1200 * time.Millisecond},
		{Name: "wait", Quota: 1 << 50, Window: time.Minute, RetryAfter: time.Millisecond},
		{Name: "never", Quota: 0, Window: time.Second, Never: true, Shadow: true},
	}})
	want := map[string]string{
		MetadataPolicy:    `"a \"b\" \\c";q=5, "wait";q=999999999999999;w=60, "never";q=0;w=1;hammer-shadow`,
		MetadataRateLimit: `"a \"b\" \\c";r=5;t=2, "wait";r=0;t=1, "never";r=0;hammer-shadow`,
	}
	for k, v := range want {
		if got := md.Get(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s: %q\nwant %q", k, got, v)
		}
	}
	if md := headerMD(hammer.Decision{Limits: []hammer.LimitResult{{Name: "\x00"}}}); md != nil {
		t.Errorf("a name sfv refuses: %v, want nil", md)
	}
}

func TestErrorLogThrottles(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1_700_000_000, 0)
	l := errorLog{logger: slog.New(slog.NewTextHandler(&buf, nil)), now: func() time.Time { return now }}
	l.failure(errTest("first"))
	l.failure(errTest("second")) // within the second: counted, not logged
	l.failure(errTest("third"))
	now = now.Add(time.Second)
	l.failure(errTest("fourth"))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "error=first errors_not_logged=0") ||
		!strings.Contains(lines[1], "error=fourth errors_not_logged=2") {
		t.Errorf("log:\n%s", buf.String())
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }
