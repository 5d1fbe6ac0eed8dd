package hammer_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/hammer7"
	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/memory"
	"github.com/hammer-go/hammerredis/protocol"
)

// start is the checker tests' first instant: 250 ms into a minute (t0 is
// minute-aligned).
var start = t0.Add(250 * time.Millisecond)

// newMemory returns a memory backend reading clk, closed with the test.
func newMemory(t *testing.T, clk *clock) *memory.Backend {
	t.Helper()
	m, err := memory.New(memory.Options{ExpiryMs: 3_600_000, CleanupInterval: -1, Clock: clk.now})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

// newChecker returns a checker of cfg on b reading clk.
func newChecker(t *testing.T, b hammer.CheckBackend, clk *clock, cfg hammer.Config) *hammer.Checker {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	c, err := hammer.NewChecker(b, cfg)
	require.NoError(t, err)
	return c.WithClock(clk.now)
}

func TestNewCheckerRefusesBadConfigs(t *testing.T) {
	clk := &clock{t: start}
	m := newMemory(t, clk)
	ok := hammer.Limit{Name: "ok", Scale: time.Second, Max: 10}
	many := make([]hammer.Limit, protocol.MaxCheckLimits+1)
	for i := range many {
		many[i] = hammer.Limit{Name: fmt.Sprint("l", i), Scale: time.Second, Max: 1}
	}
	tests := map[string]hammer.Config{
		"no limits":         {},
		"too many limits":   {Limits: many},
		"empty name":        {Limits: []hammer.Limit{{Scale: time.Second, Max: 1}}},
		"long name":         {Limits: []hammer.Limit{{Name: strings.Repeat("n", 65), Scale: time.Second, Max: 1}}},
		"name with newline": {Limits: []hammer.Limit{{Name: "a\nb", Scale: time.Second, Max: 1}}},
		"non-ASCII name":    {Limits: []hammer.Limit{{Name: "café", Scale: time.Second, Max: 1}}},
		"duplicate names":   {Limits: []hammer.Limit{ok, ok}},
		"scale and policy": {Limits: []hammer.Limit{{Name: "x", Scale: time.Second, Max: 1,
			Policy: hammer7.TokenBucket{Prefix: "p", RefillPerSecond: 1, Capacity: 1}}}},
		"max and policy": {Limits: []hammer.Limit{{Name: "x", Max: 1,
			Policy: hammer7.TokenBucket{Prefix: "p", RefillPerSecond: 1, Capacity: 1}}}},
		"neither scale nor policy": {Limits: []hammer.Limit{{Name: "x"}}},
		"scale below 1ms":          {Limits: []hammer.Limit{{Name: "x", Scale: time.Microsecond, Max: 1}}},
		"negative max":             {Limits: []hammer.Limit{{Name: "x", Scale: time.Second, Max: -1}}},
		"invalid policy":           {Limits: []hammer.Limit{{Name: "x", Policy: hammer7.FixWindow{Window: time.Second, Limit: 1}}}},
		"share without fallback":   {Limits: []hammer.Limit{ok}, FallbackShare: 0.5},
		"fallback without share":   {Limits: []hammer.Limit{ok}, Fallback: m},
		"share above 1":            {Limits: []hammer.Limit{ok}, Fallback: m, FallbackShare: 1.5},
		"negative share":           {Limits: []hammer.Limit{ok}, Fallback: m, FallbackShare: -0.5},
		"NaN share":                {Limits: []hammer.Limit{ok}, Fallback: m, FallbackShare: math.NaN()},
		"negative ProbeEvery":      {Limits: []hammer.Limit{ok}, Fallback: m, FallbackShare: 1, ProbeEvery: -time.Second},
		"negative FallbackAfter":   {Limits: []hammer.Limit{ok}, Fallback: m, FallbackShare: 1, FallbackAfter: -time.Second},
		"FallbackAfter alone":      {Limits: []hammer.Limit{ok}, FallbackAfter: time.Second},
	}
	for name, cfg := range tests {
		c, err := hammer.NewChecker(m, cfg)
		assert.ErrorIs(t, err, protocol.ErrInvalid, "%s: NewChecker = %v", name, c)
	}
	_, err := hammer.NewChecker(nil, hammer.Config{Limits: []hammer.Limit{ok}})
	assert.ErrorIs(t, err, protocol.ErrInvalid, "nil backend")
}

func TestCheckerRefusesBadCalls(t *testing.T) {
	clk := &clock{t: start}
	m := newMemory(t, clk)
	c := newChecker(t, m, clk, hammer.Config{Limits: []hammer.Limit{
		{Name: "a", Scale: time.Second, Max: 10}, {Name: "b", Scale: time.Minute, Max: 100}}})
	ctx := context.Background()
	for name, call := range map[string]func() (hammer.Decision, error){
		"no key":       func() (hammer.Decision, error) { return c.Check(ctx) },
		"three keys":   func() (hammer.Decision, error) { return c.Check(ctx, "x", "y", "z") },
		"cost 0":       func() (hammer.Decision, error) { return c.CheckN(ctx, 0, "x") },
		"negative":     func() (hammer.Decision, error) { return c.CheckN(ctx, -1, "x") },
		"key too long": func() (hammer.Decision, error) { return c.Check(ctx, strings.Repeat("k", protocol.MaxIDBytes)) },
	} {
		d, err := call()
		assert.ErrorIs(t, err, protocol.ErrInvalid, "%s: %+v", name, d)
	}
	d, err := c.Check(ctx, "x", "y") // one key per limit
	require.NoError(t, err)
	assert.True(t, d.Allowed)
	n, err := m.GetBucket(ctx, protocol.BucketKey{ID: "b:y", Bucket: start.UnixMilli() / 60_000})
	require.NoError(t, err)
	require.NotNil(t, n, "limit b counts id IDPrefix (default %q) + its key", "b:")
	assert.Equal(t, int64(1), n.Count)
}

// fiveLimits is one limit of each kind: a Hammer 6 window and the four
// Hammer 7 algorithms, with a quota of 2 or 3.
var fiveLimits = []hammer.Limit{
	{Name: "burst", Scale: time.Second, Max: 2},
	{Name: "fix", Policy: hammer7.FixWindow{Prefix: "fix", Window: time.Minute, Limit: 3}},
	{Name: "sliding", Policy: hammer7.SlidingWindow{Prefix: "sliding", Window: 10 * time.Second, Limit: 3}},
	{Name: "leaky", Policy: hammer7.LeakyBucket{Prefix: "leaky", LeakPerSecond: 1, Capacity: 3}},
	{Name: "token", Policy: hammer7.TokenBucket{Prefix: "token", RefillPerSecond: 1, Capacity: 3}},
}

func TestCheckerDecisions(t *testing.T) {
	clk := &clock{t: start}
	c := newChecker(t, newMemory(t, clk), clk, hammer.Config{Limits: fiveLimits})
	ctx := context.Background()
	s := time.Second

	d, err := c.Check(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, hammer.Decision{Allowed: true, Charged: true, Limits: []hammer.LimitResult{
		{Name: "burst", Allowed: true, Count: 1, Quota: 2, Window: s, Remaining: 1, Reset: 750 * time.Millisecond},
		{Name: "fix", Allowed: true, Count: 1, Quota: 3, Window: time.Minute, Remaining: 2, Reset: 59750 * time.Millisecond},
		{Name: "sliding", Allowed: true, Count: 1, Quota: 3, Window: 10 * s, Remaining: 2, Reset: 10 * s},
		{Name: "leaky", Allowed: true, Count: 1, Quota: 3, Window: 3 * s, Remaining: 2, Reset: s},
		{Name: "token", Allowed: true, Count: 2, Quota: 3, Window: 3 * s, Remaining: 2, Reset: s},
	}}, d)

	// A cost of 2: the burst window denies, the others allow; each limit
	// counts by its own rules.
	d, err = c.CheckN(ctx, 2, "k")
	require.NoError(t, err)
	assert.Equal(t, hammer.Decision{Allowed: false, Charged: true, Limits: []hammer.LimitResult{
		{Name: "burst", Allowed: false, Count: 3, Quota: 2, Window: s, Remaining: 0, Reset: 750 * time.Millisecond,
			RetryAfter: 750 * time.Millisecond},
		{Name: "fix", Allowed: true, Count: 3, Quota: 3, Window: time.Minute, Remaining: 0, Reset: 59750 * time.Millisecond},
		{Name: "sliding", Allowed: true, Count: 3, Quota: 3, Window: 10 * s, Remaining: 0, Reset: 10 * s},
		{Name: "leaky", Allowed: true, Count: 3, Quota: 3, Window: 3 * s, Remaining: 0, Reset: 3 * s},
		{Name: "token", Allowed: true, Count: 0, Quota: 3, Window: 3 * s, Remaining: 0, Reset: 3 * s},
	}}, d)
	wait, never := d.RetryAfter()
	assert.Equal(t, 750*time.Millisecond, wait)
	assert.False(t, never)

	// 1.5 s later, every limit denies a hit of 1, each with its own wait.
	clk.set(start.Add(1500 * time.Millisecond))
	d, err = c.Check(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, hammer.Decision{Allowed: false, Charged: true, Limits: []hammer.LimitResult{
		{Name: "burst", Allowed: true, Count: 1, Quota: 2, Window: s, Remaining: 1, Reset: 250 * time.Millisecond},
		{Name: "fix", Allowed: false, Count: 4, Quota: 3, Window: time.Minute, Remaining: 0, Reset: 58250 * time.Millisecond,
			RetryAfter: 58250 * time.Millisecond},
		{Name: "sliding", Allowed: false, Count: 3, Quota: 3, Window: 10 * s, Remaining: 0, Reset: 8250 * time.Millisecond,
			RetryAfter: 8250 * time.Millisecond},
		{Name: "leaky", Allowed: true, Count: 3, Quota: 3, Window: 3 * s, Remaining: 0, Reset: 3 * s},
		{Name: "token", Allowed: true, Count: 0, Quota: 3, Window: 3 * s, Remaining: 0, Reset: 3 * s},
	}}, d)
	wait, never = d.RetryAfter()
	assert.Equal(t, 58250*time.Millisecond, wait, "the longest wait of the denying limits")
	assert.False(t, never)

	// A cost above every quota can never be allowed.
	d, err = c.CheckN(ctx, 4, "k")
	require.NoError(t, err)
	for _, l := range d.Limits {
		assert.True(t, !l.Allowed && l.Never && l.RetryAfter == 0, "%s: %+v", l.Name, l)
	}
	wait, never = d.RetryAfter()
	assert.True(t, never)
	assert.Equal(t, time.Duration(0), wait)
}

// TestCheckerAllOrNothing: a denied request charges no limit, and its
// results tell what is left of each quota, not what would have been.
func TestCheckerAllOrNothing(t *testing.T) {
	clk := &clock{t: start}
	m := newMemory(t, clk)
	c := newChecker(t, m, clk, hammer.Config{Limits: fiveLimits, AllOrNothing: true})
	ctx := context.Background()
	s := time.Second
	_, err := c.Check(ctx, "k")
	require.NoError(t, err)

	d, err := c.CheckN(ctx, 2, "k")
	require.NoError(t, err)
	assert.Equal(t, hammer.Decision{Allowed: false, Charged: false, Limits: []hammer.LimitResult{
		{Name: "burst", Allowed: false, Count: 1, Quota: 2, Window: s, Remaining: 1, Reset: 750 * time.Millisecond,
			RetryAfter: 750 * time.Millisecond},
		{Name: "fix", Allowed: true, Count: 1, Quota: 3, Window: time.Minute, Remaining: 2, Reset: 59750 * time.Millisecond},
		{Name: "sliding", Allowed: true, Count: 1, Quota: 3, Window: 10 * s, Remaining: 2, Reset: 10 * s},
		{Name: "leaky", Allowed: true, Count: 1, Quota: 3, Window: 3 * s, Remaining: 2, Reset: s},
		{Name: "token", Allowed: true, Count: 2, Quota: 3, Window: 3 * s, Remaining: 2, Reset: s},
	}}, d)
	n, err := m.Get(ctx, protocol.Get{Policy: protocol.Policy{Algorithm: protocol.FixWindow, Prefix: "fix", ScaleMs: 60_000, Limit: 3},
		ID: "fix:k", Now: start.UnixMilli()})
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "the fix window after the denied request")

	d, err = c.Check(ctx, "k")
	require.NoError(t, err)
	assert.True(t, d.Allowed && d.Charged)
	assert.Equal(t, int64(2), d.Limits[0].Count)
}

// observer records what a Checker reports.
type observer struct {
	mu      sync.Mutex
	decided []string // "name outcome" or "name outcome degraded"
	calls   []error
	traces  []any // the traceKey value of each call's context
}

// traceKey is the key of a context value that the observer records.
type traceKey struct{}

func (o *observer) Decided(ctx context.Context, limit string, outcome hammer.Outcome, degraded bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.traces = append(o.traces, ctx.Value(traceKey{}))
	s := limit + " " + outcome.String()
	if degraded {
		s += " degraded"
	}
	o.decided = append(o.decided, s)
}

func (o *observer) BackendCall(ctx context.Context, d time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.traces = append(o.traces, ctx.Value(traceKey{}))
	o.calls = append(o.calls, err)
}

// take returns and forgets what o recorded.
func (o *observer) take() (decided []string, calls []error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	decided, calls, o.decided, o.calls = o.decided, o.calls, nil, nil
	return decided, calls
}

func TestCheckerObserver(t *testing.T) {
	clk := &clock{t: start}
	obs := &observer{}
	c := newChecker(t, newMemory(t, clk), clk, hammer.Config{Observer: obs, Limits: []hammer.Limit{
		{Name: "narrow", Scale: time.Minute, Max: 1},
		{Name: "dry-run", Scale: time.Minute, Max: 0, Shadow: true},
		{Name: "broad", Scale: time.Minute, Max: 10},
	}})
	ctx := context.WithValue(context.Background(), traceKey{}, "trace-1")

	_, err := c.Check(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, []any{"trace-1", "trace-1", "trace-1", "trace-1"}, obs.traces,
		"every report carries the check's context (exemplars, trace links)")
	decided, calls := obs.take()
	assert.Equal(t, []string{"narrow allowed", "dry-run shadow_denied", "broad allowed"}, decided)
	assert.Equal(t, []error{nil}, calls)

	_, err = c.Check(ctx, "k")
	require.NoError(t, err)
	decided, _ = obs.take()
	assert.Equal(t, []string{"narrow denied", "dry-run shadow_denied", "broad allowed"}, decided)

	failing := &stub{err: errors.New("connection refused")}
	c = newChecker(t, failing, clk, hammer.Config{Observer: obs, Limits: []hammer.Limit{
		{Name: "a", Scale: time.Minute, Max: 1}, {Name: "b", Scale: time.Minute, Max: 1}}})
	_, err = c.Check(ctx, "k")
	assert.ErrorIs(t, err, failing.err)
	decided, calls = obs.take()
	assert.Equal(t, []string{"a error", "b error"}, decided)
	assert.Equal(t, []error{failing.err}, calls)

	var bad stubFunc = func(context.Context, protocol.Check) (protocol.CheckReply, error) {
		return protocol.CheckReply{Decisions: []protocol.HitReply{{Allowed: true}}}, nil
	}
	c = newChecker(t, bad, clk, hammer.Config{Observer: obs, Limits: []hammer.Limit{
		{Name: "a", Scale: time.Minute, Max: 1}, {Name: "b", Scale: time.Minute, Max: 1}}})
	_, err = c.Check(ctx, "k")
	assert.ErrorIs(t, err, protocol.ErrBadReply, "one decision for two limits")
	_, calls = obs.take()
	require.Len(t, calls, 1)
	assert.ErrorIs(t, calls[0], protocol.ErrBadReply)
}

// stub is a CheckBackend that fails with err while it is set, and else
// asks ok (when set). It counts its calls. When hold is set, the next call
// closes entered and waits for hold to close before it answers.
type stub struct {
	mu            sync.Mutex
	err           error
	ok            hammer.CheckBackend
	calls         int
	hold, entered chan struct{}
}

func (s *stub) Check(ctx context.Context, c protocol.Check) (protocol.CheckReply, error) {
	s.mu.Lock()
	s.calls++
	err, ok, hold, entered := s.err, s.ok, s.hold, s.entered
	s.hold = nil
	s.mu.Unlock()
	if hold != nil {
		close(entered)
		<-hold
	}
	if cerr := ctx.Err(); cerr != nil {
		return protocol.CheckReply{}, cerr
	}
	if err != nil {
		return protocol.CheckReply{}, err
	}
	return ok.Check(ctx, c)
}

func (s *stub) set(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *stub) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// reporting is a stub that says whether it is connected.
type reporting struct {
	*stub
	connected atomic.Bool
}

func (r *reporting) Connected() bool { return r.connected.Load() }

type stubFunc func(context.Context, protocol.Check) (protocol.CheckReply, error)

func (f stubFunc) Check(ctx context.Context, c protocol.Check) (protocol.CheckReply, error) {
	return f(ctx, c)
}

// degradedSetup returns a checker of a Hammer 6 limit of 10 a minute and a
// token bucket of 4 on b, falling back at half of each to a memory backend.
func degradedSetup(t *testing.T, b hammer.CheckBackend, clk *clock, obs hammer.Observer, log *logtest.Recorder) *hammer.Checker {
	t.Helper()
	return newChecker(t, b, clk, hammer.Config{
		Limits: []hammer.Limit{
			{Name: "minute", Scale: time.Minute, Max: 10},
			{Name: "token", Policy: hammer7.TokenBucket{Prefix: "token", RefillPerSecond: 2, Capacity: 4}},
		},
		Fallback: newMemory(t, clk), FallbackShare: 0.5, ProbeEvery: 5 * time.Second,
		Observer: obs, Logger: log.Logger(),
	})
}

func TestCheckerDegradedMode(t *testing.T) {
	clk := &clock{t: start}
	ctx := context.Background()
	down := errors.New("connection refused")
	backend := &stub{ok: newMemory(t, clk), err: down}
	obs := &observer{}
	log := logtest.New()
	c := degradedSetup(t, backend, clk, obs, log)

	// The backend fails: the fallback decides, at half of each limit.
	d, err := c.Check(ctx, "k")
	require.NoError(t, err)
	assert.True(t, d.Degraded && d.Allowed && c.Degraded())
	assert.Equal(t, []int64{5, 2}, []int64{d.Limits[0].Quota, d.Limits[1].Quota}, "quotas at FallbackShare")
	assert.Equal(t, []int64{1, 1}, []int64{d.Limits[0].Count, d.Limits[1].Count})
	decided, calls := obs.take()
	assert.Equal(t, []string{"minute allowed degraded", "token allowed degraded"}, decided)
	assert.Equal(t, []error{down}, calls)
	assert.Len(t, log.Lines(), 1)
	assert.Contains(t, log.String(), "degraded mode")

	// Until ProbeEvery has passed, the backend is not asked.
	clk.set(start.Add(4999 * time.Millisecond))
	for range 3 {
		d, err = c.Check(ctx, "k")
		require.NoError(t, err)
		assert.True(t, d.Degraded)
	}
	assert.Equal(t, 1, backend.count())
	_, calls = obs.take()
	assert.Empty(t, calls)

	// Then one check tries it; it still fails; the next trial is
	// ProbeEvery later.
	clk.set(start.Add(5 * time.Second))
	for range 3 {
		d, err = c.Check(ctx, "k")
		require.NoError(t, err)
		assert.True(t, d.Degraded)
	}
	assert.Equal(t, 2, backend.count(), "one trial")

	// While a trial is under way, the other checks do not try too.
	hold, entered := make(chan struct{}), make(chan struct{})
	backend.mu.Lock()
	backend.hold, backend.entered = hold, entered
	backend.mu.Unlock()
	clk.set(start.Add(10 * time.Second))
	trial := make(chan hammer.Decision)
	go func() {
		d, err := c.Check(ctx, "k")
		assert.NoError(t, err)
		trial <- d
	}()
	<-entered
	for range 3 {
		d, err = c.Check(ctx, "k")
		require.NoError(t, err)
		assert.True(t, d.Degraded)
	}
	assert.Equal(t, 3, backend.count(), "one trial at a time")
	close(hold)
	assert.True(t, (<-trial).Degraded, "the trial failed: the fallback decided")
	clk.set(start.Add(14999 * time.Millisecond))
	_, err = c.Check(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, 3, backend.count())
	assert.Len(t, log.Lines(), 1, "degraded mode is logged once")

	// The trial that succeeds hands back to the backend.
	backend.set(nil)
	clk.set(start.Add(15 * time.Second))
	obs.take()
	d, err = c.Check(ctx, "k")
	require.NoError(t, err)
	assert.False(t, d.Degraded || c.Degraded())
	assert.Equal(t, []int64{10, 4}, []int64{d.Limits[0].Quota, d.Limits[1].Quota})
	assert.Equal(t, int64(1), d.Limits[0].Count, "the backend's own count")
	decided, calls = obs.take()
	assert.Equal(t, []string{"minute allowed", "token allowed"}, decided)
	assert.Equal(t, []error{nil}, calls)
	assert.Len(t, log.Lines(), 2)
	assert.Contains(t, log.Lines()[1], "degraded mode ends")
	d, err = c.Check(ctx, "k")
	require.NoError(t, err)
	assert.False(t, d.Degraded)
	assert.Equal(t, 5, backend.count())
}

func TestCheckerDegradedModeDoesNotTryADisconnectedBackend(t *testing.T) {
	clk := &clock{t: start}
	ctx := context.Background()
	backend := &reporting{stub: &stub{ok: newMemory(t, clk), err: errors.New("down")}}
	backend.connected.Store(true)
	c := degradedSetup(t, backend, clk, nil, logtest.New())
	_, err := c.Check(ctx, "k")
	require.NoError(t, err)
	require.True(t, c.Degraded())

	backend.connected.Store(false)
	backend.set(nil)
	clk.set(start.Add(time.Minute))
	d, err := c.Check(ctx, "k")
	require.NoError(t, err)
	assert.True(t, d.Degraded)
	assert.Equal(t, 1, backend.count(), "a disconnected backend is not tried")

	backend.connected.Store(true)
	d, err = c.Check(ctx, "k")
	require.NoError(t, err)
	assert.False(t, d.Degraded)
	assert.Equal(t, 2, backend.count())
}

// TestCheckerErrorsThatDoNotFallBack: an invalid request and the caller's
// own context are the caller's problems, not the backend's: they are
// returned, and the checker does not turn degraded.
func TestCheckerErrorsThatDoNotFallBack(t *testing.T) {
	clk := &clock{t: start}
	ctx := context.Background()
	backend := &stub{ok: newMemory(t, clk)}
	obs := &observer{}
	c := degradedSetup(t, backend, clk, obs, logtest.New())

	backend.set(fmt.Errorf("%w: the backend refuses it", protocol.ErrInvalid))
	_, err := c.Check(ctx, "k")
	assert.ErrorIs(t, err, protocol.ErrInvalid)
	assert.False(t, c.Degraded())
	decided, _ := obs.take()
	assert.Equal(t, []string{"minute error", "token error"}, decided)

	backend.set(nil)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.Check(canceled, "k")
	assert.ErrorIs(t, err, context.Canceled)
	assert.False(t, c.Degraded())

	// Nor while degraded: a canceled check is not decided by the fallback.
	backend.set(errors.New("down"))
	_, err = c.Check(ctx, "k")
	require.NoError(t, err)
	require.True(t, c.Degraded())
	_, err = c.Check(canceled, "k")
	assert.ErrorIs(t, err, context.Canceled)
}

// TestCheckerShadowMode: a Shadow limit never denies, nor keeps the others
// from counting; its denials are logged at most once a second, with the
// number left unlogged since the previous line.
func TestCheckerShadowMode(t *testing.T) {
	clk := &clock{t: start}
	log := logtest.New()
	obs := &observer{}
	m := newMemory(t, clk)
	c := newChecker(t, m, clk, hammer.Config{AllOrNothing: true, Observer: obs, Logger: log.Logger(), Limits: []hammer.Limit{
		{Name: "new-limit", Policy: hammer7.TokenBucket{Prefix: "new", RefillPerSecond: 1, Capacity: 1}, Shadow: true},
		{Name: "minute", Scale: time.Minute, Max: 100},
	}})
	ctx := context.Background()
	check := func(at time.Duration) hammer.Decision {
		t.Helper()
		clk.set(start.Add(at))
		d, err := c.Check(ctx, "k")
		require.NoError(t, err)
		return d
	}
	d := check(0)
	assert.True(t, d.Allowed && d.Limits[0].Allowed)
	assert.Empty(t, log.Lines())

	d = check(0)
	assert.True(t, d.Allowed && d.Charged, "a shadow denial never denies")
	assert.True(t, d.Limits[0].Shadow && !d.Limits[0].Allowed)
	assert.Equal(t, int64(2), d.Limits[1].Count, "nor keeps the others from counting")
	wait, never := d.RetryAfter()
	assert.Equal(t, time.Duration(0), wait)
	assert.False(t, never)
	decided, _ := obs.take()
	assert.Equal(t, []string{"new-limit allowed", "minute allowed", "new-limit shadow_denied", "minute allowed"}, decided)
	require.Len(t, log.Lines(), 1)
	assert.Contains(t, log.Lines()[0], "limits=[new-limit]")
	assert.Contains(t, log.Lines()[0], "suppressed=0")

	check(100 * time.Millisecond)
	check(500 * time.Millisecond)
	check(700 * time.Millisecond) // the clock's second ends at +750ms
	assert.Len(t, log.Lines(), 1, "one line a second at most")
	check(time.Second) // a token refilled: allowed, not logged
	check(time.Second)
	require.Len(t, log.Lines(), 2)
	assert.Contains(t, log.Lines()[1], "suppressed=3")
	check(1500 * time.Millisecond)
	assert.Len(t, log.Lines(), 2)
}

// TestCheckerHugeBucket: a bucket that takes longer than a Duration can
// hold to fill reports the longest Duration, not a negative one.
func TestCheckerHugeBucket(t *testing.T) {
	clk := &clock{t: start}
	c := newChecker(t, newMemory(t, clk), clk, hammer.Config{Limits: []hammer.Limit{
		{Name: "huge", Policy: hammer7.LeakyBucket{Prefix: "huge", LeakPerSecond: 1, Capacity: protocol.MaxLevel}}}})
	d, err := c.CheckN(context.Background(), protocol.MaxLevel, "k")
	require.NoError(t, err)
	l := d.Limits[0]
	longest := time.Duration(math.MaxInt64).Truncate(time.Second)
	assert.Equal(t, []time.Duration{longest, longest}, []time.Duration{l.Window, l.Reset}, "%+v", l)
}

func TestCheckerFallbackAfter(t *testing.T) {
	clk := &clock{t: start}
	m := newMemory(t, clk)
	limits := []hammer.Limit{{Name: "a", Scale: time.Minute, Max: 1}}
	assert.Zero(t, newChecker(t, m, clk, hammer.Config{Limits: limits}).FallbackAfter(), "no fallback")
	assert.Equal(t, hammer.DefaultFallbackAfter,
		newChecker(t, m, clk, hammer.Config{Limits: limits, Fallback: m, FallbackShare: 1}).FallbackAfter())
	assert.Equal(t, time.Second,
		newChecker(t, m, clk, hammer.Config{Limits: limits, Fallback: m, FallbackShare: 1, FallbackAfter: time.Second}).FallbackAfter())
}
