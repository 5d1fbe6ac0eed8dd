package hammerredis_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/internal/rules7"
	"github.com/hammer-go/hammerredis/internal/testenv"
	"github.com/hammer-go/hammerredis/memory"
)

// TestDegradedModeLimitsInProcessWhileRedisIsAway walks a Checker with a
// memory fallback through a Redis that dies and comes back: the requests
// are decided in process at the configured share while Redis is away, the
// results and the log say so, and the checker hands back to Redis by
// itself once a trial succeeds.
func TestDegradedModeLimitsInProcessWhileRedisIsAway(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a redis-server: make test runs it")
	}
	srv := redistest.New(t)
	f := testenv.Start(t, srv, hammerredis.Options{})
	mem, err := memory.New(memory.Options{ExpiryMs: 60_000})
	require.NoError(t, err)
	t.Cleanup(func() { mem.Close() })
	log := logtest.New()
	clock := rules7.NewClock(time.Now())
	c, err := hammer.NewChecker(f.B, hammer.Config{
		Limits:   []hammer.Limit{{Name: "per-hour", Scale: time.Hour, Max: 10}},
		Fallback: mem, FallbackShare: 0.3, ProbeEvery: time.Minute, Logger: log.Logger(),
	})
	require.NoError(t, err)
	c = c.WithClock(clock.Now)
	ctx := context.Background()
	check := func() hammer.Decision {
		t.Helper()
		d, err := c.Check(ctx, "user:1")
		require.NoError(t, err)
		return d
	}

	d := check()
	assert.False(t, d.Degraded)
	assert.Equal(t, int64(10), d.Limits[0].Quota)
	bucket := clock.Now().UnixMilli() / time.Hour.Milliseconds()
	key := f.Key("per-hour:user:1", bucket)
	assert.Equal(t, "1", hgetCount(t, f.Admin, key), "counted in Redis")

	srv.Kill()
	// The first check after the kill fails on Redis and is decided in
	// process: 3 requests (30% of 10) per hour there.
	for i := 1; i <= 3; i++ {
		d = check()
		require.True(t, d.Degraded, "check %d", i)
		assert.True(t, d.Allowed, "check %d", i)
		assert.Equal(t, int64(3), d.Limits[0].Quota)
		assert.Equal(t, int64(i), d.Limits[0].Count)
	}
	d = check()
	assert.True(t, d.Degraded)
	assert.False(t, d.Allowed, "the fallback's share is used up")
	assert.True(t, c.Degraded())
	assert.Equal(t, 1, log.Count("limiting in process"), "log:\n%s", log)

	require.NoError(t, srv.Restart())
	f.WaitConnected(t)
	// Before ProbeEvery has passed, the checker does not try Redis again.
	d = check()
	assert.True(t, d.Degraded, "no trial before ProbeEvery")
	clock.Add(time.Minute)
	d = check()
	assert.False(t, d.Degraded, "the trial after ProbeEvery hands back to Redis")
	assert.False(t, c.Degraded())
	assert.Equal(t, 1, log.Count("degraded mode ends"), "log:\n%s", log)
	// The restarted Redis lost its data (no persistence): its count starts
	// again from the trial.
	bucket = clock.Now().UnixMilli() / time.Hour.Milliseconds()
	assert.Equal(t, "1", hgetCount(t, srv.Conn(t), f.Key("per-hour:user:1", bucket)))
}

// TestDegradedModeTakesOverFromAHungRedis: a Redis that accepts the call
// and never answers (CLIENT PAUSE WRITE) is left after FallbackAfter, well within
// the caller's deadline, and the fallback decides.
func TestDegradedModeTakesOverFromAHungRedis(t *testing.T) {
	srv := redistest.New(t)
	f := testenv.Start(t, srv, hammerredis.Options{})
	mem, err := memory.New(memory.Options{ExpiryMs: 60_000})
	require.NoError(t, err)
	t.Cleanup(func() { mem.Close() })
	c, err := hammer.NewChecker(f.B, hammer.Config{
		Limits:   []hammer.Limit{{Name: "per-hour", Scale: time.Hour, Max: 10}},
		Fallback: mem, FallbackShare: 1, FallbackAfter: 20 * time.Millisecond, Logger: logtest.New().Logger(),
	})
	require.NoError(t, err)
	testenv.Do(t, f.Admin, "CLIENT", "PAUSE", 60_000, "WRITE") // the check script included
	t.Cleanup(func() { f.Admin.Do("CLIENT", "UNPAUSE") })
	// The caller's deadline is far beyond FallbackAfter, and comes before
	// the backend's own CallTimeout (5s).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	d, err := c.Check(ctx, "user:1")
	require.NoError(t, err, "the fallback decides before the caller's deadline")
	assert.True(t, d.Degraded)
	assert.True(t, d.Allowed)
}
