// Package testenv holds the test harness shared by the root package's tests
// and the fault and chaos tests (faults/): a backend started on a private
// redis-server with a recorded log and a key prefix of the test's own, admin
// commands, polling waits, and the ACL user of the security and chaos tests.
// It uses only the public API of the root package.
package testenv

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/internal/redistest"
)

// WaitLong bounds waits for events that normally take milliseconds.
const WaitLong = 10 * time.Second

// Fixture is a running backend with its log, its key prefix and an admin
// connection to its server.
type Fixture struct {
	B      *hammerredis.Backend
	Log    *logtest.Recorder
	Prefix string
	Srv    *redistest.Server
	Admin  redis.Conn // nil when the server was down at the start
}

// Start starts a backend on srv with opts, a prefix unique to the test, and
// waits until it is connected.
func Start(t *testing.T, srv *redistest.Server, opts hammerredis.Options) *Fixture {
	t.Helper()
	f := StartNoWait(t, srv, opts)
	f.WaitConnected(t)
	return f
}

// StartNoWait is Start without the wait for the connection. The backend is
// stopped when the test ends. Unset, ExpiryMs is a minute, RedisURL srv's
// and KeyPrefix Prefix(t). srv may be nil when opts find the server
// otherwise (Sentinel, Cluster) and set RedisURL; f.Admin is nil then.
func StartNoWait(t *testing.T, srv *redistest.Server, opts hammerredis.Options) *Fixture {
	t.Helper()
	f := &Fixture{Log: logtest.New(), Srv: srv}
	if srv != nil {
		if c, err := srv.Dial(); err == nil { // not while the server is down
			t.Cleanup(func() { c.Close() })
			f.Admin = c
		}
	}
	if opts.ExpiryMs == 0 {
		opts.ExpiryMs = 60_000
	}
	// Always the test's server: the library's default is the system Redis
	// on 127.0.0.1:6379, which tests must never touch.
	if opts.RedisURL == "" {
		require.NotNil(t, srv, "StartNoWait without a server needs a RedisURL")
		opts.RedisURL = srv.URL()
	}
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = Prefix(t)
	}
	f.Prefix = opts.KeyPrefix
	opts.Logger = f.Log.Logger()
	b, err := hammerredis.Start(opts)
	require.NoError(t, err)
	t.Cleanup(func() { hammerredis.Stop(b) })
	f.B = b
	return f
}

// WaitConnected waits until f's backend is connected, or fails the test.
func (f *Fixture) WaitConnected(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitLong)
	defer cancel()
	require.NoError(t, f.B.WaitConnected(ctx), "log:\n%s", f.Log)
}

// Key returns the Redis key of id's bucket.
func (f *Fixture) Key(id string, bucket int64) string {
	return f.Prefix + id + ":" + fmt.Sprint(bucket)
}

var prefixes atomic.Int64

// Prefix returns a key prefix unique to this run of the test, so that tests
// sharing a server never see each other's keys, even with -count.
func Prefix(t *testing.T) string {
	return fmt.Sprintf("T:%s:%d:", t.Name(), prefixes.Add(1))
}

// Do runs a command on c and fails the test on an error.
func Do(t *testing.T, c redis.Conn, cmd string, args ...any) any {
	t.Helper()
	r, err := c.Do(cmd, args...)
	require.NoError(t, err, "%s %v", cmd, args)
	return r
}

// SrvDo runs a command on srv, past any proxy, on a connection of its own.
func SrvDo(t *testing.T, srv *redistest.Server, cmd string, args ...any) any {
	t.Helper()
	c, err := srv.Dial()
	require.NoError(t, err)
	defer c.Close()
	return Do(t, c, cmd, args...)
}

// Populate writes n keys outside any backend's prefix, in scripts of 100k.
func Populate(t *testing.T, admin redis.Conn, n int) {
	t.Helper()
	const chunk = 100_000
	for from := 0; from < n; from += chunk {
		Do(t, admin, "EVAL", `for i = ARGV[1], ARGV[2] do redis.call('SET', 'unrelated:' .. i, 1) end`, 0,
			from, min(from+chunk, n)-1)
	}
}

// WaitUntil polls ok until it holds, for state that offers no event; it
// fails the test after WaitLong.
func WaitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	WaitWithin(t, WaitLong, what, ok)
}

// WaitWithin is WaitUntil, failing the test after within.
func WaitWithin(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			require.FailNow(t, "waited "+within.String()+" until "+what)
		}
		time.Sleep(time.Millisecond)
	}
}

// WaitConnects waits until b has made at least n connections
// (Stats().Connects), or fails the test after WaitLong.
func WaitConnects(t *testing.T, b *hammerredis.Backend, n uint64) {
	t.Helper()
	WaitUntil(t, fmt.Sprintf("%d connections made", n), func() bool { return b.Stats().Connects >= n })
}

// WaitDialFailures waits until at least n of b's connection attempts have
// failed (Stats().DialFailures), or fails the test after WaitLong.
func WaitDialFailures(t *testing.T, b *hammerredis.Backend, n uint64) {
	t.Helper()
	WaitUntil(t, fmt.Sprintf("%d failed connection attempts", n), func() bool { return b.Stats().DialFailures >= n })
}

// WaitRestarts waits until b has lost at least n connections
// (Stats().Restarts), or fails the test after WaitLong.
func WaitRestarts(t *testing.T, b *hammerredis.Backend, n uint64) {
	t.Helper()
	WaitUntil(t, fmt.Sprintf("%d connections lost", n), func() bool { return b.Stats().Restarts >= n })
}

// Unique returns a number never returned before in this test binary, for
// names (client names, prefixes) that must differ between tests and runs.
func Unique() int64 { return prefixes.Add(1) }
