package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/protocol"
)

// Demo settings.
const (
	expiryMs       = 60_000 // bucket expiry, and the demo's window length
	connectTimeout = 10 * time.Second
	recoverTimeout = 15 * time.Second
	pollInterval   = 10 * time.Millisecond
)

// The two rate-limited ids: one's name is a prefix of the other's.
const (
	idA = "user:42"
	idB = "user:42:b"
)

// runDemo parses the demo's flags, runs it until done or interrupted, and
// returns the exit status.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hammerredis demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	var urlFlags redisURLFlags
	urlFlags.register(fs, "`URL` of the Redis to use: redis://[[user]:password@]host[:port][/db], or rediss:// for TLS\n"+
		"(default $REDIS_URL; if none is given, a private redis-server is started)")
	duration := fs.Duration("duration", 4*time.Second,
		"how long the clients share one limit, in whole 1s windows; 0 skips that step")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			demoUsage(fs, stdout)
			return exitOK
		}
		demoUsage(fs, stderr)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hammerredis demo: unexpected arguments %q\n\n", fs.Args())
		demoUsage(fs, stderr)
		return exitUsage
	}
	if *duration < 0 {
		fmt.Fprintf(stderr, "hammerredis demo: --duration %v: must not be negative\n\n", *duration)
		demoUsage(fs, stderr)
		return exitUsage
	}
	redisURL, err := urlFlags.resolve("demo", stderr)
	if err != nil {
		fmt.Fprintf(stderr, "hammerredis demo: %v\n\n", err)
		demoUsage(fs, stderr)
		return exitUsage
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = demo(ctx, redisURL, *duration, stdout, stderr)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errNoRedisServer):
		fmt.Fprintf(stderr, "hammerredis demo: %v\n", err)
		return exitUsage
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "hammerredis demo: interrupted; cleaned up")
		return exitInterrupted
	default:
		fmt.Fprintf(stderr, "hammerredis demo: %v\n", err)
		return exitFailed
	}
}

func demoUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, `Usage: hammerredis demo [--redis-url URL] [--duration DURATION]

Walks through the hammerredis backend against a real Redis: counting hits,
reading a bucket, deleting one id's buckets, reconnecting after the
connection is killed, several clients sharing one limit through
hammer.Limiter while the connection is killed again, the backend's
counters (b.Stats()), and stopping.

Without a URL (--redis-url, --redis-url-file or $REDIS_URL; prefer the last
two for a URL with a password, which ps shows in --redis-url) it runs a
private redis-server from PATH on a free port and removes it afterwards. With a URL it writes only keys under
"hammerredis-demo:<pid>:", kills only its own connection and deletes its keys
at the end.

Flags:
`)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// session is one run of the demo.
type session struct {
	out    io.Writer
	b      *hammerredis.Backend
	admin  redis.Conn // the demo's own connection, to look behind the backend
	prefix string     // the backend's key prefix
	client string     // the backend connection's CLIENT SETNAME
	bucket int64      // the demo's bucket, fixed so that it spans no window change
	// duration is how long the clients of manyClients run; 0 skips them.
	duration time.Duration
}

// key returns id's key in the demo's bucket.
func (s *session) key(id string) hammerredis.BucketKey {
	return hammerredis.BucketKey{Bucket: s.bucket, ID: id}
}

// demo sets up Redis and the backend, runs the steps and cleans up.
func demo(ctx context.Context, redisURL string, duration time.Duration, stdout, stderr io.Writer) (err error) {
	pid := os.Getpid()
	t, err := openTarget(redisURL, pid)
	if err != nil {
		return err
	}
	s := &session{out: stdout, prefix: t.keyPrefix(), client: fmt.Sprintf("hammerredis-demo-%d", pid), duration: duration}
	defer func() {
		n, cerr := t.close(s.admin)
		switch {
		case cerr != nil:
			err = errors.Join(err, fmt.Errorf("cleaning up: %w", cerr))
		case t.private != nil:
			s.say("Removed the private redis-server.")
		case s.admin != nil:
			s.say("Deleted the demo's %d remaining key(s) under %q.", n, t.prefix)
		}
		if s.admin != nil {
			s.admin.Close()
		}
	}()

	if t.private != nil {
		s.say("Started a private redis-server at %s (pid %d); it is removed at the end.", t.shown, t.private.Pid())
	} else {
		s.say("Using the Redis at %s, with the key prefix %q.", t.shown, t.prefix)
	}
	s.b, err = hammerredis.Start(hammerredis.Options{
		ExpiryMs:    expiryMs,
		RedisURL:    t.url,
		KeyPrefix:   t.prefix,
		RedixConfig: &hammerredis.RedisConfig{ClientName: s.client},
		Logger:      slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	defer hammerredis.Stop(s.b) // idempotent; the last step stops it too
	if s.admin, err = t.dialAdmin(ctx, fmt.Sprintf("hammerredis-demo-admin-%d", pid)); err != nil {
		return fmt.Errorf("connecting to %s: %w", t.shown, err)
	}

	for _, step := range []func(context.Context) error{
		s.connect, s.countHits, s.readBucket, s.deleteBuckets, s.reconnect, s.manyClients, s.stats, s.stop,
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// say prints one line of explanation.
func (s *session) say(format string, args ...any) {
	fmt.Fprintf(s.out, format+"\n", args...)
}

// heading starts a step.
func (s *session) heading(title string) { fmt.Fprintf(s.out, "\n== %s\n", title) }

// connect waits until the backend's connection is up.
func (s *session) connect(ctx context.Context) error {
	s.heading("Starting the backend")
	s.say("hammerredis.Start returns at once; the connection comes up in the background.")
	start := time.Now()
	for !s.b.Connected() {
		if time.Since(start) > connectTimeout {
			// A call says why: ErrClosed wraps the last connection error.
			_, err := s.b.GetBucket(ctx, hammerredis.BucketKey{ID: idA})
			return fmt.Errorf("not connected after %v: %w", connectTimeout, err)
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
	s.say("Connected after %v (connection name %q, bucket TTL %d s).",
		roundMs(time.Since(start)), s.client, protocol.ExpirySeconds(expiryMs))
	return nil
}

// countHits counts hits for idA in the current bucket.
func (s *session) countHits(ctx context.Context) error {
	s.heading("Counting hits")
	s.bucket = nowMs() / expiryMs
	key := s.key(idA)
	s.say("A bucket is one %d s window: bucket = now_ms / %d = %d.", expiryMs/1000, expiryMs, key.Bucket)
	for range 3 {
		n, err := s.b.CountHit(ctx, key, nowMs())
		if err != nil {
			return err
		}
		s.say("  CountHit(%q)        -> count %d", key.ID, n)
	}
	n, err := s.b.CountHitN(ctx, key, nowMs(), 5)
	if err != nil {
		return err
	}
	s.say("  CountHitN(%q, 5)    -> count %d   (one call, increment 5)", key.ID, n)
	s.say("A rate limiter allows the request while the count is <= its limit.")
	return nil
}

// readBucket reads idA's bucket back, and its TTL from the admin connection.
func (s *session) readBucket(ctx context.Context) error {
	s.heading("Reading the bucket")
	key := s.key(idA)
	info, err := s.b.GetBucket(ctx, key)
	if err != nil {
		return err
	}
	if info == nil {
		return fmt.Errorf("GetBucket(%q) found no bucket", key.ID)
	}
	redisKey := protocol.Key(s.prefix, key)
	ttl, err := redis.Int(s.admin.Do("TTL", redisKey))
	if err != nil {
		return fmt.Errorf("TTL %s: %w", redisKey, err)
	}
	s.say("  GetBucket(%q): count %d, created %s, updated %s",
		key.ID, info.Count, clock(info.Created), clock(info.Updated))
	s.say("  In Redis: hash %q, TTL %d s (refreshed on every hit).", redisKey, ttl)
	s.say("GetBucket only reads: it changes neither the count nor the TTL.")
	return nil
}

// deleteBuckets deletes idA's buckets and shows that idB's survive.
func (s *session) deleteBuckets(ctx context.Context) error {
	s.heading("Deleting one id's buckets")
	now, bucket := nowMs(), s.bucket
	// One more bucket for idA (the previous window) and two hits for idB,
	// whose name starts with idA's.
	if _, err := s.b.CountHit(ctx, hammerredis.BucketKey{Bucket: bucket - 1, ID: idA}, now-expiryMs); err != nil {
		return err
	}
	for range 2 {
		if _, err := s.b.CountHit(ctx, s.key(idB), now); err != nil {
			return err
		}
	}
	s.say("Now %q has buckets %d and %d, and %q has bucket %d with 2 hits.", idA, bucket-1, bucket, idB, bucket)
	n, err := s.b.DeleteBuckets(ctx, idA)
	if err != nil {
		return err
	}
	s.say("  DeleteBuckets(%q)  -> deleted %d key(s)", idA, n)
	for _, id := range []string{idA, idB} {
		info, err := s.b.GetBucket(ctx, s.key(id))
		if err != nil {
			return err
		}
		if info == nil {
			s.say("  GetBucket(%q)      -> no bucket", id)
		} else {
			s.say("  GetBucket(%q)    -> count %d, intact", id, info.Count)
		}
	}
	s.say("Elixir's delete_buckets would have deleted %q's bucket too: its pattern", idB)
	s.say("SCAN MATCH %q also matches %q.", s.prefix+idA+":*", protocol.Key(s.prefix, s.key(idB)))
	s.say("hammerredis deletes only the keys %q followed by a bucket number.", s.prefix+idA+":")
	return nil
}

// reconnect kills the backend's connection and calls until it is back.
func (s *session) reconnect(ctx context.Context) error {
	s.heading("Losing the connection")
	before, err := s.b.GetBucket(ctx, s.key(idB))
	if err != nil {
		return err
	}
	if before == nil {
		return fmt.Errorf("GetBucket(%q) found no bucket", idB)
	}
	id, err := clientID(s.admin, s.client)
	if err == nil {
		err = killClient(s.admin, id)
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		// Some hosted Redis services forbid CLIENT LIST or CLIENT KILL.
		s.say("Skipping this step: %v", err)
		return nil
	}
	if err != nil {
		return err
	}
	killed := time.Now()
	s.say("Killed the backend's connection (CLIENT KILL ID %d, name=%s); no other client is touched.", id, s.client)
	s.say("Calling CountHit(%q) every %v until it succeeds (the backend's log is on stderr):", idB, pollInterval)

	var last error
	repeats, inFlight := 0, 0
	for attempt := 1; ; attempt++ {
		n, err := s.b.CountHit(ctx, s.key(idB), nowMs())
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			s.flushRepeats(repeats)
			s.say("  attempt %d: count %d. Recovered %v after the kill, with no help from the caller.",
				attempt, n, roundMs(time.Since(killed)))
			if inFlight > 0 {
				s.say("The count was %d before the kill: %d of the %d call(s) that got ErrDisconnected had counted.",
					before.Count, n-before.Count-1, inFlight)
			}
			return nil
		}
		if errors.Is(err, hammerredis.ErrDisconnected) {
			inFlight++
		}
		// Print each kind of error once, then how often it repeated.
		if last != nil && sameKind(err, last) {
			repeats++
		} else {
			s.flushRepeats(repeats)
			repeats = 0
			s.say("  attempt %d: %v\n             %s", attempt, err, explain(err))
		}
		last = err
		if time.Since(killed) > recoverTimeout {
			return fmt.Errorf("not reconnected after %v: %w", recoverTimeout, err)
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
}

func (s *session) flushRepeats(n int) {
	if n > 0 {
		s.say("  ... the same %d more time(s)", n)
	}
}

// stop stops the backend and shows that later calls fail with ErrStopped.
func (s *session) stop(ctx context.Context) error {
	s.heading("Stopping")
	if err := hammerredis.Stop(s.b); err != nil {
		return err
	}
	s.say("hammerredis.Stop(b) closed the connection and waited for the backend's goroutine.")
	_, err := s.b.CountHit(ctx, s.key(idB), nowMs())
	if !errors.Is(err, hammerredis.ErrStopped) {
		return fmt.Errorf("CountHit after Stop returned %v, want ErrStopped", err)
	}
	s.say("  CountHit after Stop -> %v (errors.Is ErrStopped: true)", err)
	return nil
}

// sameKind reports whether a and b match the same backend error.
func sameKind(a, b error) bool {
	for _, e := range []error{hammerredis.ErrClosed, hammerredis.ErrDisconnected, hammerredis.ErrTimeout} {
		if errors.Is(a, e) {
			return errors.Is(b, e)
		}
	}
	return a.Error() == b.Error()
}

// explain says what a caller should make of err.
func explain(err error) string {
	switch {
	case errors.Is(err, hammerredis.ErrDisconnected):
		return "ErrDisconnected: the connection broke while the call was in flight; it may or may not have counted, and is never re-sent."
	case errors.Is(err, hammerredis.ErrClosed):
		return "ErrClosed: not connected right now; nothing was sent, so retrying is safe."
	case errors.Is(err, hammerredis.ErrTimeout):
		return "ErrTimeout: no reply in time; the outcome is unknown."
	default:
		return "an unexpected error"
	}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func nowMs() int64 { return time.Now().UnixMilli() }

// clock shows a ms timestamp as a wall-clock time.
func clock(ms int64) string { return time.UnixMilli(ms).Format("15:04:05.000") }

func roundMs(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}
