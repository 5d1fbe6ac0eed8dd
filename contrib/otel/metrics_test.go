package hammerotel_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/hammer-go/hammerredis"
	hammerotel "github.com/hammer-go/hammerredis/contrib/otel"
	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/memory"
	"github.com/hammer-go/hammerredis/protocol"
)

// setup returns a Metrics on a fresh SDK provider and the manual reader
// that collects it.
func setup(t *testing.T, opts ...hammerotel.Option) (*hammerotel.Metrics, *sdkmetric.ManualReader) {
	t.Helper()
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := hammerotel.New(mp, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m, r
}

// collect returns the metrics of r by name.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != hammerotel.ScopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, hammerotel.ScopeName)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// attrs formats a set as "k=v,k=v", in key order.
func attrs(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.Emit())
	}
	return strings.Join(parts, ",")
}

// int64Points returns the points of an Int64 sum or gauge by attrs.
func int64Points(t *testing.T, m metricdata.Metrics) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	var points []metricdata.DataPoint[int64]
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		points = d.DataPoints
	case metricdata.Gauge[int64]:
		points = d.DataPoints
	default:
		t.Fatalf("%s: data %T, want an int64 sum or gauge", m.Name, m.Data)
	}
	for _, p := range points {
		out[attrs(p.Attributes)] = p.Value
	}
	return out
}

// decisions returns the decision counter's points as
// "limit/outcome/degraded" (other attributes left out).
func decisions(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	m, ok := collect(t, r)[hammerotel.DecisionsName]
	if !ok {
		return map[string]int64{}
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok || !sum.IsMonotonic || sum.Temporality != metricdata.CumulativeTemporality {
		t.Fatalf("decisions: %#v, want a cumulative monotonic int64 sum", m.Data)
	}
	if m.Unit != "{decision}" {
		t.Errorf("decisions unit %q", m.Unit)
	}
	out := map[string]int64{}
	for _, p := range sum.DataPoints {
		get := func(k attribute.Key) string {
			v, _ := p.Attributes.Value(k)
			return v.Emit()
		}
		out[get(hammerotel.LimitKey)+"/"+get(hammerotel.OutcomeKey)+"/"+get(hammerotel.DegradedKey)] += p.Value
	}
	return out
}

// durations returns the call duration histogram's counts by error.type
// ("ok" when absent), and checks its unit and bounds.
func durations(t *testing.T, r *sdkmetric.ManualReader) map[string]uint64 {
	t.Helper()
	m, ok := collect(t, r)[hammerotel.CallDurationName]
	if !ok {
		return map[string]uint64{}
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("call duration: %T, want a float64 histogram", m.Data)
	}
	if m.Unit != "s" {
		t.Errorf("call duration unit %q, want s", m.Unit)
	}
	out := map[string]uint64{}
	for _, p := range h.DataPoints {
		if !slices.Equal(p.Bounds, hammerotel.DefaultLatencyBuckets) {
			t.Errorf("bounds %v, want DefaultLatencyBuckets", p.Bounds)
		}
		kind := "ok"
		if v, ok := p.Attributes.Value(hammerotel.ErrorTypeKey); ok {
			kind = v.AsString()
		}
		if p.Attributes.Len() != 1 && kind != "ok" || p.Attributes.Len() != 0 && kind == "ok" {
			t.Errorf("call duration attributes %s, want error.type alone", attrs(p.Attributes))
		}
		out[kind] += p.Count
	}
	return out
}

func newMemory(t *testing.T) *memory.Backend {
	t.Helper()
	b, err := memory.New(memory.Options{ExpiryMs: 2 * 3600 * 1000, CleanupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// at is a fixed clock for the checkers, in the middle of a second.
func at() time.Time { return time.UnixMilli(1_700_000_000_500) }

var limits = []hammer.Limit{
	{Name: "burst", Scale: time.Second, Max: 2},
	{Name: "hourly", Scale: time.Hour, Max: 3},
	{Name: "new-limit", Scale: time.Hour, Max: 1, Shadow: true},
}

func newChecker(t *testing.T, b hammer.CheckBackend, cfg hammer.Config) *hammer.Checker {
	t.Helper()
	if cfg.Limits == nil {
		cfg.Limits = limits
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	c, err := hammer.NewChecker(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c.WithClock(at)
}

// TestDecisionsByLimitAndOutcome counts the decisions of real checks, by
// limit and outcome, shadow denials among them, and times every call.
func TestDecisionsByLimitAndOutcome(t *testing.T) {
	m, r := setup(t)
	c := newChecker(t, newMemory(t), hammer.Config{Observer: m})
	ctx := context.Background()
	var allowed []bool
	for range 4 {
		d, err := c.Check(ctx, "user:42")
		if err != nil {
			t.Fatal(err)
		}
		allowed = append(allowed, d.Allowed)
	}
	if !slices.Equal(allowed, []bool{true, true, false, false}) {
		t.Fatalf("allowed %v", allowed)
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
}

func mapsEqual[V comparable](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// flaky is a backend that fails with err while it is set, else decides in
// a memory backend.
type flaky struct {
	mem *memory.Backend
	err atomic.Pointer[error]
}

func (f *flaky) Check(ctx context.Context, c protocol.Check) (protocol.CheckReply, error) {
	if err := f.err.Load(); err != nil {
		return protocol.CheckReply{}, *err
	}
	return f.mem.Check(ctx, c)
}

func (f *flaky) fail(err error) { f.err.Store(&err) }

// TestErrorOutcome: without a fallback, a failed backend call is an error
// for every limit, and its duration is recorded with its kind.
func TestErrorOutcome(t *testing.T) {
	m, r := setup(t)
	b := &flaky{mem: newMemory(t)}
	b.fail(fmt.Errorf("dialing: %w", hammerredis.ErrClosed))
	c := newChecker(t, b, hammer.Config{Observer: m})
	if _, err := c.Check(context.Background(), "user:42"); !errors.Is(err, hammerredis.ErrClosed) {
		t.Fatalf("Check: %v, want ErrClosed", err)
	}
	want := map[string]int64{"burst/error/false": 1, "hourly/error/false": 1, "new-limit/error/false": 1}
	if got := decisions(t, r); !mapsEqual(got, want) {
		t.Errorf("decisions\n got %v\nwant %v", got, want)
	}
	if got := durations(t, r); !mapsEqual(got, map[string]uint64{"closed": 1}) {
		t.Errorf("call durations %v, want 1 closed", got)
	}
}

// TestDegraded: while the backend fails, the fallback's decisions count
// as degraded, and the gauge of ObserveChecker says so; both end when the
// backend answers again.
func TestDegraded(t *testing.T) {
	m, r := setup(t)
	b := &flaky{mem: newMemory(t)}
	c := newChecker(t, b, hammer.Config{Observer: m, Fallback: newMemory(t), FallbackShare: 1})
	reg, err := m.ObserveChecker("api", c)
	if err != nil {
		t.Fatal(err)
	}
	gauge := func() map[string]int64 {
		t.Helper()
		return int64Points(t, collect(t, r)[hammerotel.CheckerDegradedName])
	}
	if got := gauge(); !mapsEqual(got, map[string]int64{"checker=api": 0}) {
		t.Errorf("degraded gauge before %v, want 0", got)
	}

	ctx := context.Background()
	b.fail(fmt.Errorf("read: %w", hammerredis.ErrDisconnected))
	for range 3 {
		d, err := c.Check(ctx, "user:42")
		if err != nil || !d.Degraded {
			t.Fatalf("Check: %+v, %v, want a degraded decision", d, err)
		}
	}
	want := map[string]int64{
		"burst/allowed/true": 2, "burst/denied/true": 1,
		"hourly/allowed/true":    3,
		"new-limit/allowed/true": 1, "new-limit/shadow_denied/true": 2,
	}
	if got := decisions(t, r); !mapsEqual(got, want) {
		t.Errorf("decisions\n got %v\nwant %v", got, want)
	}
	// The first check tried the backend; the next two did not.
	if got := durations(t, r); !mapsEqual(got, map[string]uint64{"disconnected": 1}) {
		t.Errorf("call durations %v, want 1 disconnected", got)
	}
	if got := gauge(); !mapsEqual(got, map[string]int64{"checker=api": 1}) {
		t.Errorf("degraded gauge %v, want 1", got)
	}

	// Past ProbeEvery, a check tries the backend again, which hands back.
	b.err.Store(nil)
	later := c.WithClock(func() time.Time { return time.Now().Add(time.Hour) })
	if d, err := later.Check(ctx, "user:42"); err != nil || d.Degraded {
		t.Fatalf("Check after recovery: %+v, %v", d, err)
	}
	if got := gauge(); !mapsEqual(got, map[string]int64{"checker=api": 0}) {
		t.Errorf("degraded gauge after recovery %v, want 0", got)
	}
	got := decisions(t, r)
	if got["burst/allowed/false"] != 1 || got["hourly/allowed/false"] != 1 {
		t.Errorf("decisions after recovery %v, want the backend's", got)
	}

	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	if _, ok := collect(t, r)[hammerotel.CheckerDegradedName]; ok {
		t.Error("the degraded gauge is still collected after Unregister")
	}
}

// TestErrorKinds: each error is recorded as the first kind it matches.
func TestErrorKinds(t *testing.T) {
	deadline, cancel := context.WithDeadline(context.Background(), time.Now())
	defer cancel()
	<-deadline.Done()
	cases := []struct {
		err  error
		kind string
	}{
		{nil, "ok"},
		{hammerredis.ErrClosed, "closed"},
		{fmt.Errorf("x: %w", hammerredis.ErrDisconnected), "disconnected"},
		{fmt.Errorf("%w: %w", hammerredis.ErrTimeout, context.DeadlineExceeded), "timeout"},
		{deadline.Err(), "timeout"},
		{context.Canceled, "canceled"},
		{hammerredis.ErrStopped, "stopped"},
		{fmt.Errorf("%w: bad id", hammerredis.ErrInvalid), "invalid"},
		{hammerredis.ErrUnsupported, "unsupported"},
		{fmt.Errorf("%w: WRONGTYPE", hammerredis.ErrRedis), "redis"},
		{hammerredis.ErrBadReply, "bad_reply"},
		{errors.New("something else"), "other"},
		// An error matching two kinds counts as the first.
		{errors.Join(hammerredis.ErrRedis, hammerredis.ErrClosed), "closed"},
	}
	for _, tc := range cases {
		m, r := setup(t)
		m.BackendCall(context.Background(), 300*time.Microsecond, tc.err)
		if got := durations(t, r); !mapsEqual(got, map[string]uint64{tc.kind: 1}) {
			t.Errorf("BackendCall(%v): %v, want 1 %s", tc.err, got, tc.kind)
		}
	}
}

// TestLatencyBuckets: a call lands in the bucket of its duration, in
// seconds.
func TestLatencyBuckets(t *testing.T) {
	m, r := setup(t)
	for _, d := range []time.Duration{30 * time.Microsecond, 200 * time.Microsecond, 200 * time.Microsecond, 3 * time.Millisecond, 10 * time.Second} {
		m.BackendCall(context.Background(), d, nil)
	}
	h := collect(t, r)[hammerotel.CallDurationName].Data.(metricdata.Histogram[float64])
	if len(h.DataPoints) != 1 {
		t.Fatalf("%d points, want 1", len(h.DataPoints))
	}
	p := h.DataPoints[0]
	counts := map[float64]uint64{} // by upper bound; +Inf as 0
	for i, n := range p.BucketCounts {
		if n == 0 {
			continue
		}
		bound := 0.0
		if i < len(p.Bounds) {
			bound = p.Bounds[i]
		}
		counts[bound] = n
	}
	want := map[float64]uint64{0.00005: 1, 0.00025: 2, 0.005: 1, 0: 1}
	if len(counts) != len(want) || p.Count != 5 {
		t.Fatalf("buckets %v (count %d), want %v", counts, p.Count, want)
	}
	for b, n := range want {
		if counts[b] != n {
			t.Errorf("bucket %v: %d, want %d", b, counts[b], n)
		}
	}
	if s := p.Sum; s < 10.0034 || s > 10.0035 {
		t.Errorf("sum %v s, want 10.00343", s)
	}
}

// TestBoundedLimitAttribute: thousands of distinct keys make no more
// attribute values than the configured limit names.
func TestBoundedLimitAttribute(t *testing.T) {
	m, r := setup(t)
	c := newChecker(t, newMemory(t), hammer.Config{Observer: m})
	ctx := context.Background()
	const keys = 3000
	for i := range keys {
		if _, err := c.Check(ctx, fmt.Sprintf("user:%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	ms := collect(t, r)
	sum := ms[hammerotel.DecisionsName].Data.(metricdata.Sum[int64])
	names := map[string]int64{}
	for _, p := range sum.DataPoints {
		for _, kv := range p.Attributes.ToSlice() {
			if strings.Contains(kv.Value.Emit(), "user:") {
				t.Fatalf("attribute %s holds a key", kv.Key)
			}
		}
		v, _ := p.Attributes.Value(hammerotel.LimitKey)
		names[v.AsString()] += p.Value
	}
	want := map[string]int64{"burst": keys, "hourly": keys, "new-limit": keys}
	if !mapsEqual(names, want) {
		t.Errorf("decisions by limit %v, want %v", names, want)
	}
	if len(sum.DataPoints) != 3 {
		t.Errorf("%d series, want 3 (one per limit: every check allowed)", len(sum.DataPoints))
	}
}

// TestMaxLimitNames: past WithMaxLimitNames names, decisions are labelled
// OtherLimit, from any number of goroutines.
func TestMaxLimitNames(t *testing.T) {
	m, r := setup(t, hammerotel.WithMaxLimitNames(3))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 250 {
				m.Decided(context.Background(), fmt.Sprintf("name-%d", (g*250+i)%1000), hammer.Allowed, false)
			}
		})
	}
	wg.Wait()
	got := decisions(t, r)
	var total int64
	others := int64(0)
	for k, n := range got {
		total += n
		if strings.HasPrefix(k, hammerotel.OtherLimit+"/") {
			others += n
		}
	}
	if total != 2000 || len(got) != 4 || others != 2000-3*2 {
		t.Errorf("decisions %v: want 3 names of 2 decisions each and %d in %q", got, 2000-3*2, hammerotel.OtherLimit)
	}
}

// TestUnknownOutcome: an outcome this package does not know is labelled
// "unknown", not formatted.
func TestUnknownOutcome(t *testing.T) {
	m, r := setup(t)
	m.Decided(context.Background(), "a", hammer.Outcome(0), false)
	m.Decided(context.Background(), "a", hammer.Outcome(200), true)
	want := map[string]int64{"a/unknown/false": 1, "a/unknown/true": 1}
	if got := decisions(t, r); !mapsEqual(got, want) {
		t.Errorf("decisions %v, want %v", got, want)
	}
}

// TestWithAttributes: constant attributes are on every measurement, and
// the package's own keys win over them.
func TestWithAttributes(t *testing.T) {
	m, r := setup(t, hammerotel.WithAttributes(attribute.String("service", "api"), hammerotel.LimitKey.String("x")))
	m.Decided(context.Background(), "burst", hammer.Denied, false)
	m.BackendCall(context.Background(), time.Millisecond, hammerredis.ErrTimeout)
	ms := collect(t, r)
	got := int64Points(t, ms[hammerotel.DecisionsName])
	if !mapsEqual(got, map[string]int64{"degraded=false,limit=burst,outcome=denied,service=api": 1}) {
		t.Errorf("decisions %v", got)
	}
	h := ms[hammerotel.CallDurationName].Data.(metricdata.Histogram[float64])
	if a := attrs(h.DataPoints[0].Attributes); a != "error.type=timeout,limit=x,service=api" {
		t.Errorf("call duration attributes %s", a)
	}
}

// TestNoAllocations: once a limit's name has been seen, the Observer
// methods allocate nothing, with the SDK behind them.
func TestNoAllocations(t *testing.T) {
	m, _ := setup(t)
	m.Decided(context.Background(), "burst", hammer.Allowed, false)
	err := fmt.Errorf("%w: x", hammerredis.ErrRedis)
	allocs := testing.AllocsPerRun(1000, func() {
		m.Decided(context.Background(), "burst", hammer.Denied, true)
		m.BackendCall(context.Background(), time.Millisecond, nil)
		m.BackendCall(context.Background(), time.Millisecond, err)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run, want 0", allocs)
	}
}

func TestInvalidArguments(t *testing.T) {
	if _, err := hammerotel.New(nil, hammerotel.WithMaxLimitNames(-1)); !errors.Is(err, hammerredis.ErrInvalid) {
		t.Errorf("New with a negative WithMaxLimitNames: %v, want ErrInvalid", err)
	}
	m, _ := setup(t)
	if _, err := m.ObserveChecker("", nil); !errors.Is(err, hammerredis.ErrInvalid) {
		t.Errorf("ObserveChecker(nil): %v, want ErrInvalid", err)
	}
	if _, err := m.ObserveBackend("x", nil); !errors.Is(err, hammerredis.ErrInvalid) {
		t.Errorf("ObserveBackend(nil): %v, want ErrInvalid", err)
	}
}
