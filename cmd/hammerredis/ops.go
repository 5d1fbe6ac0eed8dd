package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/protocol"
)

// defaultRedisURL is used by check, inspect and delete when neither
// --redis-url nor $REDIS_URL is set: Redix's default.
const defaultRedisURL = "redis://127.0.0.1:6379"

// timeLayout is RFC 3339 with milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// command is one run of check, inspect, delete, hit or get: its flags, the
// ones they share, and where they print.
type command struct {
	name           string
	synopsis       string // after "hammerredis <name> "
	about          string // what the command does, before the flags
	arg            string // the positional argument: "ID" (Hammer 6) or "KEY" (Hammer 7)
	fs             *flag.FlagSet
	stdout, stderr io.Writer
	// checks validate the command's own flags once they are parsed; set
	// holds the names of the flags given.
	checks []func(set map[string]bool) error

	redisURLFlags
	redisURL  string // resolved from redisURLFlags by withBackend
	keyPrefix string
	timeout   time.Duration
	json      bool
	verbose   bool

	// Only for the commands that look at a window.
	scale time.Duration
	limit int64
	// Only for check and hit.
	inc int64
	// Only for hit and get.
	h7 h7Flags
	// keepExpiry: the buckets live as long as scale (the longest window),
	// also with a setup (limits).
	keepExpiry bool
}

// newCommand returns a command with the flags every one of them has.
func newCommand(name, synopsis, about string, stdout, stderr io.Writer) *command {
	c := &command{name: name, synopsis: synopsis, about: about, arg: "ID", stdout: stdout, stderr: stderr}
	c.fs = flag.NewFlagSet("hammerredis "+name, flag.ContinueOnError)
	c.fs.SetOutput(io.Discard) // errors and usage are printed by parse
	c.fs.Usage = func() {}
	c.register(c.fs, "`URL` of the Redis: redis://[[user]:password@]host[:port][/db], or rediss:// for TLS\n"+
		"(default $REDIS_URL, else "+defaultRedisURL+")")
	c.fs.StringVar(&c.keyPrefix, "key-prefix", protocol.DefaultKeyPrefix,
		"`prefix` of the bucket keys: the backend's default, to see the services' buckets")
	c.fs.DurationVar(&c.timeout, "timeout", 5*time.Second,
		"how long to wait for the connection and the call together")
	c.fs.BoolVar(&c.json, "json", false,
		"print one JSON object on stdout, also for errors ({\"error\": ...})")
	c.fs.BoolVar(&c.verbose, "verbose", false, "log the backend's connection events to stderr")
	return c
}

// windowFlags adds --scale and --limit, both required.
func (c *command) windowFlags() {
	c.fs.DurationVar(&c.scale, "scale", 0,
		"`length` of a window, as a Go duration (500ms, 1m, 1h); required")
	c.fs.Int64Var(&c.limit, "limit", 0, "hits allowed per window; required")
	c.checks = append(c.checks, c.checkWindow)
}

// checkWindow checks --scale and --limit of check and inspect.
func (c *command) checkWindow(set map[string]bool) error {
	switch {
	case !set["scale"]:
		return usageErrorf("missing --scale, the window length (e.g. --scale 1m)")
	case !set["limit"]:
		return usageErrorf("missing --limit, the hits allowed per window (e.g. --limit 10)")
	case c.scale < time.Millisecond || c.scale%time.Millisecond != 0:
		return usageErrorf("--scale %v: want a whole number of milliseconds, at least 1ms (e.g. 500ms, 1m, 1h)", c.scale)
	case c.limit < 0:
		return usageErrorf("--limit %d: must not be negative", c.limit)
	}
	return nil
}

// incFlag adds --inc, whose usage is what it counts.
func (c *command) incFlag(usage string) {
	c.fs.Int64Var(&c.inc, "inc", 1, usage)
	c.checks = append(c.checks, func(map[string]bool) error {
		if c.inc < 1 {
			return usageErrorf("--inc %d: must be at least 1", c.inc)
		}
		return nil
	})
}

// usage prints the command's help to w.
func (c *command) usage(w io.Writer) {
	an := "a"
	if c.arg == "ID" {
		an = "an"
	}
	fmt.Fprintf(w, "Usage: hammerredis %s %s\n\n%s\nFlags (before or after the %s; put %s %[4]s that starts with - after --):\n",
		c.name, c.synopsis, c.about, c.arg, an)
	c.fs.SetOutput(w)
	c.fs.PrintDefaults()
	c.fs.SetOutput(io.Discard)
	fmt.Fprintf(w, `
Without --redis-url, --redis-url-file and $REDIS_URL, the Redis at %s is used.
Exit status: %s.
`, defaultRedisURL, c.exitStatuses())
}

func (c *command) exitStatuses() string {
	if c.name == "check" || c.name == "hit" || c.name == "limits" {
		return "0 when allowed, 1 when denied, 2 on an error (usage, Redis unreachable, timeout)"
	}
	return "0 on success, 2 on an error (usage, Redis unreachable, timeout)"
}

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

// parse parses args, whose flags may come before or after the ID (or KEY),
// and returns it. It returns flag.ErrHelp for --help.
func (c *command) parse(args []string) (string, error) {
	flags, positional := splitArgs(c.fs, args)
	if err := c.fs.Parse(flags); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", err
		}
		c.json = c.json || wantsJSON(flags)
		return "", usageError{err.Error()}
	}
	positional = append(positional, c.fs.Args()...)
	set := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case len(positional) == 0:
		return "", usageErrorf("missing %s", c.arg)
	case len(positional) > 1:
		return "", usageErrorf("unexpected arguments after the %s: %q", c.arg, positional[1:])
	case positional[0] == "":
		return "", usageErrorf("the %s is empty", c.arg)
	case c.timeout <= 0:
		return "", usageErrorf("--timeout %v: must be positive", c.timeout)
	}
	for _, check := range c.checks {
		if err := check(set); err != nil {
			return "", err
		}
	}
	return positional[0], nil
}

// splitArgs separates flags (with their values) from positional arguments,
// so that flags may follow the ID: the flag package stops at the first
// non-flag. Everything after "--" is positional.
func splitArgs(fs *flag.FlagSet, args []string) (flags, positional []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return flags, append(positional, args[i+1:]...)
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if strings.Contains(name, "=") {
			continue
		}
		// A flag that takes a value takes the next argument, as flag does.
		if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return flags, positional
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// wantsJSON reports whether flags ask for --json, for errors found before
// the flags are all parsed.
func wantsJSON(flags []string) bool {
	for _, f := range flags {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(f, "-"), "-"), "=")
		if name != "json" {
			continue
		}
		if !hasValue {
			return true
		}
		b, err := strconv.ParseBool(value)
		return err == nil && b
	}
	return false
}

// fail prints err (as {"error": ...} with --json) and returns the exit
// status for it.
func (c *command) fail(err error) int {
	if c.json {
		c.printJSON(struct {
			Error string `json:"error"`
		}{err.Error()})
	} else {
		fmt.Fprintf(c.stderr, "hammerredis %s: %v\n", c.name, err)
		if errors.As(err, new(usageError)) {
			fmt.Fprintf(c.stderr, "Run \"hammerredis %s --help\" for usage.\n", c.name)
		}
	}
	if errors.Is(err, errInterrupted) {
		return exitInterrupted
	}
	return exitError
}

func (c *command) printJSON(v any) {
	enc := json.NewEncoder(c.stdout)
	enc.SetEscapeHTML(false)
	enc.Encode(v) // cannot fail: plain structs
}

var errInterrupted = errors.New("interrupted")

// withLimiter parses args, starts a backend, waits for its connection and
// calls f with a limiter on it and the ID, within --timeout. It stops the
// backend before it returns f's exit status.
func (c *command) withLimiter(args []string, f func(ctx context.Context, l *hammer.Limiter, id string) (int, error)) int {
	return c.withBackend(args, nil, func(ctx context.Context, b *hammerredis.Backend, id string) (int, error) {
		return f(ctx, hammer.New(b), id)
	})
}

// withBackend parses args, starts a backend, calls setup with it (when not
// nil) before waiting for its connection, so that setup's errors come first
// even when Redis is unreachable, then calls f with the backend and the ID,
// within --timeout. It stops the backend before it returns f's exit status.
func (c *command) withBackend(args []string, setup func(b *hammerredis.Backend) error,
	f func(ctx context.Context, b *hammerredis.Backend, id string) (int, error)) int {
	id, err := c.parse(args)
	if errors.Is(err, flag.ErrHelp) {
		c.usage(c.stdout)
		return exitOK
	}
	if err != nil {
		return c.fail(err)
	}
	if c.redisURL, err = c.resolve(c.name, c.stderr); err != nil {
		return c.fail(err)
	}
	if c.redisURL == "" {
		c.redisURL = defaultRedisURL
	}
	logger := slog.New(slog.DiscardHandler)
	if c.verbose {
		logger = slog.New(slog.NewTextHandler(c.stderr, nil))
	}
	// The backend needs an expiry: a bucket that check counts in lives as
	// long as its window (plus the second the backend adds). Hammer 7's
	// keys (hit) set their own expiries.
	expiryMs := c.scale.Milliseconds()
	if expiryMs <= 0 || (setup != nil && !c.keepExpiry) {
		expiryMs = 60_000 // inspect, delete and get write nothing
	}
	b, err := hammerredis.Start(hammerredis.Options{
		ExpiryMs:             expiryMs,
		RedisURL:             c.redisURL,
		KeyPrefix:            c.keyPrefix,
		CallTimeout:          c.timeout,
		DeleteBucketsTimeout: c.timeout,
		HealthCheckInterval:  -1, // the backend lives for one call
		RedixConfig: &hammerredis.RedisConfig{
			ConnectTimeout: c.timeout,
			ReadTimeout:    c.timeout,
			WriteTimeout:   c.timeout,
		},
		Logger: logger,
	})
	if err != nil {
		return c.fail(err) // the backend's errors never show a password
	}
	defer hammerredis.Stop(b)
	if setup != nil {
		if err := setup(b); err != nil {
			return c.fail(err)
		}
	}

	sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(sigCtx, c.timeout)
	defer cancel()
	if err := b.WaitConnected(ctx); err != nil {
		return c.fail(c.connectError(b, sigCtx, err))
	}
	code, err := f(ctx, b, id)
	if err != nil {
		if sigCtx.Err() != nil {
			err = errInterrupted
		}
		return c.fail(err)
	}
	return code
}

// connectError says why WaitConnected failed: the backend's last connection
// error when there is one.
func (c *command) connectError(b *hammerredis.Backend, sigCtx context.Context, err error) error {
	if sigCtx.Err() != nil {
		return errInterrupted
	}
	shown := withoutCredentials(c.redisURL)
	if !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("connecting to %s: %w", shown, err)
	}
	// A call while disconnected fails at once with ErrClosed, which wraps
	// the last connection error.
	probe, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, perr := b.GetBucket(probe, hammerredis.BucketKey{}); errors.Is(perr, hammerredis.ErrClosed) {
		err = perr
	}
	return fmt.Errorf("no connection to %s within %v: %w", shown, c.timeout, err)
}

// runCheck runs "hammerredis check".
func runCheck(args []string, stdout, stderr io.Writer) int {
	c := newCommand("check", "ID --scale DURATION --limit N [--inc N] [flags]", `Counts --inc hits (default 1) for ID in its current window of length --scale
and says whether the window's count is within --limit, as the services'
Hammer check_rate_inc does. The hits are counted even when denied.

  allowed: count 3 of 10, 7 remaining, resets in 41s
  denied: count 11 of 10, retry in 41s

With --json: {"id", "allowed", "count", "limit", "remaining", "increment",
"scale_ms", "reset_ms", "reset_at"}; reset_ms is the time to the next window.
`, stdout, stderr)
	c.windowFlags()
	c.incFlag("hits to count at once; at least 1")
	return c.withLimiter(args, func(ctx context.Context, l *hammer.Limiter, id string) (int, error) {
		r, err := l.CheckRateInc(ctx, id, c.scale, c.limit, c.inc)
		if err != nil {
			return 0, err
		}
		code := exitOK
		if !r.Allowed {
			code = exitDenied
		}
		if c.json {
			c.printJSON(struct {
				ID        string `json:"id"`
				Allowed   bool   `json:"allowed"`
				Count     int64  `json:"count"`
				Limit     int64  `json:"limit"`
				Remaining int64  `json:"remaining"`
				Increment int64  `json:"increment"`
				ScaleMs   int64  `json:"scale_ms"`
				ResetMs   int64  `json:"reset_ms"`
				ResetAt   string `json:"reset_at"`
			}{id, r.Allowed, r.Count, r.Limit, r.Remaining, c.inc, c.scale.Milliseconds(),
				r.ResetAfter.Milliseconds(), r.Reset.UTC().Format(timeLayout)})
			return code, nil
		}
		if r.Allowed {
			fmt.Fprintf(c.stdout, "allowed: count %d of %d, %d remaining, resets in %v\n",
				r.Count, r.Limit, r.Remaining, waitTime(r.ResetAfter))
		} else {
			fmt.Fprintf(c.stdout, "denied: count %d of %d, retry in %v\n", r.Count, r.Limit, waitTime(r.ResetAfter))
		}
		return code, nil
	})
}

// runInspect runs "hammerredis inspect".
func runInspect(args []string, stdout, stderr io.Writer) int {
	c := newCommand("inspect", "ID --scale DURATION --limit N [flags]", `Shows ID's current window of length --scale without counting a hit, as
Hammer's inspect_bucket does: the count, the hits remaining under --limit,
the ms until the next window, and when the window's first and latest hits
were counted.

  count 3 of 10, 7 remaining, next bucket in 41234 ms
  created 2025-01-02T15:04:05.123Z, updated 2025-01-02T15:04:19.456Z

or, when the window has no bucket yet:

  no bucket: count 0 of 10, 10 remaining, next bucket in 41234 ms

With --json: {"id", "exists", "count", "limit", "remaining", "scale_ms",
"ms_to_next_bucket", "created", "updated", "created_ms", "updated_ms"}; the
last four are null when there is no bucket.
`, stdout, stderr)
	c.windowFlags()
	return c.withLimiter(args, func(ctx context.Context, l *hammer.Limiter, id string) (int, error) {
		in, err := l.InspectBucket(ctx, id, c.scale, c.limit)
		if err != nil {
			return 0, err
		}
		if c.json {
			out := struct {
				ID             string  `json:"id"`
				Exists         bool    `json:"exists"`
				Count          int64   `json:"count"`
				Limit          int64   `json:"limit"`
				Remaining      int64   `json:"remaining"`
				ScaleMs        int64   `json:"scale_ms"`
				MsToNextBucket int64   `json:"ms_to_next_bucket"`
				Created        *string `json:"created"`
				Updated        *string `json:"updated"`
				CreatedMs      *int64  `json:"created_ms"`
				UpdatedMs      *int64  `json:"updated_ms"`
			}{ID: id, Exists: in.Exists, Count: in.Count, Limit: c.limit, Remaining: in.Remaining,
				ScaleMs: c.scale.Milliseconds(), MsToNextBucket: in.MsToNextBucket}
			if in.Exists {
				created, updated := rfc3339(in.Created), rfc3339(in.Updated)
				out.Created, out.Updated = &created, &updated
				out.CreatedMs, out.UpdatedMs = &in.Created, &in.Updated
			}
			c.printJSON(out)
			return exitOK, nil
		}
		if !in.Exists {
			fmt.Fprint(c.stdout, "no bucket: ")
		}
		fmt.Fprintf(c.stdout, "count %d of %d, %d remaining, next bucket in %d ms\n",
			in.Count, c.limit, in.Remaining, in.MsToNextBucket)
		if in.Exists {
			fmt.Fprintf(c.stdout, "created %s, updated %s\n", rfc3339(in.Created), rfc3339(in.Updated))
		}
		return exitOK, nil
	})
}

// runDelete runs "hammerredis delete".
func runDelete(args []string, stdout, stderr io.Writer) int {
	c := newCommand("delete", "ID [flags]", `Deletes every bucket of ID, in every window, resetting its limits, as
Hammer's delete_buckets does; other IDs' buckets are never touched, even
those whose IDs start with ID.

  deleted 2 bucket(s) of "user:42"

With --json: {"id", "deleted"}.
`, stdout, stderr)
	return c.withLimiter(args, func(ctx context.Context, l *hammer.Limiter, id string) (int, error) {
		n, err := l.DeleteBuckets(ctx, id)
		if err != nil {
			return 0, err
		}
		if c.json {
			c.printJSON(struct {
				ID      string `json:"id"`
				Deleted int64  `json:"deleted"`
			}{id, n})
		} else {
			fmt.Fprintf(c.stdout, "deleted %d bucket(s) of %q\n", n, id)
		}
		return exitOK, nil
	})
}

// rfc3339 shows a ms timestamp in UTC, with ms.
func rfc3339(ms int64) string { return time.UnixMilli(ms).UTC().Format(timeLayout) }

// waitTime shows how long to wait: ms under a second, else whole seconds
// rounded up, so that a client retrying after it is in the next window.
func waitTime(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return (d + time.Second - 1).Truncate(time.Second)
}
