package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/protocol"
)

// limitSpec is one --limit of the limits command: a hammer.Limit and the
// key it counts (empty: the command's KEY).
type limitSpec struct {
	limit hammer.Limit
	key   string
}

// limitSpecs is the repeatable --limit flag.
type limitSpecs []limitSpec

func (s *limitSpecs) String() string { return fmt.Sprintf("%d limits", len(*s)) }

// Set parses one --limit: comma-separated name=value fields.
func (s *limitSpecs) Set(v string) error {
	spec, err := parseLimitSpec(v)
	if err != nil {
		return err
	}
	*s = append(*s, spec)
	return nil
}

// parseLimitSpec parses "name=N,scale=D,max=N[,shadow][,key=K]" (a Hammer
// 6 window) or "name=N,algorithm=A,prefix=P,(scale=D|rate=N),limit=N
// [,shadow][,key=K]" (a Hammer 7 limit).
func parseLimitSpec(v string) (limitSpec, error) {
	var (
		spec             limitSpec
		algorithm        string
		prefix           string
		scale            time.Duration
		rate, max, limit int64
		seen             = map[string]bool{}
	)
	num := func(k, s string) (int64, error) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s=%q: not an integer", k, s)
		}
		return n, nil
	}
	for _, field := range strings.Split(v, ",") {
		k, val, hasValue := strings.Cut(field, "=")
		if seen[k] {
			return spec, fmt.Errorf("%s given twice", k)
		}
		seen[k] = true
		var err error
		switch k {
		case "name":
			spec.limit.Name = val
		case "key":
			spec.key = val
		case "shadow":
			spec.limit.Shadow = !hasValue || val == "true"
			if hasValue && val != "true" && val != "false" {
				err = fmt.Errorf("shadow=%q: want true or false", val)
			}
		case "algorithm":
			algorithm = val
		case "prefix":
			prefix = val
		case "scale":
			if scale, err = time.ParseDuration(val); err != nil {
				err = fmt.Errorf("scale=%q: not a Go duration (500ms, 1m, 1h)", val)
			}
		case "rate":
			rate, err = num(k, val)
		case "max":
			max, err = num(k, val)
		case "limit":
			limit, err = num(k, val)
		default:
			err = fmt.Errorf("unknown field %q (want name, scale, max, algorithm, prefix, rate, limit, shadow, key)", k)
		}
		if err != nil {
			return spec, err
		}
	}
	if !seen["name"] {
		return spec, errors.New("missing name=")
	}
	if !seen["algorithm"] {
		for _, k := range []string{"prefix", "rate", "limit"} {
			if seen[k] {
				return spec, fmt.Errorf("%s= is for Hammer 7 limits (algorithm=); a Hammer 6 window takes scale= and max=", k)
			}
		}
		if !seen["scale"] || !seen["max"] {
			return spec, errors.New("a Hammer 6 window needs scale= and max= (or give algorithm= for Hammer 7)")
		}
		spec.limit.Scale, spec.limit.Max = scale, max
		return spec, nil
	}
	if seen["max"] {
		return spec, errors.New("max= is for Hammer 6 windows: Hammer 7 limits take limit=")
	}
	a, err := protocol.ParseAlgorithm(algorithm)
	if err != nil {
		return spec, fmt.Errorf("algorithm=%q: want %s", algorithm, h7Algorithms)
	}
	f := h7Flags{algorithm: a, prefix: prefix, rate: rate}
	spec.limit.Policy = f.policy(scale, limit)
	return spec, nil
}

// limitJSON is one limit in the limits command's --json output.
type limitJSON struct {
	Name      string `json:"name"`
	Key       string `json:"key"`
	Allowed   bool   `json:"allowed"`
	Shadow    bool   `json:"shadow"`
	Count     int64  `json:"count"`
	Quota     int64  `json:"quota"`
	Remaining int64  `json:"remaining"`
	ResetMs   int64  `json:"reset_ms"`
	// RetryAfterMs is 0 when allowed and null when never.
	RetryAfterMs *int64 `json:"retry_after_ms"`
	Never        bool   `json:"never"`
}

// runLimits runs "hammerredis limits".
func runLimits(args []string, stdout, stderr io.Writer) int {
	c := newCommand("limits",
		"KEY --limit SPEC [--limit SPEC ...] [--all-or-nothing] [--inc N] [flags]",
		`Checks one request for KEY against several limits at once, in one round
trip, and says whether it is allowed (package hammer's Checker). Each
--limit SPEC is comma-separated fields:

  name=N,scale=D,max=N                         a Hammer 6 window: max hits per scale
  name=N,algorithm=A,prefix=P,scale=D,limit=N  a Hammer 7 window (fix_window, sliding_window)
  name=N,algorithm=A,prefix=P,rate=N,limit=N   a Hammer 7 bucket (leaky_bucket, token_bucket)

with, for any of them, "shadow" (counted and shown, never denies) and
"key=K" (count K instead of KEY, e.g. an IP beside an API key). A limit
counts the id "<name>:<key>", under the Hammer 6 key prefix or its Hammer 7
prefix, as the library does.

By default every limit counts the request by its own rules, as Hammer
does; with --all-or-nothing a request that any limit (not shadow) denies
is counted by none.

  allowed
    per-second  allowed  count 3 of 10, 7 remaining, resets in 1s
    per-hour    allowed  count 120 of 1000, 880 remaining, resets in 12m3s

With --json: {"key", "allowed", "charged", "limits": [{"name", "key",
"allowed", "shadow", "count", "quota", "remaining", "reset_ms",
"retry_after_ms", "never"}]}.
`, stdout, stderr)
	c.arg = "KEY"
	var specs limitSpecs
	var allOrNothing bool
	c.fs.Var(&specs, "limit", "a limit, as `SPEC` above; at least one, repeatable")
	c.fs.BoolVar(&allOrNothing, "all-or-nothing", false, "count the request in no limit when one denies it")
	c.incFlag("the request's cost; at least 1")
	c.checks = append(c.checks, func(set map[string]bool) error {
		if len(specs) == 0 {
			return usageErrorf("missing --limit: give at least one (e.g. --limit name=per-second,scale=1s,max=10)")
		}
		// The backend's Hammer 6 buckets live as long as the longest
		// window.
		for _, s := range specs {
			c.scale = max(c.scale, s.limit.Scale)
		}
		return nil
	})
	var checker *hammer.Checker
	setup := func(b *hammerredis.Backend) error {
		limits := make([]hammer.Limit, len(specs))
		for i, s := range specs {
			limits[i] = s.limit
		}
		var err error
		// The shadow limits' log lines go where the backend's do.
		logger := slog.New(slog.DiscardHandler)
		if c.verbose {
			logger = slog.New(slog.NewTextHandler(c.stderr, nil))
		}
		checker, err = hammer.NewChecker(b, hammer.Config{Limits: limits, AllOrNothing: allOrNothing, Logger: logger})
		if errors.Is(err, protocol.ErrInvalid) {
			return usageError{err.Error()}
		}
		return err
	}
	c.keepExpiry = true
	return c.withBackend(args, setup, func(ctx context.Context, _ *hammerredis.Backend, key string) (int, error) {
		keys := make([]string, len(specs))
		for i, s := range specs {
			keys[i] = cmpOr(s.key, key)
		}
		d, err := checker.CheckN(ctx, c.inc, keys...)
		if err != nil {
			return 0, err
		}
		code := exitOK
		if !d.Allowed {
			code = exitDenied
		}
		if c.json {
			c.printLimitsJSON(key, keys, d)
			return code, nil
		}
		c.printLimits(d)
		return code, nil
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (c *command) printLimitsJSON(key string, keys []string, d hammer.Decision) {
	out := struct {
		Key     string      `json:"key"`
		Allowed bool        `json:"allowed"`
		Charged bool        `json:"charged"`
		Limits  []limitJSON `json:"limits"`
	}{Key: key, Allowed: d.Allowed, Charged: d.Charged}
	for i, l := range d.Limits {
		j := limitJSON{Name: l.Name, Key: keys[i], Allowed: l.Allowed, Shadow: l.Shadow, Count: l.Count,
			Quota: l.Quota, Remaining: l.Remaining, ResetMs: l.Reset.Milliseconds(), Never: l.Never}
		if !l.Never {
			ms := l.RetryAfter.Milliseconds()
			j.RetryAfterMs = &ms
		}
		out.Limits = append(out.Limits, j)
	}
	c.printJSON(out)
}

func (c *command) printLimits(d hammer.Decision) {
	verdict := "allowed"
	if !d.Allowed {
		verdict = "denied"
		if wait, never := d.RetryAfter(); never {
			verdict += ", never allowed at this cost"
		} else {
			verdict += ", retry in " + waitTime(wait).String()
		}
		if !d.Charged {
			verdict += " (counted in no limit)"
		}
	}
	fmt.Fprintln(c.stdout, verdict)
	width := 0
	for _, l := range d.Limits {
		width = max(width, len(l.Name))
	}
	for _, l := range d.Limits {
		state := "allowed"
		switch {
		case !l.Allowed && l.Shadow:
			state = "shadow: would deny"
		case !l.Allowed:
			state = "denied"
		case l.Shadow:
			state = "shadow: allowed"
		}
		fmt.Fprintf(c.stdout, "  %-*s  %s  count %d of %d, %d remaining, resets in %v\n",
			width, l.Name, state, l.Count, l.Quota, l.Remaining, waitTime(l.Reset))
	}
}
