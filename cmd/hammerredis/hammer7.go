package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/hammer7"
	"github.com/hammer-go/hammerredis/protocol"
)

// h7Flags are the flags of hit and get that name a Hammer 7 limiter; --scale
// and --limit are the command's own scale and limit.
type h7Flags struct {
	algorithmName string
	algorithm     protocol.Algorithm // parsed from algorithmName by checkH7
	prefix        string
	rate          int64
	// needLimit: --limit is required even for a window (hit).
	needLimit bool
}

// h7Algorithms lists the values of --algorithm, for messages.
const h7Algorithms = "fix_window, sliding_window, leaky_bucket or token_bucket"

// hammer7Flags adds --algorithm, --prefix, --scale, --rate and --limit.
// limitUsage describes --limit; needLimit makes it required for windows
// too (buckets always need it).
func (c *command) hammer7Flags(limitUsage string, needLimit bool) {
	c.arg = "KEY"
	c.h7.needLimit = needLimit
	c.fs.StringVar(&c.h7.algorithmName, "algorithm", "",
		"`name` of Hammer 7's algorithm: "+h7Algorithms+"; required")
	c.fs.StringVar(&c.h7.prefix, "prefix", "",
		"the limiter's key `prefix`, Elixir's prefix: option (by default the limiter module's\n"+
			"name, such as MyApp.RateLimit); keys are \"<prefix>:<KEY>...\"; required")
	c.fs.DurationVar(&c.scale, "scale", 0,
		"`length` of a window, as a Go duration (500ms, 1m, 1h): fix_window (at least 1ms) and\n"+
			"sliding_window (at least 1s) only, and required for them")
	c.fs.Int64Var(&c.h7.rate, "rate", 0,
		"units per second that a leaky_bucket leaks or a token_bucket refills, at least 1:\n"+
			"buckets only, and required for them")
	c.fs.Int64Var(&c.limit, "limit", 0, limitUsage)
	// The Hammer 6 prefix only guards against a --prefix whose keys could
	// be Hammer 6 keys.
	c.fs.Lookup("key-prefix").Usage = "`prefix` of the Hammer 6 bucket keys in this Redis: --prefix must not make keys\n" +
		"that could be Hammer 6 keys under it"
	c.checks = append(c.checks, c.checkH7)
}

// checkH7 checks that the flags fit the algorithm, before anything is
// dialed. The library checks the rest (upper bounds, the Hammer 6 prefix)
// when the limiter is made.
func (c *command) checkH7(set map[string]bool) error {
	f := &c.h7
	if !set["algorithm"] {
		return usageErrorf("missing --algorithm: %s", h7Algorithms)
	}
	a, err := protocol.ParseAlgorithm(f.algorithmName)
	if err != nil {
		return usageErrorf("--algorithm %q: want %s", f.algorithmName, h7Algorithms)
	}
	f.algorithm = a
	if f.prefix == "" {
		return usageErrorf("missing --prefix, the limiter's key prefix (Elixir's prefix: option, " +
			"by default the module's name, e.g. --prefix MyApp.RateLimit)")
	}
	if a.IsWindow() {
		least := time.Millisecond
		if a == protocol.SlidingWindow {
			least = time.Second // Hammer 7 counts whole seconds
		}
		switch {
		case set["rate"]:
			return usageErrorf("--rate is for leaky_bucket and token_bucket: %s takes --scale, the window length", a)
		case !set["scale"]:
			return usageErrorf("missing --scale, the window length of %s (e.g. --scale 1m)", a)
		case c.scale < least || c.scale%time.Millisecond != 0:
			return usageErrorf("--scale %v: %s wants a whole number of milliseconds, at least %v (e.g. 1s, 1m, 1h)",
				c.scale, a, least)
		case f.needLimit && !set["limit"]:
			return usageErrorf("missing --limit, the units allowed per window (e.g. --limit 10)")
		case c.limit < 0:
			return usageErrorf("--limit %d: must not be negative", c.limit)
		}
		return nil
	}
	what := "leaks"
	if a == protocol.TokenBucket {
		what = "refills"
	}
	switch {
	case set["scale"]:
		return usageErrorf("--scale is for fix_window and sliding_window: %s takes --rate, the units per second it %s", a, what)
	case !set["rate"]:
		return usageErrorf("missing --rate, the units per second the %s %s (e.g. --rate 10)", a, what)
	case f.rate < 1:
		return usageErrorf("--rate %d: must be at least 1 (units per second)", f.rate)
	case !set["limit"]:
		return usageErrorf("missing --limit, the capacity of the %s (e.g. --limit 100)", a)
	case c.limit < 1:
		return usageErrorf("--limit %d: a bucket's capacity must be at least 1", c.limit)
	}
	return nil
}

// policy returns the limiter the flags name.
func (f *h7Flags) policy(scale time.Duration, limit int64) hammer7.Policy {
	switch f.algorithm {
	case protocol.FixWindow:
		return hammer7.FixWindow{Prefix: f.prefix, Window: scale, Limit: limit}
	case protocol.SlidingWindow:
		return hammer7.SlidingWindow{Prefix: f.prefix, Window: scale, Limit: limit}
	case protocol.LeakyBucket:
		return hammer7.LeakyBucket{Prefix: f.prefix, LeakPerSecond: f.rate, Capacity: limit}
	case protocol.TokenBucket:
		return hammer7.TokenBucket{Prefix: f.prefix, RefillPerSecond: f.rate, Capacity: limit}
	}
	return nil // checkH7 refused it
}

// withHammer7 is withBackend with a Hammer 7 limiter made from the flags.
// The limiter is made before connecting, so that a policy the library
// refuses is reported as a usage error even when Redis is unreachable.
func (c *command) withHammer7(args []string, f func(ctx context.Context, l *hammer7.Limiter, key string) (int, error)) int {
	var l *hammer7.Limiter
	setup := func(b *hammerredis.Backend) error {
		var err error
		l, err = hammer7.New(b, c.h7.policy(c.scale, c.limit))
		if errors.Is(err, protocol.ErrInvalid) {
			return usageError{err.Error()}
		}
		return err
	}
	return c.withBackend(args, setup, func(ctx context.Context, _ *hammerredis.Backend, key string) (int, error) {
		return f(ctx, l, key)
	})
}

// hitJSON is hit's --json output.
type hitJSON struct {
	Key       string `json:"key"`
	Algorithm string `json:"algorithm"`
	Allowed   bool   `json:"allowed"`
	// Count is Hammer 7's value: a window's count, a leaky bucket's
	// level, a token bucket's tokens left.
	Count     int64 `json:"count"`
	Limit     int64 `json:"limit"`
	Remaining int64 `json:"remaining"`
	Increment int64 `json:"increment"`
	// RetryAfterMs is 0 when allowed, at least 1 when denied, and null
	// when Never: no wait can help.
	RetryAfterMs *int64 `json:"retry_after_ms"`
	Never        bool   `json:"never"`
}

// runHit runs "hammerredis hit".
func runHit(args []string, stdout, stderr io.Writer) int {
	c := newCommand("hit",
		"KEY --algorithm fix_window|sliding_window --prefix P --scale DURATION --limit N [--inc N] [flags]\n"+
			"       hammerredis hit KEY --algorithm leaky_bucket|token_bucket --prefix P --rate N --limit N [--inc N] [flags]",
		`Counts --inc units (default 1) for KEY with one of Elixir Hammer 7's
limiters, as its hit(key, scale|rate, limit|capacity, inc) does, and says
whether they are allowed. The keys are Hammer 7's (hammer_backend_redis
7.x), so a service's limiter with the same --algorithm, --prefix and
numbers shares the counts:

  fix_window      --scale DURATION --limit N   N units per window; denied hits count too
  sliding_window  --scale DURATION --limit N   N units in any span of --scale (whole seconds)
  leaky_bucket    --rate N --limit N           a bucket of capacity --limit leaking --rate units/s
  token_bucket    --rate N --limit N           --limit tokens refilled at --rate tokens/s

Output (count is Hammer 7's value: a window's count, a leaky bucket's
level, a token bucket's tokens left):

  allowed: count 3 of 10, 7 remaining       (windows)
  allowed: level 3 of 10, 7 remaining       (leaky_bucket)
  allowed: 7 of 10 tokens left              (token_bucket)
  denied: count 11 of 10, retry in 41s
  denied: count 11 of 10, never allowed: --inc 11 is over the limit 10

With --json: {"key", "algorithm", "allowed", "count", "limit", "remaining",
"increment", "retry_after_ms", "never"}; retry_after_ms is 0 when allowed,
the ms to wait when denied, and null with "never": true when --inc is over
the limit or capacity, so that no wait can help.
`, stdout, stderr)
	c.hammer7Flags("a window's units allowed (0 denies every hit), or a bucket's capacity (at least 1);\n"+
		"required", true)
	c.incFlag("units to count at once (Hammer 7's increment or cost); at least 1")
	c.checks = append(c.checks, func(map[string]bool) error {
		most := protocol.MaxLevel
		if c.h7.algorithm == protocol.SlidingWindow {
			most = protocol.MaxSlidingAdd // one sorted-set member per unit
		}
		if c.inc > most {
			return usageErrorf("--inc %d: %s takes at most %d at once", c.inc, c.h7.algorithm, most)
		}
		return nil
	})
	return c.withHammer7(args, func(ctx context.Context, l *hammer7.Limiter, key string) (int, error) {
		r, err := l.HitN(ctx, key, c.inc)
		if err != nil {
			return 0, err
		}
		code := exitOK
		if !r.Allowed {
			code = exitDenied
		}
		if c.json {
			out := hitJSON{Key: key, Algorithm: c.h7.algorithm.String(), Allowed: r.Allowed, Count: r.Count,
				Limit: r.Limit, Remaining: r.Remaining, Increment: c.inc, Never: r.Never}
			if !r.Never {
				ms := r.RetryAfter.Milliseconds()
				out.RetryAfterMs = &ms
			}
			c.printJSON(out)
			return code, nil
		}
		a := c.h7.algorithm
		var state string
		switch a {
		case protocol.TokenBucket:
			state = fmt.Sprintf("%d of %d tokens left", r.Count, r.Limit)
		case protocol.LeakyBucket:
			state = fmt.Sprintf("level %d of %d", r.Count, r.Limit)
		default:
			state = fmt.Sprintf("count %d of %d", r.Count, r.Limit)
		}
		switch {
		case r.Allowed && a == protocol.TokenBucket:
			fmt.Fprintf(c.stdout, "allowed: %s\n", state)
		case r.Allowed:
			fmt.Fprintf(c.stdout, "allowed: %s, %d remaining\n", state, r.Remaining)
		case r.Never:
			over := "limit"
			if !a.IsWindow() {
				over = "capacity"
			}
			fmt.Fprintf(c.stdout, "denied: %s, never allowed: --inc %d is over the %s %d\n", state, c.inc, over, r.Limit)
		default:
			fmt.Fprintf(c.stdout, "denied: %s, retry in %v\n", state, waitTime(r.RetryAfter))
		}
		return code, nil
	})
}

// runGet runs "hammerredis get".
func runGet(args []string, stdout, stderr io.Writer) int {
	c := newCommand("get",
		"KEY --algorithm fix_window|sliding_window --prefix P --scale DURATION [--limit N] [flags]\n"+
			"       hammerredis get KEY --algorithm leaky_bucket|token_bucket --prefix P --rate N --limit N [flags]",
		`Shows KEY's count under one of Elixir Hammer 7's limiters without counting
anything, as its get(key, scale) does: a window's count, a leaky bucket's
level or a token bucket's tokens left.

A window needs --scale, which names its key; --limit is optional and
unused. A bucket needs --rate and --limit (its capacity), the numbers its
hits use: the level is computed with the leak or refill up to now, and a
token bucket never hit is full (--limit tokens).

  count 3                  (windows)
  level 3 of 10            (leaky_bucket)
  7 of 10 tokens left      (token_bucket)

With --json: {"count"}.
`, stdout, stderr)
	c.hammer7Flags("a bucket's capacity (at least 1), required for buckets; optional and unused for\n"+
		"windows", false)
	return c.withHammer7(args, func(ctx context.Context, l *hammer7.Limiter, key string) (int, error) {
		n, err := l.Get(ctx, key)
		if err != nil {
			return 0, err
		}
		switch {
		case c.json:
			c.printJSON(struct {
				Count int64 `json:"count"`
			}{n})
		case c.h7.algorithm == protocol.TokenBucket:
			fmt.Fprintf(c.stdout, "%d of %d tokens left\n", n, c.limit)
		case c.h7.algorithm == protocol.LeakyBucket:
			fmt.Fprintf(c.stdout, "level %d of %d\n", n, c.limit)
		default:
			fmt.Fprintf(c.stdout, "count %d\n", n)
		}
		return exitOK, nil
	})
}
