package hammerotel_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/hammer-go/hammerredis"
	hammerotel "github.com/hammer-go/hammerredis/contrib/otel"
	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/internal/redistest"
)

// TestBackendEndToEnd checks through a real backend on a private
// redis-server, then kills the server: the decisions, call durations,
// degraded gauge and the backend's own counters follow.
func TestBackendEndToEnd(t *testing.T) {
	srv := redistest.New(t)
	b, err := hammerredis.Start(hammerredis.Options{
		ExpiryMs:  2 * 3600 * 1000,
		RedisURL:  srv.URL(),
		KeyPrefix: fmt.Sprintf("T:%s:%d:", t.Name(), time.Now().UnixNano()),
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hammerredis.Stop(b) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.WaitConnected(ctx); err != nil {
		t.Fatalf("waiting for the connection: %v", err)
	}

	m, r := setup(t)
	c := newChecker(t, b, hammer.Config{Observer: m, Fallback: newMemory(t), FallbackShare: 1})
	if _, err := m.ObserveChecker("e2e", c); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ObserveBackend("e2e", b); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if d, err := c.Check(ctx, "user:42"); err != nil || d.Degraded {
			t.Fatalf("Check: %+v, %v", d, err)
		}
	}
	want := map[string]int64{
		"burst/allowed/false": 2, "burst/denied/false": 2,
		"hourly/allowed/false": 3, "hourly/denied/false": 1,
		"new-limit/allowed/false": 1, "new-limit/shadow_denied/false": 3,
	}
	if got := decisions(t, r); !mapsEqual(got, want) {
		t.Errorf("decisions\n got %v\nwant %v", got, want)
	}
	if got := durations(t, r); !mapsEqual(got, map[string]uint64{"ok": 4}) {
		t.Errorf("call durations %v, want 4 ok", got)
	}
	ms := collect(t, r)
	if got := int64Points(t, ms[hammerotel.CallsName])["backend=e2e,op=check"]; got != 4 {
		t.Errorf("backend check calls %d, want 4", got)
	}
	if got := int64Points(t, ms[hammerotel.ConnectedName]); got["backend=e2e"] != 1 {
		t.Errorf("connected %v, want 1", got)
	}
	if got := int64Points(t, ms[hammerotel.CheckerDegradedName]); got["checker=e2e"] != 0 {
		t.Errorf("degraded %v, want 0", got)
	}

	// Without Redis the call fails at once, and the fallback decides.
	srv.Kill()
	if d, err := c.Check(ctx, "user:42"); err != nil || !d.Degraded {
		t.Fatalf("Check without Redis: %+v, %v, want a degraded decision", d, err)
	}
	got := durations(t, r)
	if got["ok"] != 4 || got["closed"]+got["disconnected"] != 1 || len(got) != 2 {
		t.Errorf("call durations %v, want 4 ok and 1 closed or disconnected", got)
	}
	if got := decisions(t, r); got["burst/allowed/true"] != 1 || got["hourly/allowed/true"] != 1 {
		t.Errorf("decisions %v, want the fallback's allowed ones", got)
	}
	ms = collect(t, r)
	if got := int64Points(t, ms[hammerotel.CheckerDegradedName]); got["checker=e2e"] != 1 {
		t.Errorf("degraded %v, want 1", got)
	}
	errs := int64Points(t, ms[hammerotel.ErrorsName])
	if errs["backend=e2e,error.type=closed"]+errs["backend=e2e,error.type=disconnected"] != 1 {
		t.Errorf("backend errors %v, want 1 closed or disconnected", errs)
	}
}
