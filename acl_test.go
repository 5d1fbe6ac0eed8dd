package hammerredis_test

// ACL users and TLS. Each test runs its own redis-server, with the default
// key prefix, since ACL key patterns are written for it; the user and its
// rules are internal/testenv's.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/internal/testenv"
	"github.com/hammer-go/hammerredis/protocol"
)

// secWaitDialFailure waits until the backend logged a failed connection
// attempt, so that its calls fail with that attempt's reason.
func secWaitDialFailure(t *testing.T, f *fixture) {
	t.Helper()
	testenv.WaitDialFailures(t, f.B, 1)
}

// secCount counts a hit at the current time.
func secCount(b *hammerredis.Backend, key hammerredis.BucketKey) (int64, error) {
	return b.CountHit(context.Background(), key, time.Now().UnixMilli())
}

// secScanAll returns every key of the server's database 0, sorted, read
// with SCAN on the admin connection.
func secScanAll(t *testing.T, admin redis.Conn) []string {
	t.Helper()
	var keys []string
	cursor := "0"
	for {
		reply, err := redis.Values(admin.Do("SCAN", cursor, "COUNT", 1000))
		require.NoError(t, err)
		require.Len(t, reply, 2)
		cursor, err = redis.String(reply[0], nil)
		require.NoError(t, err)
		batch, err := redis.Strings(reply[1], nil)
		require.NoError(t, err)
		keys = append(keys, batch...)
		if cursor == "0" {
			break
		}
	}
	sort.Strings(keys)
	return keys
}

func secCachedScripts(t *testing.T, admin redis.Conn) int {
	t.Helper()
	info, err := redis.String(admin.Do("INFO", "memory"))
	require.NoError(t, err)
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "number_of_cached_scripts:"); ok {
			n, err := strconv.Atoi(v)
			require.NoError(t, err)
			return n
		}
	}
	require.FailNow(t, "no number_of_cached_scripts in INFO memory", info)
	return 0
}

// secExercise runs every operation of the backend as an ACL user would:
// single hits, an increment, hits after a SCRIPT FLUSH (EVALSHA gets
// NOSCRIPT, EVAL runs), many concurrent hits on one bucket (coalesced), a
// read and a delete, and checks the data through the admin connection.
func secExercise(t *testing.T, f *fixture) {
	t.Helper()
	ctx := context.Background()
	key := hammerredis.BucketKey{Bucket: 7, ID: "user:42"}
	n, err := f.B.CountHit(ctx, key, 1000)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	n, err = f.B.CountHitN(ctx, key, 1001, 4)
	require.NoError(t, err)
	assert.Equal(t, int64(5), n)

	testenv.Do(t, f.Admin, "SCRIPT", "FLUSH") // EVALSHA now gets NOSCRIPT
	n, err = f.B.CountHit(ctx, key, 1002)
	require.NoError(t, err, "the EVAL fallback after NOSCRIPT")
	assert.Equal(t, int64(6), n)

	info, err := f.B.GetBucket(ctx, key)
	require.NoError(t, err)
	require.NotNil(t, info)
	assert.Equal(t, int64(6), info.Count)
	assert.Equal(t, int64(1000), info.Created)
	assert.Equal(t, int64(1002), info.Updated)
	assert.Equal(t, int64(61), testenv.Do(t, f.Admin, "TTL", f.Key("user:42", 7)))

	// Concurrent hits on one bucket are coalesced into one script run,
	// whose script this user may not have loaded: each caller must still
	// get its own count.
	testenv.Do(t, f.Admin, "SCRIPT", "FLUSH")
	hot := hammerredis.BucketKey{Bucket: 8, ID: "user:42"}
	const callers, hits = 16, 8
	counts := make(chan int64, callers*hits)
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range hits {
				n, err := f.B.CountHit(ctx, hot, 2000)
				if !assert.NoError(t, err, "concurrent CountHit") {
					return
				}
				counts <- n
			}
		}()
	}
	wg.Wait()
	close(counts)
	var got []int64
	for n := range counts {
		got = append(got, n)
	}
	slices.Sort(got)
	want := make([]int64, callers*hits)
	for i := range want {
		want[i] = int64(i + 1)
	}
	assert.Equal(t, want, got, "every concurrent caller got a distinct count")

	missing, err := f.B.GetBucket(ctx, hammerredis.BucketKey{Bucket: 9, ID: "user:42"})
	require.NoError(t, err)
	assert.Nil(t, missing)

	deleted, err := f.B.DeleteBuckets(ctx, "user:42")
	require.NoError(t, err)
	assert.Equal(t, int64(2), deleted)
	assert.Empty(t, secScanAll(t, f.Admin))

	st := f.B.Stats()
	assert.Zero(t, st.Errors.Total(), "errors: %+v", st.Errors)
	assert.Zero(t, st.Restarts)
	assert.Equal(t, st.Connects, uint64(f.Log.Count(connectedMsg)), "one connection per server all along:\n%s", f.Log)
}

func TestACLMinimalUserWorksEndToEnd(t *testing.T) {
	srv := testenv.ACLServer(t)
	admin := srv.Conn(t)
	for _, tt := range []struct {
		name string
		opts hammerredis.Options
	}{
		{"user and password in the URL", hammerredis.Options{
			RedisURL: testenv.UserURL("redis", testenv.ACLUser, testenv.ACLPassword, srv.Addr())}},
		{"user and password in RedixConfig", hammerredis.Options{
			RedixConfig: &hammerredis.RedisConfig{Username: testenv.ACLUser, Password: testenv.ACLPassword}}},
		{"user and password in RedisConfig", hammerredis.Options{
			RedisConfig: &hammerredis.RedisConfig{Username: testenv.ACLUser, Password: testenv.ACLPassword}}},
		{"pipelining and coalescing off", hammerredis.Options{
			RedisURL: testenv.UserURL("redis", testenv.ACLUser, testenv.ACLPassword, srv.Addr()), MaxPipeline: 1, DisableCoalescing: true}},
		{"pool of 3", hammerredis.Options{
			RedisURL: testenv.UserURL("redis", testenv.ACLUser, testenv.ACLPassword, srv.Addr()), PoolSize: 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			testenv.Do(t, admin, "FLUSHALL")
			testenv.Do(t, admin, "SCRIPT", "FLUSH")
			opts := tt.opts
			opts.KeyPrefix = testenv.ACLPrefix
			f := start(t, srv, opts)
			testenv.WaitConnects(t, f.B, uint64(max(1, opts.PoolSize)))
			assert.Zero(t, secCachedScripts(t, admin), "SCRIPT LOAD is denied, and the backend connected anyway")
			secExercise(t, f)
			assert.Equal(t, uint64(max(1, opts.PoolSize)), f.B.Stats().Connects)
			secNoSecret(t, testenv.ACLPassword, f.Log.String(), fmt.Sprint(opts), f.B.String())
		})
	}
}

func TestACLOptionalRights(t *testing.T) {
	srv := testenv.ACLServer(t)
	admin := srv.Conn(t)
	// The rights that only some options need.
	testenv.SetUser(t, admin, "full", testenv.ACLRules("~"+testenv.ACLPrefix+"*",
		append(slices.Clone(testenv.MinimalCommands), "+script|load", "+client|setname", "+select")...))
	testenv.Do(t, admin, "SCRIPT", "FLUSH")
	f := start(t, srv, hammerredis.Options{KeyPrefix: testenv.ACLPrefix, RedisURL: testenv.UserURL("redis", "full", testenv.ACLPassword, srv.Addr()),
		RedixConfig: &hammerredis.RedisConfig{ClientName: "acl-full", Database: 2}})
	assert.Equal(t, 10, secCachedScripts(t, admin), "with +script|load Hammer 6's three scripts, Hammer 7's five and the two check scripts are loaded at connection start")
	assert.NotEmpty(t, clientLine(t, admin, "acl-full"), "CLIENT SETNAME ran")
	n, err := secCount(f.B, hammerredis.BucketKey{Bucket: 1, ID: "db2"})
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	testenv.Do(t, admin, "SELECT", 2)
	assert.Equal(t, int64(1), testenv.Do(t, admin, "EXISTS", testenv.ACLPrefix+"db2:1"), "the hit went to database 2")
	testenv.Do(t, admin, "SELECT", 0)
}

func TestACLMissingRightsGiveClearErrors(t *testing.T) {
	srv := testenv.ACLServer(t)
	admin := srv.Conn(t)
	ctx := context.Background()
	key := hammerredis.BucketKey{Bucket: 1, ID: "x"}
	countHit := func(b *hammerredis.Backend) error { _, err := b.CountHit(ctx, key, 1); return err }
	getBucket := func(b *hammerredis.Backend) error { _, err := b.GetBucket(ctx, key); return err }
	deleteBuckets := func(b *hammerredis.Backend) error { _, err := b.DeleteBuckets(ctx, "x"); return err }

	for _, tt := range []struct {
		drop string // the right left out of the minimal set
		// or, instead, options that need a right beyond it
		cfg  *hammerredis.RedisConfig
		call func(*hammerredis.Backend) error
		// wantClosed: the connection never comes up (ErrClosed); else the
		// call fails with ErrRedis and the connection stays.
		wantClosed bool
		want       string
	}{
		{drop: "+ping", call: countHit, wantClosed: true, want: "NOPERM this user has no permissions to run the 'ping' command"},
		{drop: "+evalsha", call: countHit, want: "NOPERM this user has no permissions to run the 'evalsha' command"},
		{drop: "+eval", call: countHit, want: "NOPERM this user has no permissions to run the 'eval' command"},
		{drop: "+hincrby", call: countHit, want: "can't run this command"},
		{drop: "+hsetnx", call: countHit, want: "can't run this command"},
		{drop: "+hset", call: countHit, want: "can't run this command"},
		{drop: "+expire", call: countHit, want: "can't run this command"},
		{drop: "+hmget", call: getBucket, want: "NOPERM this user has no permissions to run the 'hmget' command"},
		{drop: "+scan", call: deleteBuckets, want: "NOPERM this user has no permissions to run the 'scan' command"},
		{drop: "+del", call: deleteBuckets, want: "NOPERM this user has no permissions to run the 'del' command"},
		{cfg: &hammerredis.RedisConfig{ClientName: "needs-setname"}, call: countHit, wantClosed: true,
			want: "NOPERM this user has no permissions to run the 'client|setname' command"},
		{cfg: &hammerredis.RedisConfig{Database: 1}, call: countHit, wantClosed: true,
			want: "NOPERM this user has no permissions to run the 'select' command"},
	} {
		name := "without " + tt.drop
		if tt.cfg != nil {
			name = fmt.Sprintf("options %v", *tt.cfg)
		}
		t.Run(name, func(t *testing.T) {
			user := "u" + strings.NewReplacer("+", "", "|", "-").Replace(tt.drop)
			var cmds []string
			for _, c := range testenv.MinimalCommands {
				if c != tt.drop {
					cmds = append(cmds, c)
				}
			}
			testenv.SetUser(t, admin, user, testenv.ACLRules("~"+testenv.ACLPrefix+"*", cmds...))
			testenv.Do(t, admin, "FLUSHALL")
			testenv.Do(t, admin, "SCRIPT", "FLUSH") // no script cached: EVALSHA gets NOSCRIPT, then EVAL
			testenv.Do(t, admin, "HSET", testenv.ACLPrefix+"x:1", "count", 1, "created", 1, "updated", 1)
			opts := hammerredis.Options{KeyPrefix: testenv.ACLPrefix, RedisURL: testenv.UserURL("redis", user, testenv.ACLPassword, srv.Addr()),
				RedixConfig: tt.cfg}
			f := startNoWait(t, srv, opts)
			if tt.wantClosed {
				secWaitDialFailure(t, f)
			} else {
				ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitLong)
				defer cancel()
				require.NoError(t, f.B.WaitConnected(ctx))
				testenv.WaitConnects(t, f.B, 1)
			}
			err := tt.call(f.B)
			require.Error(t, err)
			t.Logf("error: %v", err)
			assert.ErrorContains(t, err, tt.want)
			if tt.wantClosed {
				assert.ErrorIs(t, err, hammerredis.ErrClosed)
				assert.Contains(t, f.Log.String(), tt.want, "the log says why it cannot connect")
			} else {
				assert.ErrorIs(t, err, hammerredis.ErrRedis)
				assert.NotErrorIs(t, err, hammerredis.ErrDisconnected)
				// The backend stays up: the same call fails the same way,
				// on the same connection.
				err = tt.call(f.B)
				assert.ErrorIs(t, err, hammerredis.ErrRedis)
				assert.True(t, f.B.Connected())
				assert.Zero(t, f.B.Stats().Restarts)
				assert.Equal(t, uint64(1), f.B.Stats().Connects, "one connection all along:\n%s", f.Log)
			}
			secNoSecret(t, testenv.ACLPassword, err.Error(), f.Log.String())
			require.NoError(t, hammerredis.Stop(f.B))
			secNoSecret(t, testenv.ACLPassword, f.Log.String())
		})
	}
}

func TestACLKeyPatternExcludingThePrefix(t *testing.T) {
	srv := testenv.ACLServer(t)
	admin := srv.Conn(t)
	ctx := context.Background()
	testenv.SetUser(t, admin, "elsewhere", testenv.ACLRules("~Other:*", testenv.MinimalCommands...))
	// A victim's bucket, written by someone allowed to.
	testenv.Do(t, admin, "HSET", testenv.ACLPrefix+"victim:1", "count", 5, "created", 1, "updated", 2)
	before := secScanAll(t, admin)

	f := start(t, srv, hammerredis.Options{KeyPrefix: testenv.ACLPrefix,
		RedisURL: testenv.UserURL("redis", "elsewhere", testenv.ACLPassword, srv.Addr())})
	testenv.WaitConnects(t, f.B, 1)
	const noKey = "NOPERM this user has no permissions to access one of the keys used as arguments"
	_, err := f.B.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "victim"}, 3)
	assert.ErrorIs(t, err, hammerredis.ErrRedis)
	assert.ErrorContains(t, err, noKey)
	t.Logf("count_hit: %v", err)
	_, err = f.B.GetBucket(ctx, hammerredis.BucketKey{Bucket: 1, ID: "victim"})
	assert.ErrorIs(t, err, hammerredis.ErrRedis)
	assert.ErrorContains(t, err, noKey)
	// SCAN is not a key command, so the victim's key is found; DEL is.
	n, err := f.B.DeleteBuckets(ctx, "victim")
	assert.ErrorIs(t, err, hammerredis.ErrRedis)
	assert.ErrorContains(t, err, noKey)
	assert.Zero(t, n)
	assert.Equal(t, before, secScanAll(t, admin), "nothing was written or deleted")
	assert.True(t, f.B.Connected())
	assert.Equal(t, uint64(1), f.B.Stats().Connects)

	// The same user, with the prefix its key pattern allows, works.
	g := start(t, srv, hammerredis.Options{KeyPrefix: "Other:",
		RedisURL: testenv.UserURL("redis", "elsewhere", testenv.ACLPassword, srv.Addr())})
	n, err = g.B.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "victim"}, 3)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	secNoSecret(t, testenv.ACLPassword, f.Log.String(), g.Log.String())
}

func TestACLAuthenticationFailures(t *testing.T) {
	srv := testenv.ACLServer(t)
	admin := srv.Conn(t)
	testenv.SetUser(t, admin, "disabled", append([]string{"off"}, testenv.MinimalRules()[1:]...))
	wrong := "wrong-" + testenv.ACLPassword
	for _, tt := range []struct {
		name string
		opts hammerredis.Options
	}{
		{"wrong password in the URL", hammerredis.Options{RedisURL: testenv.UserURL("redis", testenv.ACLUser, wrong, srv.Addr())}},
		{"wrong password in the config", hammerredis.Options{
			RedixConfig: &hammerredis.RedisConfig{Username: testenv.ACLUser, Password: wrong}}},
		{"unknown user", hammerredis.Options{RedisURL: testenv.UserURL("redis", "nobody", testenv.ACLPassword, srv.Addr())}},
		{"disabled user", hammerredis.Options{RedisURL: testenv.UserURL("redis", "disabled", testenv.ACLPassword, srv.Addr())}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.KeyPrefix = testenv.ACLPrefix
			f := startNoWait(t, srv, opts)
			testenv.WaitDialFailures(t, f.B, 2) // and it keeps trying
			_, err := secCount(f.B, hammerredis.BucketKey{Bucket: 1, ID: "x"})
			require.ErrorIs(t, err, hammerredis.ErrClosed)
			assert.ErrorContains(t, err, "WRONGPASS")
			t.Logf("error: %v", err)
			assert.Contains(t, f.Log.String(), "WRONGPASS")
			require.NoError(t, hammerredis.Stop(f.B))
			secNoSecret(t, testenv.ACLPassword, err.Error(), f.Log.String(), fmt.Sprintf("%+v", opts), f.B.String())
		})
	}
}

// secTLSServer starts a TLS server, with the ACL user of secUserArgs, whose
// certificates come from pki.
func secTLSServer(t *testing.T, pki *redistest.PKI, authClients string) *redistest.TLSServer {
	t.Helper()
	return redistest.NewTLS(t, redistest.TLSOptions{PKI: pki, AuthClients: authClients, Args: testenv.ACLUserArgs()})
}

func TestTLSEndToEnd(t *testing.T) {
	pki := redistest.NewTestPKI(t)
	optional := secTLSServer(t, pki, redistest.ClientCertOptional)
	required := secTLSServer(t, pki, redistest.ClientCertRequired)
	admin := map[*redistest.TLSServer]redis.Conn{optional: optional.Conn(t), required: required.Conn(t)}
	for _, tt := range []struct {
		name string
		srv  *redistest.TLSServer
		url  string
		tls  *tls.Config
	}{
		{"rediss URL with the CA", optional, optional.TLSURL(), pki.ClientTLS(false)},
		{"ACL user over TLS", optional, testenv.UserURL("rediss", testenv.ACLUser, testenv.ACLPassword, optional.TLSAddr()), pki.ClientTLS(false)},
		{"host name localhost", optional, "rediss://localhost:" + strconv.Itoa(optional.TLSPort), pki.ClientTLS(false)},
		{"TLS config with a redis URL", optional, "redis://" + optional.TLSAddr(), pki.ClientTLS(false)},
		{"client certificate, optional", optional, testenv.UserURL("rediss", testenv.ACLUser, testenv.ACLPassword, optional.TLSAddr()), pki.ClientTLS(true)},
		{"client certificate, required", required, testenv.UserURL("rediss", testenv.ACLUser, testenv.ACLPassword, required.TLSAddr()), pki.ClientTLS(true)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := admin[tt.srv]
			testenv.Do(t, a, "FLUSHALL")
			name := "tls-" + strconv.Itoa(int(testenv.Unique()))
			opts := hammerredis.Options{KeyPrefix: testenv.ACLPrefix, RedisURL: tt.url, HealthCheckInterval: 20 * time.Millisecond,
				RedixConfig: &hammerredis.RedisConfig{TLS: tt.tls, ClientName: name}}
			if strings.Contains(tt.url, "@") {
				// The minimal user may not run CLIENT SETNAME.
				testenv.SetUser(t, a, testenv.ACLUser, testenv.ACLRules("~"+testenv.ACLPrefix+"*", append(slices.Clone(testenv.MinimalCommands), "+client|setname")...))
			}
			f := start(t, tt.srv.Server, opts)
			line := clientLine(t, a, name)
			assert.Contains(t, line, " laddr="+tt.srv.TLSAddr()+" ", "connected to the TLS port")
			n, err := secCount(f.B, hammerredis.BucketKey{Bucket: 1, ID: "tls"})
			require.NoError(t, err)
			assert.Equal(t, int64(1), n)
			info, err := f.B.GetBucket(context.Background(), hammerredis.BucketKey{Bucket: 1, ID: "tls"})
			require.NoError(t, err)
			require.NotNil(t, info)
			assert.Equal(t, int64(1), info.Count)
			deleted, err := f.B.DeleteBuckets(context.Background(), "tls")
			require.NoError(t, err)
			assert.Equal(t, int64(1), deleted)
			killClient(t, a, name)
			testenv.WaitConnects(t, f.B, 2) // redials over TLS
			n, err = secCount(f.B, hammerredis.BucketKey{Bucket: 1, ID: "tls"})
			require.NoError(t, err)
			assert.Equal(t, int64(1), n)
			require.NoError(t, hammerredis.Stop(f.B))
			secNoSecret(t, testenv.ACLPassword, f.Log.String(), fmt.Sprintf("%+v", opts), f.B.String())
		})
	}
}

func TestTLSFailuresAreClearErrors(t *testing.T) {
	pki := redistest.NewTestPKI(t)
	other := redistest.NewTestPKI(t) // another CA: its certificates are strangers
	optional := secTLSServer(t, pki, redistest.ClientCertOptional)
	required := secTLSServer(t, pki, redistest.ClientCertRequired)
	withServerName := pki.ClientTLS(false)
	withServerName.ServerName = "redis.example"
	strangerCert := pki.ClientTLS(false) // trusts the server, shows a stranger's certificate
	strangerCert.Certificates = []tls.Certificate{other.ClientCert}
	tls12 := func(c *tls.Config) *tls.Config { c = c.Clone(); c.MaxVersion = tls.VersionTLS12; return c }
	for _, tt := range []struct {
		name string
		srv  *redistest.TLSServer
		addr string // default: srv's TLS address
		tls  *tls.Config
		want []string // any of these
	}{
		// With TLS 1.3 the client's handshake ends before the server checks
		// the client's certificate: the server's alert comes after, and the
		// reset of the closed connection can overtake it (the kernel then
		// drops the alert), so the first command may only see the reset.
		{name: "no client certificate, required", srv: required, tls: pki.ClientTLS(false),
			want: []string{"remote error: tls: certificate required", "connection reset by peer", "broken pipe", "EOF"}},
		{name: "client certificate of another CA, required", srv: required, tls: strangerCert,
			want: []string{"remote error: tls: unknown certificate authority", "connection reset by peer", "broken pipe", "EOF"}},
		{name: "client certificate of another CA, optional", srv: optional, tls: strangerCert,
			want: []string{"remote error: tls: unknown certificate authority", "connection reset by peer", "broken pipe", "EOF"}},
		// With TLS 1.2 the server decides within the handshake: the alert
		// always arrives.
		{name: "no client certificate, required, TLS 1.2", srv: required, tls: tls12(pki.ClientTLS(false)),
			want: []string{"remote error: tls: handshake failure"}},
		{name: "client certificate of another CA, required, TLS 1.2", srv: required, tls: tls12(strangerCert),
			want: []string{"remote error: tls: unknown certificate authority"}},
		{name: "client certificate of another CA, optional, TLS 1.2", srv: optional, tls: tls12(strangerCert),
			want: []string{"remote error: tls: unknown certificate authority"}},
		{name: "system roots only", srv: optional, tls: nil,
			want: []string{"x509: certificate signed by unknown authority"}},
		{name: "another CA", srv: optional, tls: other.ClientTLS(false),
			want: []string{"x509: certificate signed by unknown authority"}},
		{name: "wrong server name", srv: optional, tls: withServerName,
			want: []string{"x509: certificate is valid for localhost, not redis.example"}},
		{name: "TLS to the plain port", srv: optional, addr: optional.Addr(), tls: pki.ClientTLS(false),
			want: []string{"TLS handshake timeout"}}, // the plain port waits for a command's end
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.addr
			if addr == "" {
				addr = tt.srv.TLSAddr()
			}
			opts := hammerredis.Options{KeyPrefix: testenv.ACLPrefix, RedisURL: testenv.UserURL("rediss", testenv.ACLUser, testenv.ACLPassword, addr),
				RedixConfig: &hammerredis.RedisConfig{TLS: tt.tls, ConnectTimeout: 500 * time.Millisecond, ReadTimeout: 2 * time.Second}}
			f := startNoWait(t, tt.srv.Server, opts)
			secWaitDialFailure(t, f)
			_, err := secCount(f.B, hammerredis.BucketKey{Bucket: 1, ID: "x"})
			require.Error(t, err)
			t.Logf("error: %v", err)
			assert.ErrorIs(t, err, hammerredis.ErrClosed)
			found := false
			for _, w := range tt.want {
				found = found || strings.Contains(err.Error(), w)
			}
			assert.True(t, found, "error %q, want one of %q", err, tt.want)
			require.NoError(t, hammerredis.Stop(f.B))
			secNoSecret(t, testenv.ACLPassword, err.Error(), f.Log.String())
		})
	}
}

// TestTLSPlainClientOnTheTLSPort: a client that forgot TLS gets an error
// (the server drops it), never a working plaintext connection.
func TestTLSPlainClientOnTheTLSPort(t *testing.T) {
	pki := redistest.NewTestPKI(t)
	srv := secTLSServer(t, pki, redistest.ClientCertOptional)
	opts := hammerredis.Options{KeyPrefix: testenv.ACLPrefix, RedisURL: testenv.UserURL("redis", testenv.ACLUser, testenv.ACLPassword, srv.TLSAddr()),
		RedixConfig: &hammerredis.RedisConfig{ConnectTimeout: time.Second, ReadTimeout: time.Second}}
	f := startNoWait(t, srv.Server, opts)
	secWaitDialFailure(t, f)
	_, err := secCount(f.B, hammerredis.BucketKey{Bucket: 1, ID: "x"})
	require.ErrorIs(t, err, hammerredis.ErrClosed)
	t.Logf("error: %v", err)
	require.NoError(t, hammerredis.Stop(f.B))
	secNoSecret(t, testenv.ACLPassword, err.Error(), f.Log.String())
}

// TestTLSDialErrorsKeepTheirCause: ErrClosed wraps why the connection could
// not be made, so that callers can tell a certificate problem from others.
func TestTLSDialErrorsKeepTheirCause(t *testing.T) {
	pki := redistest.NewTestPKI(t)
	srv := secTLSServer(t, pki, redistest.ClientCertOptional)
	f := startNoWait(t, srv.Server, hammerredis.Options{KeyPrefix: testenv.ACLPrefix, RedisURL: srv.TLSURL()})
	secWaitDialFailure(t, f)
	_, err := secCount(f.B, hammerredis.BucketKey{Bucket: 1, ID: "x"})
	require.ErrorIs(t, err, hammerredis.ErrClosed)
	var unknown x509.UnknownAuthorityError
	assert.ErrorAs(t, err, &unknown, "errors.As(%q, &x509.UnknownAuthorityError{})", err)
	var verify *tls.CertificateVerificationError
	assert.ErrorAs(t, err, &verify, "errors.As(%q, *tls.CertificateVerificationError)", err)
}

// hammer7Commands are what Hammer 7's scripts and calls run, besides the
// scripts themselves (EVALSHA, EVAL): docs/security.md lists them.
var hammer7Commands = []string{
	"+time", "+incrby", "+pexpireat", "+set", "+type", "+get", "+zadd", "+zremrangebyscore",
	"+zcard", "+zcount", "+zrange", "+del", "+expire", "+hmget", "+hset",
}

func TestACLHammer7WithoutInfo(t *testing.T) {
	srv := testenv.ACLServer(t)
	admin := srv.Conn(t)
	ctx := context.Background()
	now := time.Now().UnixMilli()
	policies := []protocol.Policy{
		{Algorithm: protocol.FixWindow, Prefix: "H7", ScaleMs: 60_000, Limit: 5},
		{Algorithm: protocol.SlidingWindow, Prefix: "H7", ScaleMs: 60_000, Limit: 5},
		{Algorithm: protocol.LeakyBucket, Prefix: "H7:l", Limit: 5, Rate: 1}, // the buckets' keys
		{Algorithm: protocol.TokenBucket, Prefix: "H7:t", Limit: 5, Rate: 1}, // have no suffix
	}
	hitAll := func(b *hammerredis.Backend) []error {
		var errs []error
		for _, p := range policies {
			r, err := b.Hit(ctx, protocol.Hit{Policy: p, ID: "u", Cost: 1, Now: now})
			if err == nil && !r.Allowed {
				err = fmt.Errorf("%s denied", p.Algorithm)
			}
			errs = append(errs, err)
		}
		return errs
	}

	// The Hammer 6 user: Hammer 7's keys and commands are not its own.
	f := start(t, srv, hammerredis.Options{KeyPrefix: testenv.ACLPrefix,
		RedisURL: testenv.UserURL("redis", testenv.ACLUser, testenv.ACLPassword, srv.Addr())})
	for i, err := range hitAll(f.B) {
		assert.ErrorIs(t, err, hammerredis.ErrRedis, policies[i].Algorithm)
		assert.ErrorContains(t, err, "NOPERM")
	}
	assert.Zero(t, f.B.Stats().Restarts, "a refusal leaves the connection up")

	// A user with Hammer 7's commands and keys, but no INFO: the version is
	// unknown, and the calls run.
	testenv.SetUser(t, admin, "h7", testenv.ACLRules("~H7:*", append([]string{"+ping", "+evalsha", "+eval"}, hammer7Commands...)...))
	g := start(t, srv, hammerredis.Options{RedisURL: testenv.UserURL("redis", "h7", testenv.ACLPassword, srv.Addr())})
	for i, err := range hitAll(g.B) {
		assert.NoError(t, err, policies[i].Algorithm)
	}
	for _, p := range policies {
		n, err := g.B.Get(ctx, protocol.Get{Policy: p, ID: "u", Now: now})
		require.NoError(t, err, p.Algorithm)
		if p.Algorithm.IsWindow() { // a bucket's level moves with Redis TIME
			assert.EqualValues(t, 1, n, "%s: one hit counted", p.Algorithm)
		}
	}
}

// TestACLHammer7RunWhoseWriteIsRefused: a multi-key run writes a bucket's
// hash once, after its last hit; when Redis refuses that write, every hit
// of the run that changed the hash gets the error, and nothing is counted.
func TestACLHammer7RunWhoseWriteIsRefused(t *testing.T) {
	srv := redistest.New(t)
	admin := srv.Conn(t)
	// Hammer 6's rights on its keys; on Hammer 7's, a selector that may
	// read a hash but not write it.
	testenv.SetUser(t, admin, "nohset", append(testenv.ACLRules("~"+testenv.ACLPrefix+"*",
		append(slices.Clone(testenv.MinimalCommands), "+client|setname", "+time", "+script|load")...),
		"(~H7:* +evalsha +eval +hmget)"))
	f := start(t, srv, hammerredis.Options{KeyPrefix: testenv.ACLPrefix,
		RedisURL:    testenv.UserURL("redis", "nohset", testenv.ACLPassword, srv.Addr()),
		RedixConfig: &hammerredis.RedisConfig{ClientName: "nohset"}})
	ctx := context.Background()
	tb := protocol.Policy{Algorithm: protocol.TokenBucket, Prefix: "H7", Limit: 10, Rate: 1}

	written, release := holdPipeline(t, f, "nohset")
	before := cmdCalls(t, admin, "evalsha")
	errs := make([]chan error, 3)
	for i := range errs {
		errs[i] = make(chan error, 1)
		go func() {
			_, err := f.B.Hit(ctx, protocol.Hit{Policy: tb, ID: "k", Cost: 2})
			errs[i] <- err
		}()
		for deadline := time.Now().Add(testenv.WaitLong); f.B.Stats().QueueDepth < 1+i+1; time.Sleep(time.Millisecond) {
			require.True(t, time.Now().Before(deadline), "hit %d never queued", i)
		}
	}
	release()
	for i, ch := range errs {
		err := <-ch
		assert.ErrorIs(t, err, hammerredis.ErrRedis, "hit %d", i)
		assert.ErrorContains(t, err, "can't access", "hit %d", i)
	}
	assert.Equal(t, 1+written+2, cmdCalls(t, admin, "evalsha")-before,
		"the held hit and the probes written, then the last probe and one run for the three")
	assert.EqualValues(t, 0, testenv.Do(t, admin, "EXISTS", "H7:k"), "nothing written")
	assert.Zero(t, f.B.Stats().Restarts, "a refusal leaves the connection up")
}
