package hammerredis_test

// The harness of the root package's tests: one private redis-server for
// the test binary (tests that kill, freeze or reconfigure a server start
// their own), and backends started on it through internal/testenv.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/internal/testenv"
	"github.com/hammer-go/hammerredis/internal/testmain"
)

func named(name string) *hammerredis.RedisConfig { return &hammerredis.RedisConfig{ClientName: name} }

func hit(t *testing.T, b *hammerredis.Backend, id string) int64 {
	t.Helper()
	n, err := b.CountHit(context.Background(), hammerredis.BucketKey{Bucket: 1, ID: id}, 1)
	require.NoError(t, err)
	return n
}

// cmdCalls returns how many times srv has run cmd, from INFO commandstats.
func cmdCalls(t *testing.T, admin redis.Conn, cmd string) int {
	t.Helper()
	info, err := redis.String(admin.Do("INFO", "commandstats"))
	require.NoError(t, err)
	var calls int
	for _, line := range strings.Split(info, "\n") {
		if n, _ := fmt.Sscanf(line, "cmdstat_"+cmd+":calls=%d", &calls); n == 1 {
			return calls
		}
	}
	return 0
}

// shared is the private redis-server of this test binary; tests that kill,
// freeze or reconfigure a server start their own.
var shared *redistest.Server

// redisURL points the examples at the shared server.
var redisURL string

func TestMain(m *testing.M) {
	os.Exit(testmain.Main(m, func(s *redistest.Server) { shared, redisURL = s, s.URL() }))
}

const connectedMsg = "connected to redis"

// fixture is a backend started by start: see testenv.Fixture.
type fixture = testenv.Fixture

// start starts a backend on srv (the shared server when nil) with opts, a
// prefix unique to the test, and waits until it is connected.
func start(t *testing.T, srv *redistest.Server, opts hammerredis.Options) *fixture {
	t.Helper()
	return testenv.Start(t, orShared(srv), opts)
}

// startNoWait is start without the wait for the connection.
func startNoWait(t *testing.T, srv *redistest.Server, opts hammerredis.Options) *fixture {
	t.Helper()
	return testenv.StartNoWait(t, orShared(srv), opts)
}

// orShared returns srv, or the shared server when srv is nil.
func orShared(srv *redistest.Server) *redistest.Server {
	if srv == nil {
		return shared
	}
	return srv
}
