package hammergrpc_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dunglas/httpsfv"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	hammergrpc "github.com/hammer-go/hammerredis/contrib/grpc"
	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/memory"
	"github.com/hammer-go/hammerredis/protocol"
)

var req = &grpc_health_v1.HealthCheckRequest{}

// constKey keys every call by "k", even outside a server.
func constKey(context.Context, string) ([]string, error) { return []string{"k"}, nil }

// newLimiter returns the Limiter of cfg, on a Checker of limits unless cfg
// has one.
func newLimiter(t *testing.T, cfg hammergrpc.Config, limits ...hammer.Limit) *hammergrpc.Limiter {
	t.Helper()
	if cfg.Checker == nil {
		cfg.Checker = newChecker(t, hammer.Config{Limits: limits})
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l, err := hammergrpc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// interceptors returns the server options installing l's interceptors.
func interceptors(l *hammergrpc.Limiter) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(l.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(l.StreamServerInterceptor()),
	}
}

func TestUnaryAllowsThenDeniesWithRetryInfo(t *testing.T) {
	l := newLimiter(t, hammergrpc.Config{}, twoLimits...)
	client, hs := serve(t, interceptors(l)...)
	ctx := context.Background()
	const policy = `"per-second";q=2;w=1, "per-minute";q=100;w=60`
	for i := int64(1); i <= 2; i++ {
		var md metadata.MD
		if _, err := client.Check(ctx, req, grpc.Header(&md)); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		_, d := hs.last()
		if d == nil || !d.Allowed || len(d.Limits) != 2 || d.Limits[0].Remaining != 2-i || d.Limits[1].Count != i {
			t.Fatalf("call %d: the handler's decision is %+v", i, d)
		}
		// Reset: 750ms (rounded up) to the second's end, 39.75s to the minute's.
		wantMD(t, md, policy, fmt.Sprintf(`"per-second";r=%d;t=1, "per-minute";r=%d;t=40`, 2-i, 100-i))
	}

	var md metadata.MD
	_, err := client.Check(ctx, req, grpc.Header(&md))
	wantCode(t, err, codes.ResourceExhausted)
	if msg := status.Convert(err).Message(); msg != `hammergrpc: rate limit exceeded ("per-second"); retry in 750ms` {
		t.Errorf("message %q", msg)
	}
	ri, qf := details(t, err)
	if ri == nil || ri.RetryDelay.AsDuration() != 750*time.Millisecond {
		t.Errorf("RetryInfo %v, want 750ms", ri)
	}
	if qf == nil || len(qf.Violations) != 1 || qf.Violations[0].QuotaId != "per-second" || qf.Violations[0].QuotaValue != 2 {
		t.Errorf("QuotaFailure %v, want one violation of per-second", qf)
	}
	if n, _ := hs.last(); n != 2 {
		t.Errorf("the handler ran %d times, want 2", n)
	}
	// A denied call counts in Hammer 6's windows too.
	// A denying limit's t is its wait, rounded up.
	wantMD(t, md, policy, `"per-second";r=0;t=1, "per-minute";r=97;t=40`)
}

// wantMD checks the RateLimit metadata, and that a structured-field
// parser reads both fields back as lists of one string item per limit.
func wantMD(t *testing.T, md metadata.MD, policy, state string) {
	t.Helper()
	for name, want := range map[string]string{hammergrpc.MetadataPolicy: policy, hammergrpc.MetadataRateLimit: state} {
		got := md.Get(name)
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: %q, want %q", name, got, want)
			continue
		}
		list, err := httpsfv.UnmarshalList(got)
		if err != nil {
			t.Errorf("%s: %q does not parse: %v", name, got[0], err)
		}
		for _, m := range list {
			if it, ok := m.(httpsfv.Item); !ok {
				t.Errorf("%s: member %#v is not an item", name, m)
			} else if _, ok := it.Value.(string); !ok {
				t.Errorf("%s: item %#v is not a string", name, it.Value)
			}
		}
	}
}

func TestNoMetadata(t *testing.T) {
	l := newLimiter(t, hammergrpc.Config{NoMetadata: true}, twoLimits...)
	client, _ := serve(t, interceptors(l)...)
	var md metadata.MD
	if _, err := client.Check(context.Background(), req, grpc.Header(&md)); err != nil {
		t.Fatal(err)
	}
	if len(md.Get(hammergrpc.MetadataRateLimit)) != 0 || len(md.Get(hammergrpc.MetadataPolicy)) != 0 {
		t.Errorf("metadata %v, want none of the RateLimit fields", md)
	}
}

func TestStreamAllowsThenDenies(t *testing.T) {
	l := newLimiter(t, hammergrpc.Config{}, hammer.Limit{Name: "streams", Scale: time.Second, Max: 1})
	client, hs := serve(t, interceptors(l)...)
	ctx := context.Background()

	s, err := client.Watch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.Recv(); err != nil || r.Status != grpc_health_v1.HealthCheckResponse_SERVING {
		t.Fatalf("Recv: %v, %v", r, err)
	}
	md, err := s.Header()
	if err != nil {
		t.Fatal(err)
	}
	wantMD(t, md, `"streams";q=1;w=1`, `"streams";r=0;t=1`)
	if _, d := hs.last(); d == nil || !d.Allowed {
		t.Fatalf("the stream handler's decision is %+v", d)
	}

	s, err = client.Watch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Recv()
	wantCode(t, err, codes.ResourceExhausted)
	if ri, _ := details(t, err); ri == nil || ri.RetryDelay.AsDuration() != 750*time.Millisecond {
		t.Errorf("RetryInfo %v, want 750ms", ri)
	}
	if n, _ := hs.last(); n != 1 {
		t.Errorf("the handler ran %d times, want 1", n)
	}
}

func TestNeverHasNoRetryInfo(t *testing.T) {
	l := newLimiter(t, hammergrpc.Config{}, hammer.Limit{Name: "closed", Scale: time.Second, Max: 0})
	client, _ := serve(t, interceptors(l)...)
	_, err := client.Check(context.Background(), req)
	wantCode(t, err, codes.ResourceExhausted)
	ri, qf := details(t, err)
	if ri != nil || qf == nil {
		t.Errorf("RetryInfo %v, QuotaFailure %v: want no RetryInfo, a QuotaFailure", ri, qf)
	}
	if msg := status.Convert(err).Message(); !strings.HasSuffix(msg, "no wait helps") {
		t.Errorf("message %q", msg)
	}
}

func TestMetadataKeys(t *testing.T) {
	l := newLimiter(t, hammergrpc.Config{Keys: hammergrpc.Metadata("X-Api-Key")},
		hammer.Limit{Name: "per-key", Scale: time.Second, Max: 1})
	client, hs := serve(t, interceptors(l)...)
	call := func(kv ...string) error {
		ctx := metadata.AppendToOutgoingContext(context.Background(), kv...)
		_, err := client.Check(ctx, req)
		return err
	}
	if err := call("x-api-key", "alice"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, call("x-api-key", "alice"), codes.ResourceExhausted)
	if err := call("x-api-key", "bob"); err != nil {
		t.Fatalf("another key: %v", err)
	}
	for _, kv := range [][]string{nil, {"x-api-key", ""}, {"authorization", "alice"}} {
		err := call(kv...)
		wantCode(t, err, codes.InvalidArgument)
		if msg := status.Convert(err).Message(); msg != hammergrpc.ErrNoKey.Error() {
			t.Errorf("message %q", msg)
		}
	}
	if n, _ := hs.last(); n != 2 {
		t.Errorf("the handler ran %d times, want 2", n)
	}
}

func TestNoKeyIsNeverLetThrough(t *testing.T) {
	long := strings.Repeat("k", protocol.MaxIDBytes)
	for _, tc := range []struct {
		name string
		keys hammergrpc.KeyFunc
		code codes.Code
	}{
		{"error", func(context.Context, string) ([]string, error) { return nil, errors.New("no user") }, codes.InvalidArgument},
		{"no keys", func(context.Context, string) ([]string, error) { return nil, nil }, codes.InvalidArgument},
		{"an empty key", func(context.Context, string) ([]string, error) { return []string{"a", ""}, nil }, codes.InvalidArgument},
		{"too long", func(context.Context, string) ([]string, error) { return []string{long}, nil }, codes.InvalidArgument},
		{"3 keys for 2 limits", func(context.Context, string) ([]string, error) { return []string{"a", "b", "c"}, nil }, codes.Internal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// FailOpen, the default, must not apply: no key is no outage.
			l := newLimiter(t, hammergrpc.Config{Keys: tc.keys}, twoLimits...)
			client, hs := serve(t, interceptors(l)...)
			_, err := client.Check(context.Background(), req)
			wantCode(t, err, tc.code)
			if n, _ := hs.last(); n != 0 {
				t.Errorf("the handler ran")
			}
		})
	}
}

func TestOneKeyPerLimit(t *testing.T) {
	b, err := memory.New(memory.Options{ExpiryMs: 3_600_000})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	keys := func(context.Context, string) ([]string, error) { return []string{"user:1", "org:7"}, nil }
	l := newLimiter(t, hammergrpc.Config{Checker: newCheckerOn(t, b, hammer.Config{Limits: twoLimits}), Keys: keys})
	if err := l.Limit(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Each limit counts its own key, under its name.
	for _, k := range []protocol.BucketKey{
		{Bucket: t0.UnixMilli() / 1000, ID: "per-second:user:1"},
		{Bucket: t0.UnixMilli() / 60_000, ID: "per-minute:org:7"},
	} {
		if in, err := b.GetBucket(context.Background(), k); err != nil || in == nil || in.Count != 1 {
			t.Errorf("bucket %+v: %+v, %v; want a count of 1", k, in, err)
		}
	}
}

func TestSkip(t *testing.T) {
	l := newLimiter(t, hammergrpc.Config{Skip: hammergrpc.SkipMethods(checkMethod)},
		hammer.Limit{Name: "one", Scale: time.Second, Max: 1})
	client, hs := serve(t, interceptors(l)...)
	ctx := context.Background()
	for range 3 {
		if _, err := client.Check(ctx, req); err != nil {
			t.Fatal(err)
		}
		if _, d := hs.last(); d != nil {
			t.Fatalf("a skipped call has a decision: %+v", d)
		}
	}
	watch := func() error {
		s, err := client.Watch(ctx, req)
		if err == nil {
			_, err = s.Recv()
		}
		return err
	}
	if err := watch(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, watch(), codes.ResourceExhausted)
}

func TestShadowLimitNeverDenies(t *testing.T) {
	l := newLimiter(t, hammergrpc.Config{},
		hammer.Limit{Name: "per-minute", Scale: time.Minute, Max: 100},
		hammer.Limit{Name: "trial", Scale: time.Second, Max: 0, Shadow: true})
	client, hs := serve(t, interceptors(l)...)
	var md metadata.MD
	if _, err := client.Check(context.Background(), req, grpc.Header(&md)); err != nil {
		t.Fatal(err)
	}
	if _, d := hs.last(); d == nil || !d.Allowed || d.Limits[1].Allowed || !d.Limits[1].Shadow {
		t.Fatalf("decision %+v, want allowed with trial denying in shadow", d)
	}
	// The trial can never allow (Max 0): no t.
	wantMD(t, md, `"per-minute";q=100;w=60, "trial";q=0;w=1;hammer-shadow`, `"per-minute";r=99;t=40, "trial";r=0;hammer-shadow`)
}

func TestFailOpen(t *testing.T) {
	var log syncBuffer
	b := &failing{}
	l := newLimiter(t, hammergrpc.Config{
		Checker: newCheckerOn(t, b, hammer.Config{Limits: twoLimits}),
		Logger:  slog.New(slog.NewTextHandler(&log, nil)),
	})
	client, hs := serve(t, interceptors(l)...)
	var md metadata.MD
	if _, err := client.Check(context.Background(), req, grpc.Header(&md)); err != nil {
		t.Fatalf("FailOpen: %v", err)
	}
	if n, d := hs.last(); n != 1 || d != nil {
		t.Errorf("handler ran %d times with decision %+v; want once without", n, d)
	}
	if len(md.Get(hammergrpc.MetadataRateLimit)) != 0 {
		t.Errorf("metadata %v without a decision", md)
	}
	if !strings.Contains(log.String(), "backend failed") || !strings.Contains(log.String(), "10.0.0.7") {
		t.Errorf("log %q, want the backend's error", log.String())
	}
}

func TestFailClosed(t *testing.T) {
	l := newLimiter(t, hammergrpc.Config{
		Checker: newCheckerOn(t, &failing{}, hammer.Config{Limits: twoLimits}),
		OnError: hammergrpc.FailClosed,
		Keys:    hammergrpc.FirstOf(hammergrpc.PeerIP, constKey),
	})
	client, hs := serve(t, interceptors(l)...)
	_, err := client.Check(context.Background(), req)
	wantCode(t, err, codes.Unavailable)
	if msg := status.Convert(err).Message(); msg != hammergrpc.ErrUnavailable.Error() {
		t.Errorf("message %q: want no word of the backend's error", msg)
	}
	if ri, _ := details(t, err); ri == nil || ri.RetryDelay.AsDuration() != time.Second {
		t.Errorf("RetryInfo %v, want 1s", ri)
	}
	if n, _ := hs.last(); n != 0 {
		t.Errorf("the handler ran")
	}
	// Limit's error says what happened, and wraps the cause.
	err = l.Limit(context.Background())
	if !errors.Is(err, hammergrpc.ErrUnavailable) || !errors.Is(err, errDown) {
		t.Errorf("Limit: %v, want ErrUnavailable wrapping the backend's error", err)
	}
}

func TestDegradedModeDecidesInProcess(t *testing.T) {
	fallback, err := memory.New(memory.Options{ExpiryMs: 60_000})
	if err != nil {
		t.Fatal(err)
	}
	defer fallback.Close()
	l := newLimiter(t, hammergrpc.Config{
		Checker: newCheckerOn(t, &failing{}, hammer.Config{Limits: twoLimits, Fallback: fallback, FallbackShare: 0.5,
			Logger: slog.New(slog.DiscardHandler)}),
		OnError: hammergrpc.FailClosed,
	})
	client, hs := serve(t, interceptors(l)...)
	var md metadata.MD
	if _, err := client.Check(context.Background(), req, grpc.Header(&md)); err != nil {
		t.Fatal(err)
	}
	if _, d := hs.last(); d == nil || !d.Degraded {
		t.Fatalf("decision %+v, want degraded", d)
	}
	wantMD(t, md, `"per-second";q=1;w=1, "per-minute";q=50;w=60`, `"per-second";r=0;t=1, "per-minute";r=49;t=40`)
	_, err = client.Check(context.Background(), req)
	wantCode(t, err, codes.ResourceExhausted)
}

func TestTimeoutBoundsTheCheck(t *testing.T) {
	l := newLimiter(t, hammergrpc.Config{
		Checker: newCheckerOn(t, &failing{block: true}, hammer.Config{Limits: twoLimits}),
		OnError: hammergrpc.FailClosed,
		Timeout: 20 * time.Millisecond,
	})
	client, _ := serve(t, interceptors(l)...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := client.Check(ctx, req)
	wantCode(t, err, codes.Unavailable)
}

func TestLeftCallIsNoFailure(t *testing.T) {
	var log syncBuffer
	l := newLimiter(t, hammergrpc.Config{
		Checker: newCheckerOn(t, &failing{block: true}, hammer.Config{Limits: twoLimits}),
		Timeout: -1,
		Logger:  slog.New(slog.NewTextHandler(&log, nil)),
		Keys:    constKey,
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := l.Limit(ctx)
	wantCode(t, err, codes.Canceled) // not let through by FailOpen
	if log.String() != "" {
		t.Errorf("logged %q", log.String())
	}
}

func TestNewRefusesABadConfig(t *testing.T) {
	c := newChecker(t, hammer.Config{Limits: twoLimits})
	fb, err := memory.New(memory.Options{ExpiryMs: 60_000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fb.Close() })
	late := newChecker(t, hammer.Config{Limits: twoLimits, Fallback: fb, FallbackShare: 1, FallbackAfter: time.Second})
	for _, cfg := range []hammergrpc.Config{
		{},
		{Checker: c, OnError: hammergrpc.ErrorPolicy(2)},
		{Checker: late}, // a Timeout of 100ms ends before the fallback could decide
		{Checker: late, Timeout: time.Second},
	} {
		if _, err := hammergrpc.New(cfg); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("New(%+v): %v, want ErrInvalid", cfg, err)
		}
	}
}

func TestErrorPolicyString(t *testing.T) {
	for p, want := range map[hammergrpc.ErrorPolicy]string{
		hammergrpc.FailOpen: "fail-open", hammergrpc.FailClosed: "fail-closed", 7: "ErrorPolicy(7)",
	} {
		if got := p.String(); got != want {
			t.Errorf("%d: %q, want %q", int(p), got, want)
		}
	}
}
