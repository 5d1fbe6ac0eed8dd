package hammer7_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/hammer7"
	"github.com/hammer-go/hammerredis/memory"
	"github.com/hammer-go/hammerredis/protocol"
)

// The backends the package doc names.
var (
	_ hammer7.Backend     = (*hammerredis.Backend)(nil)
	_ hammer7.KeyPrefixer = (*hammerredis.Backend)(nil)
	_ hammer7.Backend     = (*memory.Backend)(nil)
)

// fake is a Backend that records the last request and answers with reply.
type fake struct {
	reply protocol.HitReply
	count int64
	err   error

	hits []protocol.Hit
	last any
}

func (f *fake) Hit(_ context.Context, r protocol.Hit) (protocol.HitReply, error) {
	f.hits = append(f.hits, r)
	f.last = r
	return f.reply, f.err
}

func (f *fake) Inc(_ context.Context, r protocol.Inc) (int64, error) {
	f.last = r
	return f.count, f.err
}

func (f *fake) Set(_ context.Context, r protocol.Set) (int64, error) {
	f.last = r
	return f.count, f.err
}

func (f *fake) Get(_ context.Context, r protocol.Get) (int64, error) {
	f.last = r
	return f.count, f.err
}

// prefixed is a fake that also has Hammer 6 keys.
type prefixed struct {
	fake
	prefix string
}

func (p *prefixed) KeyPrefix() string { return p.prefix }

// nop answers every hit without recording it: for counting allocations.
type nop struct{ reply protocol.HitReply }

func (n *nop) Hit(context.Context, protocol.Hit) (protocol.HitReply, error) { return n.reply, nil }
func (n *nop) Inc(context.Context, protocol.Inc) (int64, error)             { return 0, nil }
func (n *nop) Set(context.Context, protocol.Set) (int64, error)             { return 0, nil }
func (n *nop) Get(context.Context, protocol.Get) (int64, error)             { return 0, nil }

var t0 = time.UnixMilli(1_700_000_000_250)

func at() time.Time { return t0 }

func TestNewConvertsPolicies(t *testing.T) {
	for _, tc := range []struct {
		p    hammer7.Policy
		want protocol.Policy
	}{
		{hammer7.FixWindow{Prefix: "MyApp.RateLimit", Window: time.Minute, Limit: 100},
			protocol.Policy{Algorithm: protocol.FixWindow, Prefix: "MyApp.RateLimit", ScaleMs: 60_000, Limit: 100}},
		{hammer7.FixWindow{Prefix: "F", Window: time.Millisecond, Limit: 0},
			protocol.Policy{Algorithm: protocol.FixWindow, Prefix: "F", ScaleMs: 1}},
		{hammer7.SlidingWindow{Prefix: "MyApp.SW", Window: 10 * time.Second, Limit: 2},
			protocol.Policy{Algorithm: protocol.SlidingWindow, Prefix: "MyApp.SW", ScaleMs: 10_000, Limit: 2}},
		{hammer7.SlidingWindow{Prefix: "S", Window: 1500 * time.Millisecond, Limit: 1},
			protocol.Policy{Algorithm: protocol.SlidingWindow, Prefix: "S", ScaleMs: 1500, Limit: 1}},
		{hammer7.LeakyBucket{Prefix: "MyApp.LB", LeakPerSecond: 1, Capacity: 3},
			protocol.Policy{Algorithm: protocol.LeakyBucket, Prefix: "MyApp.LB", Rate: 1, Limit: 3}},
		{&hammer7.TokenBucket{Prefix: "MyApp.TB", RefillPerSecond: 5, Capacity: 30},
			protocol.Policy{Algorithm: protocol.TokenBucket, Prefix: "MyApp.TB", Rate: 5, Limit: 30}},
	} {
		f := &fake{}
		l, err := hammer7.New(f, tc.p)
		if err != nil {
			t.Fatalf("New(%+v) error: %v", tc.p, err)
		}
		if _, err := l.WithClock(at).Hit(context.Background(), "user:42"); err != nil {
			t.Fatalf("Hit with %+v: %v", tc.p, err)
		}
		want := protocol.Hit{Policy: tc.want, ID: "user:42", Cost: 1, Now: t0.UnixMilli()}
		if got := f.last; got != want {
			t.Errorf("New(%+v): backend got %+v, want %+v", tc.p, got, want)
		}
		if got := l.Policy(); got != tc.want {
			t.Errorf("New(%+v).Policy() = %+v, want %+v", tc.p, got, tc.want)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	for _, tc := range []struct {
		p    hammer7.Policy
		want string // in the message
	}{
		{nil, "nil policy"},
		{hammer7.FixWindow{Window: time.Second, Limit: 1}, "prefix is required"},
		{hammer7.FixWindow{Prefix: "P", Limit: 1}, "shorter than 1ms"},
		{hammer7.FixWindow{Prefix: "P", Window: -time.Second, Limit: 1}, "shorter than 1ms"},
		{hammer7.FixWindow{Prefix: "P", Window: 1500 * time.Microsecond, Limit: 1}, "not a whole number of milliseconds"},
		{hammer7.FixWindow{Prefix: "P", Window: time.Second, Limit: -1}, "limit -1"},
		{hammer7.FixWindow{Prefix: "P", Window: time.Second, Limit: protocol.MaxLevel + 1}, "out of range"},
		{hammer7.FixWindow{Prefix: "P", Window: 101 * 365 * 24 * time.Hour, Limit: 1}, "out of range"},
		{hammer7.SlidingWindow{Prefix: "P", Window: 999 * time.Millisecond, Limit: 1}, "shorter than 1s"},
		{hammer7.SlidingWindow{Prefix: "P", Window: 0, Limit: 1}, "shorter than 1s"},
		{hammer7.SlidingWindow{Prefix: "P", Window: time.Second + time.Microsecond, Limit: 1}, "not a whole number of milliseconds"},
		{hammer7.LeakyBucket{Prefix: "P", LeakPerSecond: 0, Capacity: 1}, "rate 0"},
		{hammer7.LeakyBucket{Prefix: "P", LeakPerSecond: 1, Capacity: 0}, "capacity 0"},
		{hammer7.TokenBucket{Prefix: "P", RefillPerSecond: -1, Capacity: 1}, "rate -1"},
		{hammer7.TokenBucket{Prefix: "P", RefillPerSecond: 1, Capacity: 0}, "capacity 0"},
		{hammer7.TokenBucket{Prefix: strings.Repeat("x", protocol.MaxIDBytes+1), RefillPerSecond: 1, Capacity: 1}, "bytes long"},
	} {
		l, err := hammer7.New(&fake{}, tc.p)
		if !errors.Is(err, protocol.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%.80v) = %v, %v; want an ErrInvalid saying %q", tc.p, l, err, tc.want)
		}
	}
	if _, err := hammer7.New(nil, hammer7.FixWindow{Prefix: "P", Window: time.Second}); !errors.Is(err, protocol.ErrInvalid) {
		t.Errorf("New(nil backend) error = %v, want ErrInvalid", err)
	}
}

func TestNewRefusesHammer6Prefix(t *testing.T) {
	for _, tc := range []struct {
		k6, prefix string
		collide    bool
	}{
		{"Hammer:Redis:", "Hammer:Redis", true},       // the same keys
		{"Hammer:Redis:", "Hammer", true},             // Hammer 7 id "Redis:x" is Hammer 6 id "x"
		{"Hammer:Redis:", "Hammer:Redis:users", true}, // Hammer 6 id "users:…"
		{"Hammer:Redis:", "Hammer:Redis:", true},      // "Hammer:Redis::…" is Hammer 6 id ":…"
		{"MyApp.RateLimit:", "MyApp.RateLimit", true}, // HAMMER7.md §10's example
		{"", "MyApp.RateLimit", true},                 // an empty Hammer 6 prefix takes every key
		{"Hammer:Redis:", "MyApp.RateLimit", false},   // the defaults
		{"Hammer:Redis:", "Hammer:Redi", false},       // "Hammer:Redi:" vs "Hammer:Redis:"
		{"Hammer:Redis:", "Hammer:RedisX", false},     // "Hammer:RedisX:" vs "Hammer:Redis:"
		{"MyApp.RateLimit:", "MyApp.RateLimit7", false},
	} {
		b := &prefixed{prefix: tc.k6}
		for _, p := range []hammer7.Policy{
			hammer7.FixWindow{Prefix: tc.prefix, Window: time.Second, Limit: 1},
			hammer7.SlidingWindow{Prefix: tc.prefix, Window: time.Second, Limit: 1},
			hammer7.LeakyBucket{Prefix: tc.prefix, LeakPerSecond: 1, Capacity: 1},
			hammer7.TokenBucket{Prefix: tc.prefix, RefillPerSecond: 1, Capacity: 1},
		} {
			_, err := hammer7.New(b, p)
			switch {
			case tc.collide && (!errors.Is(err, protocol.ErrInvalid) || !strings.Contains(err.Error(), "Hammer 6")):
				t.Errorf("New(KeyPrefix %q, %+v) error = %v, want ErrInvalid naming Hammer 6", tc.k6, p, err)
			case !tc.collide && err != nil:
				t.Errorf("New(KeyPrefix %q, %+v) error = %v, want nil", tc.k6, p, err)
			}
		}
	}
	// A backend without Hammer 6 keys takes any prefix.
	if _, err := hammer7.New(&fake{}, hammer7.FixWindow{Prefix: "Hammer:Redis", Window: time.Second}); err != nil {
		t.Errorf("New(no KeyPrefix, prefix Hammer:Redis) error = %v, want nil", err)
	}
}

func TestHitResult(t *testing.T) {
	fw := hammer7.FixWindow{Prefix: "F", Window: time.Minute, Limit: 10}
	sw := hammer7.SlidingWindow{Prefix: "S", Window: time.Minute, Limit: 10}
	lb := hammer7.LeakyBucket{Prefix: "L", LeakPerSecond: 1, Capacity: 10}
	tb := hammer7.TokenBucket{Prefix: "T", RefillPerSecond: 1, Capacity: 10}
	for _, tc := range []struct {
		p     hammer7.Policy
		reply protocol.HitReply
		want  hammer7.Result
	}{
		{fw, protocol.HitReply{Allowed: true, Count: 3},
			hammer7.Result{Allowed: true, Count: 3, Limit: 10, Remaining: 7}},
		{fw, protocol.HitReply{Count: 11, RetryAfterMs: 29_750},
			hammer7.Result{Count: 11, Limit: 10, Remaining: 0, RetryAfter: 29_750 * time.Millisecond}},
		{fw, protocol.HitReply{Count: 12, RetryAfterMs: protocol.Never},
			hammer7.Result{Count: 12, Limit: 10, Never: true}},
		{sw, protocol.HitReply{Count: 9, RetryAfterMs: 1},
			hammer7.Result{Count: 9, Limit: 10, Remaining: 1, RetryAfter: time.Millisecond}},
		{lb, protocol.HitReply{Allowed: true, Count: 10},
			hammer7.Result{Allowed: true, Count: 10, Limit: 10, Remaining: 0}},
		{lb, protocol.HitReply{Count: 8, RetryAfterMs: 750},
			hammer7.Result{Count: 8, Limit: 10, Remaining: 2, RetryAfter: 750 * time.Millisecond}},
		{tb, protocol.HitReply{Allowed: true, Count: 4},
			hammer7.Result{Allowed: true, Count: 4, Limit: 10, Remaining: 4}},
		{tb, protocol.HitReply{Count: 2, RetryAfterMs: protocol.Never},
			hammer7.Result{Count: 2, Limit: 10, Remaining: 2, Never: true}},
	} {
		f := &fake{reply: tc.reply}
		l, err := hammer7.New(f, tc.p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.HitN(context.Background(), "k", 2)
		if err != nil || got != tc.want {
			t.Errorf("%T: HitN with reply %+v = %+v, %v; want %+v", tc.p, tc.reply, got, err, tc.want)
		}
	}
}

func TestCallsPassThrough(t *testing.T) {
	ctx := context.Background()
	f := &fake{count: 7}
	p := hammer7.FixWindow{Prefix: "F", Window: time.Minute, Limit: 10}
	pp := protocol.Policy{Algorithm: protocol.FixWindow, Prefix: "F", ScaleMs: 60_000, Limit: 10}
	l, _ := hammer7.New(f, p)
	l = l.WithClock(at)
	now := t0.UnixMilli()

	if n, err := l.Inc(ctx, "k", 3); n != 7 || err != nil || f.last != (protocol.Inc{Policy: pp, ID: "k", N: 3, Now: now}) {
		t.Errorf("Inc(k, 3) = %d, %v; backend got %+v", n, err, f.last)
	}
	if n, err := l.Set(ctx, "k", 0); n != 7 || err != nil || f.last != (protocol.Set{Policy: pp, ID: "k", Count: 0, Now: now}) {
		t.Errorf("Set(k, 0) = %d, %v; backend got %+v", n, err, f.last)
	}
	if n, err := l.Get(ctx, "k"); n != 7 || err != nil || f.last != (protocol.Get{Policy: pp, ID: "k", Now: now}) {
		t.Errorf("Get(k) = %d, %v; backend got %+v", n, err, f.last)
	}
	if _, err := l.Hit(ctx, ""); err != nil || f.last.(protocol.Hit).Cost != 1 {
		t.Errorf("Hit(\"\") error %v; backend got %+v, want cost 1", err, f.last)
	}

	// The clock is read at each call, WithClock leaves l alone.
	c := t0
	l2 := l.WithClock(func() time.Time { return c })
	c = c.Add(1500 * time.Millisecond)
	l2.Hit(ctx, "k")
	if got := f.last.(protocol.Hit).Now; got != now+1500 {
		t.Errorf("Hit after WithClock: Now = %d, want %d", got, now+1500)
	}
	l.Hit(ctx, "k")
	if got := f.last.(protocol.Hit).Now; got != now {
		t.Errorf("Hit on the original: Now = %d, want %d", got, now)
	}

	// Backend errors come back as they are, with a zero Result.
	boom := errors.New("boom")
	f.err, f.reply = boom, protocol.HitReply{Allowed: true, Count: 1}
	if r, err := l.Hit(ctx, "k"); err != boom || r != (hammer7.Result{}) {
		t.Errorf("Hit on a failing backend = %+v, %v; want {}, boom", r, err)
	}
	for name, call := range map[string]func() (int64, error){
		"Inc": func() (int64, error) { return l.Inc(ctx, "k", 1) },
		"Set": func() (int64, error) { return l.Set(ctx, "k", 1) },
		"Get": func() (int64, error) { return l.Get(ctx, "k") },
	} {
		if _, err := call(); err != boom {
			t.Errorf("%s on a failing backend: error %v, want boom", name, err)
		}
	}
}

func TestCallsRefuse(t *testing.T) {
	ctx := context.Background()
	f := &fake{}
	lb, _ := hammer7.New(f, hammer7.LeakyBucket{Prefix: "L", LeakPerSecond: 1, Capacity: 10})
	tb, _ := hammer7.New(f, hammer7.TokenBucket{Prefix: "T", RefillPerSecond: 1, Capacity: 10})
	fw, _ := hammer7.New(f, hammer7.FixWindow{Prefix: "F", Window: time.Second, Limit: 10})
	sw, _ := hammer7.New(f, hammer7.SlidingWindow{Prefix: "S", Window: time.Second, Limit: 10})
	long := strings.Repeat("k", protocol.MaxIDBytes+1)

	for name, call := range map[string]func() error{
		"leaky Inc":                 func() error { _, err := lb.Inc(ctx, "k", 1); return err },
		"leaky Set":                 func() error { _, err := lb.Set(ctx, "k", 1); return err },
		"token Inc":                 func() error { _, err := tb.Inc(ctx, "k", 1); return err },
		"token Set":                 func() error { _, err := tb.Set(ctx, "k", 1); return err },
		"HitN cost -1":              func() error { _, err := fw.HitN(ctx, "k", -1); return err },
		"HitN cost > MaxLevel":      func() error { _, err := tb.HitN(ctx, "k", protocol.MaxLevel+1); return err },
		"sliding HitN > max add":    func() error { _, err := sw.HitN(ctx, "k", protocol.MaxSlidingAdd+1); return err },
		"Inc n -1":                  func() error { _, err := fw.Inc(ctx, "k", -1); return err },
		"Set count -1":              func() error { _, err := sw.Set(ctx, "k", -1); return err },
		"Hit with a key over 1 MiB": func() error { _, err := fw.Hit(ctx, long); return err },
		"Get with a key over 1 MiB": func() error { _, err := lb.Get(ctx, long); return err },
	} {
		f.last = nil
		if err := call(); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("%s: error %v, want ErrInvalid", name, err)
		}
		if f.last != nil {
			t.Errorf("%s: the backend got %+v, want nothing", name, f.last)
		}
	}
	// Get works for every algorithm, and cost 0 is a valid hit.
	for _, l := range []*hammer7.Limiter{lb, tb, fw, sw} {
		if _, err := l.Get(ctx, "k"); err != nil {
			t.Errorf("Get: %v", err)
		}
		if _, err := l.HitN(ctx, "k", 0); err != nil {
			t.Errorf("HitN(k, 0): %v", err)
		}
	}
}

func TestHitAllocations(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		p     hammer7.Policy
		reply protocol.HitReply
	}{
		{hammer7.FixWindow{Prefix: "MyApp.RateLimit", Window: time.Minute, Limit: 10}, protocol.HitReply{Allowed: true, Count: 1}},
		{hammer7.SlidingWindow{Prefix: "MyApp.SW", Window: time.Minute, Limit: 10}, protocol.HitReply{Count: 10, RetryAfterMs: 1000}},
		{hammer7.LeakyBucket{Prefix: "MyApp.LB", LeakPerSecond: 1, Capacity: 10}, protocol.HitReply{Count: 10, RetryAfterMs: protocol.Never}},
		{hammer7.TokenBucket{Prefix: "MyApp.TB", RefillPerSecond: 1, Capacity: 10}, protocol.HitReply{Allowed: true, Count: 9}},
	} {
		l, err := hammer7.New(&nop{reply: tc.reply}, tc.p)
		if err != nil {
			t.Fatal(err)
		}
		key := "user:42"
		if n := testing.AllocsPerRun(100, func() { l.HitN(ctx, key, 2) }); n != 0 {
			t.Errorf("%T: HitN allocates %v times per call, want 0", tc.p, n)
		}
		if n := testing.AllocsPerRun(100, func() { l.Hit(ctx, key) }); n != 0 {
			t.Errorf("%T: Hit allocates %v times per call, want 0", tc.p, n)
		}
	}
}

func BenchmarkHit(b *testing.B) {
	l, _ := hammer7.New(&nop{reply: protocol.HitReply{Allowed: true, Count: 1}},
		hammer7.FixWindow{Prefix: "MyApp.RateLimit", Window: time.Minute, Limit: 10})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l.Hit(ctx, "user:42")
	}
}
