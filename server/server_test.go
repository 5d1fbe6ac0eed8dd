package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/protocol"
)

// These are unit tests of the server's own logic (queueing, abandonment,
// failure paths, backoff) on a scripted connection. Redis behaviour is
// tested against a real redis-server in the root package.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeConn is a scripted redis.Conn. do answers every command; setting
// broken makes Err report a dead connection, as redigo does after an I/O
// error.
type fakeConn struct {
	mu      sync.Mutex
	do      func(cmd string, args ...any) (any, error)
	cmds    []string
	pending []sent
	flushes int
	// maxPending is the most commands ever sent and not yet received.
	maxPending int
	broken     error
	closed     bool
	onClose    func() // called by Close, if set
	// beforeSend, if set, is called by Send before it queues the command:
	// a test holds the writer there, so that calls queue behind it.
	beforeSend func(cmd string, args ...any)
	// afterSend, if set, is called by Send once the command is queued.
	afterSend func(cmd string, args ...any)
	// info is the reply to INFO at connection start.
	info string
}

func (c *fakeConn) Do(cmd string, args ...any) (any, error) {
	switch cmd {
	case "SCRIPT":
		// Loading the script at connection start: not part of any test's
		// script.
		return countHitSHA, nil
	case "INFO":
		return []byte(c.info), nil
	}
	c.mu.Lock()
	c.cmds = append(c.cmds, strings.TrimSpace(fmt.Sprintln(append([]any{cmd}, args...)...)))
	do := c.do
	c.mu.Unlock()
	return do(cmd, args...)
}

func (c *fakeConn) breakWith(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.broken = err
	return err
}

func (c *fakeConn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed && c.broken == nil {
		return errors.New("closed")
	}
	return c.broken
}

func (c *fakeConn) Close() error {
	c.mu.Lock()
	c.closed = true
	onClose := c.onClose
	c.mu.Unlock()
	if onClose != nil {
		onClose()
	}
	return nil
}

func (c *fakeConn) commands() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.cmds...)
}

// sentWith counts the commands sent that contain s.
func (c *fakeConn) sentWith(s string) int {
	n := 0
	for _, cmd := range c.commands() {
		if strings.Contains(cmd, s) {
			n++
		}
	}
	return n
}

// Send queues a command; its reply comes from do when it is received, as if
// the reply arrived then.
func (c *fakeConn) Send(cmd string, args ...any) error {
	if cmd == "SCRIPT" {
		// Loading scripts at connection start, as in Do.
		c.mu.Lock()
		defer c.mu.Unlock()
		c.pending = append(c.pending, sent{cmd, nil})
		return c.broken
	}
	if c.beforeSend != nil {
		c.beforeSend(cmd, printable(args)...)
	}
	c.mu.Lock()
	if c.broken != nil {
		c.mu.Unlock()
		return c.broken
	}
	args = printable(args)
	c.cmds = append(c.cmds, strings.TrimSpace(fmt.Sprintln(append([]any{cmd}, args...)...)))
	c.pending = append(c.pending, sent{cmd, args})
	c.maxPending = max(c.maxPending, len(c.pending))
	c.mu.Unlock()
	if c.afterSend != nil {
		c.afterSend(cmd, args...)
	}
	return nil
}

// printable copies args with []byte as string: redigo is given keys as
// []byte, from a buffer that is reused after Send.
func printable(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		if b, ok := a.([]byte); ok {
			a = string(b)
		}
		out[i] = a
	}
	return out
}

func (c *fakeConn) Flush() error {
	c.mu.Lock()
	if n := len(c.pending); n == 0 || c.pending[n-1].cmd != "SCRIPT" {
		c.flushes++ // not the scripts loaded at connection start
	}
	c.mu.Unlock()
	return c.Err()
}

func (c *fakeConn) Receive() (any, error) {
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.mu.Unlock()
		return nil, errors.New("fakeConn: Receive without a pending command")
	}
	p := c.pending[0]
	c.pending = c.pending[1:]
	do := c.do
	c.mu.Unlock()
	if p.cmd == "SCRIPT" {
		return countHitSHA, nil
	}
	return do(p.cmd, p.args...)
}

type sent struct {
	cmd  string
	args []any
}

// okDo answers PING, HMGET (no bucket) and the count_hit scripts with 1
// (the multi-key script with 1 for each key).
func okDo(cmd string, args ...any) (any, error) {
	switch cmd {
	case "PING":
		return "PONG", nil
	case "HMGET":
		return []any{nil, nil, nil}, nil
	}
	if n, ok := multiKeys(args); ok {
		out := make([]any, n)
		for i := range out {
			out[i] = int64(1)
		}
		return out, nil
	}
	return int64(1), nil
}

// multiKeys reports whether args are those of a multi-key script run, and
// its number of keys.
func multiKeys(args []any) (int, bool) {
	if len(args) < 2 || (args[0] != multiKeySHA && args[0] != multiKeySource) {
		return 0, false
	}
	return args[1].(int), true
}

type harness struct {
	s    *Server
	log  *logtest.Recorder
	errc chan error
}

// testConfig returns a complete, valid Config for the fakes: dial, a
// silent logger and no health checks; tests change the fields they test.
func testConfig(dial func(context.Context) (redis.Conn, error)) Config {
	return Config{
		Dial:                 dial,
		Name:                 "fake",
		ExpiryMs:             60000,
		KeyPrefix:            protocol.DefaultKeyPrefix,
		CallTimeout:          5 * time.Second,
		DeleteBucketsTimeout: 5 * time.Second,
		HealthCheckInterval:  -1,
		MinBackoff:           50 * time.Millisecond,
		MaxBackoff:           800 * time.Millisecond,
		QueueSize:            1024,
		MaxPipeline:          256,
		Logger:               slog.New(slog.DiscardHandler),
	}
}

// dialConn returns a Dial that returns conn.
func dialConn(conn redis.Conn) func(context.Context) (redis.Conn, error) {
	return func(context.Context) (redis.Conn, error) { return conn, nil }
}

// run starts a server whose dial returns conns in turn, then fails. edit,
// if not nil, changes its testConfig first.
func run(t *testing.T, edit func(*Config), conns ...*fakeConn) *harness {
	t.Helper()
	h := &harness{log: logtest.New(), errc: make(chan error, 1)}
	var mu sync.Mutex
	cfg := testConfig(func(ctx context.Context) (redis.Conn, error) {
		mu.Lock()
		defer mu.Unlock()
		if len(conns) == 0 {
			return nil, errors.New("fake: no more connections")
		}
		c := conns[0]
		conns = conns[1:]
		return c, nil
	})
	cfg.Logger = h.log.Logger()
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg)
	require.NoError(t, err)
	h.s = s
	go func() { h.errc <- s.Serve(context.Background()) }()
	t.Cleanup(s.Stop)
	return h
}

func (h *harness) connected(t *testing.T) {
	t.Helper()
	h.log.WaitCount(t, "connected to redis", 1, 10*time.Second)
}

func countHit(id string) protocol.CountHit {
	return protocol.CountHit{Key: protocol.BucketKey{Bucket: 1, ID: id}, Now: 1, Increment: 1}
}

func TestCallOnBrokenConnectionGetsErrDisconnected(t *testing.T) {
	conn := &fakeConn{}
	conn.do = func(cmd string, args ...any) (any, error) {
		if cmd == "PING" {
			return "PONG", nil
		}
		return nil, conn.breakWith(io.ErrUnexpectedEOF)
	}
	h := run(t, nil, conn)
	h.connected(t)
	_, err := h.s.do(context.Background(), countHit("a"))
	assert.ErrorIs(t, err, protocol.ErrDisconnected)
	assert.ErrorIs(t, <-h.errc, io.ErrUnexpectedEOF, "Serve ends so that its supervisor restarts it")
	assert.Len(t, conn.commands(), 2, "PING and one EVALSHA: nothing re-sent")
	_, err = h.s.do(context.Background(), countHit("a"))
	assert.ErrorIs(t, err, protocol.ErrClosed, "no connection until Serve runs again")
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestReadTimeoutGivesErrTimeout(t *testing.T) {
	conn := &fakeConn{}
	conn.do = func(cmd string, args ...any) (any, error) {
		if cmd == "PING" {
			return "PONG", nil
		}
		return nil, conn.breakWith(timeoutErr{})
	}
	h := run(t, nil, conn)
	h.connected(t)
	_, err := h.s.do(context.Background(), countHit("a"))
	assert.ErrorIs(t, err, protocol.ErrTimeout)
	assert.NotErrorIs(t, err, protocol.ErrDisconnected)
	assert.Error(t, <-h.errc)
}

func TestRedisErrorReplyKeepsTheConnection(t *testing.T) {
	conn := &fakeConn{}
	conn.do = func(cmd string, args ...any) (any, error) {
		if cmd == "PING" {
			return "PONG", nil
		}
		return nil, redis.Error("WRONGTYPE Operation against a key holding the wrong kind of value")
	}
	h := run(t, nil, conn)
	h.connected(t)
	for range 3 {
		_, err := h.s.do(context.Background(), countHit("a"))
		assert.ErrorIs(t, err, protocol.ErrRedis)
		var rerr redis.Error
		assert.ErrorAs(t, err, &rerr, "the redigo error is wrapped too")
	}
	assert.True(t, h.s.Connected())
}

func TestAbandonedCallIsNeverSent(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	conn := &fakeConn{do: okDo}
	conn.beforeSend = func(_ string, args ...any) {
		if strings.Contains(fmt.Sprint(args...), "first") {
			entered <- struct{}{}
			<-release
		}
	}
	h := run(t, nil, conn)
	h.connected(t)

	first := make(chan error, 1)
	go func() {
		_, err := h.s.do(context.Background(), countHit("first"))
		first <- err
	}()
	<-entered // the server is busy with the first call

	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() {
		_, err := h.s.do(ctx, countHit("second"))
		second <- err
	}()
	h.waitQueued(t, 1)
	cancel()
	assert.ErrorIs(t, <-second, context.Canceled)
	close(release)
	require.NoError(t, <-first)

	_, err := h.s.do(context.Background(), countHit("third"))
	require.NoError(t, err)
	for _, c := range conn.commands() {
		assert.NotContains(t, c, "second", "an abandoned call reached the connection")
	}
	assert.Len(t, conn.commands(), 3, "PING, first and third: %q", conn.commands())
}

// waitQueued waits until n calls sit in the request channel.
func (h *harness) waitQueued(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(h.s.requests) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want %d", len(h.s.requests), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPanicStillAnswersTheTakenCall(t *testing.T) {
	conn := &fakeConn{do: func(cmd string, _ ...any) (any, error) {
		if cmd == "PING" {
			return "PONG", nil
		}
		panic("boom")
	}}
	h := &harness{log: logtest.New()}
	cfg := testConfig(dialConn(conn))
	cfg.Logger = h.log.Logger()
	s, err := New(cfg)
	require.NoError(t, err)
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		s.Serve(context.Background())
	}()
	h.s = s
	h.connected(t)
	_, err = s.do(context.Background(), countHit("a"))
	assert.ErrorIs(t, err, protocol.ErrDisconnected)
	assert.Equal(t, "boom", <-panicked)
	assert.False(t, s.Connected())
	s.Stop()
}

func TestNoScriptFallsBackToEval(t *testing.T) {
	conn := &fakeConn{do: func(cmd string, _ ...any) (any, error) {
		switch cmd {
		case "PING":
			return "PONG", nil
		case "EVALSHA":
			return nil, redis.Error("NOSCRIPT No matching script. Please use EVAL.")
		}
		return int64(7), nil
	}}
	h := run(t, nil, conn)
	h.connected(t)
	r, err := h.s.do(context.Background(), countHit("a"))
	require.NoError(t, err)
	assert.Equal(t, protocol.CountHitReply{Count: 7}, r)
	cmds := conn.commands()
	require.Len(t, cmds, 3)
	assert.True(t, strings.HasPrefix(cmds[1], "EVALSHA") && strings.HasPrefix(cmds[2], "EVAL "), "%q", cmds)
}

func TestBadRepliesAreErrorsNotPanics(t *testing.T) {
	replies := []any{"text", []any{[]byte("1")}, nil, int64(1), []any{[]byte("x"), []byte("1"), []byte("2")}}
	i := 0
	conn := &fakeConn{do: func(cmd string, _ ...any) (any, error) {
		if cmd == "PING" {
			return "PONG", nil
		}
		r := replies[i%len(replies)]
		i++
		return r, nil
	}}
	conns := []*fakeConn{conn}
	for range replies { // each DeleteBuckets dials a connection of its own
		conns = append(conns, &fakeConn{do: conn.do})
	}
	h := run(t, nil, conns...)
	h.connected(t)
	for range replies {
		_, err := h.s.do(context.Background(), protocol.GetBucket{Key: protocol.BucketKey{ID: "a"}})
		assert.ErrorIs(t, err, protocol.ErrBadReply)
	}
	for range replies {
		_, err := h.s.do(context.Background(), protocol.DeleteBuckets{ID: "a"})
		assert.ErrorIs(t, err, protocol.ErrBadReply)
	}
	assert.True(t, h.s.Connected())
}

func TestBackoffBetweenFailedDials(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var attempts []time.Time
		conn := &fakeConn{do: okDo}
		log := logtest.New()
		cfg := testConfig(func(context.Context) (redis.Conn, error) {
			attempts = append(attempts, time.Now())
			if len(attempts) <= 8 {
				return nil, errors.New("connection refused")
			}
			return conn, nil
		})
		cfg.Logger = log.Logger()
		cfg.MinBackoff, cfg.MaxBackoff = 100*time.Millisecond, time.Second
		s, err := New(cfg)
		require.NoError(t, err)
		start := time.Now()
		go s.Serve(context.Background())

		synctest.Wait() // the first dial has failed; the server waits
		_, err = s.do(context.Background(), countHit("a"))
		assert.ErrorIs(t, err, protocol.ErrClosed)
		assert.Equal(t, start, time.Now(), "ErrClosed at once, no waiting")

		for !s.Connected() {
			time.Sleep(10 * time.Millisecond)
		}
		require.Len(t, attempts, 9)
		want := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000, 1000}
		for i, w := range want {
			gap := attempts[i+1].Sub(attempts[i])
			w *= time.Millisecond
			assert.True(t, gap <= w && gap >= w*8/10, "wait before attempt %d = %v, want %v minus up to 20%% jitter", i+2, gap, w)
		}
		assert.Equal(t, 8, log.Count("cannot connect to redis"))
		s.Stop()
	})
}

func TestStopWhileDialingReturnsPromptly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := New(testConfig(func(ctx context.Context) (redis.Conn, error) {
			<-ctx.Done() // a dial that hangs until cancelled
			return nil, ctx.Err()
		}))
		require.NoError(t, err)
		errc := make(chan error, 1)
		go func() { errc <- s.Serve(context.Background()) }()
		synctest.Wait()
		begin := time.Now()
		s.Stop()
		assert.Equal(t, begin, time.Now(), "Stop did not wait for a timeout")
		assert.ErrorIs(t, <-errc, protocol.ErrStopped)
		_, err = s.do(context.Background(), countHit("a"))
		assert.ErrorIs(t, err, protocol.ErrStopped)
		assert.ErrorIs(t, s.Serve(context.Background()), protocol.ErrStopped, "a stopped server never serves again")
	})
}

func TestHealthCheckReplacesADeadIdleConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conn := &fakeConn{}
		pings := 0
		conn.do = func(cmd string, _ ...any) (any, error) {
			if pings++; pings > 3 {
				return nil, conn.breakWith(io.EOF)
			}
			return "PONG", nil
		}
		cfg := testConfig(dialConn(conn))
		cfg.HealthCheckInterval = time.Second
		s, err := New(cfg)
		require.NoError(t, err)
		errc := make(chan error, 1)
		go func() { errc <- s.Serve(context.Background()) }()
		begin := time.Now()
		err = <-errc
		assert.ErrorIs(t, err, io.EOF)
		assert.Equal(t, 3*time.Second, time.Since(begin), "PINGs at 1s, 2s, and the failing one at 3s")
		s.Stop()
	})
}

func TestOnlyOneServeAtATime(t *testing.T) {
	h := run(t, nil, &fakeConn{do: okDo})
	h.connected(t)
	err := h.s.Serve(context.Background())
	assert.ErrorContains(t, err, "already being served")
	assert.True(t, h.s.Connected())
}

func TestConfigValidation(t *testing.T) {
	dial := func(context.Context) (redis.Conn, error) { return nil, nil }
	for _, tt := range []struct {
		name  string
		edit  func(*Config)
		valid bool
	}{
		{"complete", func(*Config) {}, true},
		{"no health checks", func(c *Config) { c.HealthCheckInterval = -1 }, true},
		{"health checks", func(c *Config) { c.HealthCheckInterval = time.Second }, true},
		{"MaxBackoff = MinBackoff", func(c *Config) { c.MaxBackoff = c.MinBackoff }, true},
		{"hash tags", func(c *Config) { c.HashTag = true }, true},
		{"no Dial", func(c *Config) { c.Dial = nil }, false},
		{"no ExpiryMs", func(c *Config) { c.ExpiryMs = 0 }, false},
		{"negative ExpiryMs", func(c *Config) { c.ExpiryMs = -1 }, false},
		{"no KeyPrefix", func(c *Config) { c.KeyPrefix = "" }, false},
		{"'{' in a hash-tag KeyPrefix", func(c *Config) { c.HashTag, c.KeyPrefix = true, "a{" }, false},
		{"no CallTimeout", func(c *Config) { c.CallTimeout = 0 }, false},
		{"negative CallTimeout", func(c *Config) { c.CallTimeout = -1 }, false},
		{"no DeleteBucketsTimeout", func(c *Config) { c.DeleteBucketsTimeout = 0 }, false},
		{"negative DeleteBucketsTimeout", func(c *Config) { c.DeleteBucketsTimeout = -1 }, false},
		{"HealthCheckInterval 0", func(c *Config) { c.HealthCheckInterval = 0 }, false},
		{"no MinBackoff", func(c *Config) { c.MinBackoff = 0 }, false},
		{"negative MinBackoff", func(c *Config) { c.MinBackoff, c.MaxBackoff = -2, -1 }, false},
		{"MaxBackoff < MinBackoff", func(c *Config) { c.MaxBackoff = c.MinBackoff - 1 }, false},
		{"no QueueSize", func(c *Config) { c.QueueSize = 0 }, false},
		{"negative QueueSize", func(c *Config) { c.QueueSize = -1 }, false},
		{"no MaxPipeline", func(c *Config) { c.MaxPipeline = 0 }, false},
		{"negative MaxPipeline", func(c *Config) { c.MaxPipeline = -1 }, false},
		{"no Logger", func(c *Config) { c.Logger = nil }, false},
	} {
		cfg := testConfig(dial)
		tt.edit(&cfg)
		want := cfg
		s, err := New(cfg)
		if !tt.valid {
			assert.ErrorIs(t, err, protocol.ErrInvalid, "New(%s)", tt.name)
			continue
		}
		if assert.NoError(t, err, "New(%s)", tt.name) {
			assert.Equal(t, want.QueueSize, cap(s.requests), "New(%s): no defaults applied", tt.name)
			assert.Equal(t, fmt.Sprintf("%+v", want), fmt.Sprintf("%+v", s.cfg), "New(%s) changed the config", tt.name)
		}
	}
	s, err := New(testConfig(dial))
	require.NoError(t, err)
	_, err = s.do(context.Background(), nil)
	assert.ErrorIs(t, err, protocol.ErrInvalid)
}

func TestWaitConnected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conn := &fakeConn{do: okDo}
		fail := 3
		s, err := New(testConfig(func(context.Context) (redis.Conn, error) {
			if fail--; fail >= 0 {
				return nil, errors.New("refused")
			}
			return conn, nil
		}))
		require.NoError(t, err)

		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		assert.ErrorIs(t, s.WaitConnected(ctx), context.DeadlineExceeded, "not serving yet")

		go s.Serve(context.Background())
		require.NoError(t, s.WaitConnected(context.Background()))
		assert.True(t, s.Connected())
		s.Stop()
		assert.ErrorIs(t, s.WaitConnected(context.Background()), protocol.ErrStopped)
	})
}

func TestLostConnectionErrorIsReadWithoutARace(t *testing.T) {
	// Serve records why its connection was lost for callers to read
	// (closedErr); then its deferred functions may rewrite its result, when
	// its context ends meanwhile (here: while the connection is closed).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn := &fakeConn{onClose: cancel}
	conn.do = func(cmd string, _ ...any) (any, error) {
		if cmd == "PING" {
			return "PONG", nil
		}
		return nil, conn.breakWith(io.ErrUnexpectedEOF)
	}
	s, err := New(testConfig(dialConn(conn)))
	require.NoError(t, err)
	defer s.Stop()
	read := make(chan string)
	go func() { // a caller that reads the error as soon as it is recorded
		for s.lastErr.Load() == nil {
			runtime.Gosched()
		}
		read <- s.closedErr().Error()
	}()
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx) }()
	require.NoError(t, s.WaitConnected(context.Background()))
	_, err = s.do(context.Background(), countHit("a"))
	assert.ErrorIs(t, err, protocol.ErrDisconnected)
	assert.ErrorIs(t, <-errc, protocol.ErrStopped)
	assert.Contains(t, <-read, "unexpected EOF", "the reason the connection was lost")
}
