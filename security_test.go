package hammerredis_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/thejerf/suture/v4"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/internal/redistest"
)

// Security: ACL users, TLS, passwords kept out of every output, and
// DeleteBuckets confined to its id. Each test runs its own redis-server,
// with the default key prefix, since ACL key patterns are written for it.

// The ACL user of these tests.
const (
	secUser     = "limiter"
	secPassword = "s3cret-Zq9xKk7y" // distinctive, so a leak cannot hide in ordinary text
	secPrefix   = "Hammer:Redis:"   // the default KeyPrefix
)

// secMinimalCommands is the least a backend needs (database 0, no
// ClientName): PING at connection start and as the health check, the
// count_hit script (EVALSHA, EVAL after NOSCRIPT) and the commands it runs,
// which Redis 7 checks against the user too, HMGET for get_bucket and
// SCAN + DEL for delete_buckets. SCRIPT LOAD is optional: without it the
// first EVALSHA gets NOSCRIPT and EVAL runs instead.
var secMinimalCommands = []string{
	"+ping", "+evalsha", "+eval", "+hincrby", "+hsetnx", "+hset", "+expire", "+hmget", "+scan", "+del",
}

// secRules returns ACL rules for a user with password secPassword, keys
// matching keys, no pub/sub channels and only commands.
func secRules(keys string, commands ...string) []string {
	return append([]string{"on", ">" + secPassword, keys, "resetchannels", "-@all"}, commands...)
}

// secMinimalRules is the minimal ACL for the default key prefix.
func secMinimalRules() []string { return secRules("~"+secPrefix+"*", secMinimalCommands...) }

// secUserArgs returns redis-server arguments that keep the default user as
// the admin (no password, everything) and define the user secUser with
// secMinimalRules.
func secUserArgs() []string {
	args := []string{"--user", "default", "on", "nopass", "~*", "&*", "+@all", "--user", secUser}
	return append(args, secMinimalRules()...)
}

// secACLServer starts a private server with secUserArgs.
func secACLServer(t *testing.T) *redistest.Server {
	t.Helper()
	return redistest.New(t, redistest.Options{Args: secUserArgs()})
}

// secSetUser creates or replaces the ACL user name with rules.
func secSetUser(t *testing.T, admin redis.Conn, name string, rules []string) {
	t.Helper()
	args := []any{"SETUSER", name, "reset"}
	for _, r := range rules {
		args = append(args, r)
	}
	do(t, admin, "ACL", args...)
}

// secUserURL returns scheme://user:password@addr.
func secUserURL(scheme, user, password, addr string) string {
	return scheme + "://" + user + ":" + password + "@" + addr
}

// secWaitDialFailure waits until the backend logged a failed connection
// attempt, so that its calls fail with that attempt's reason.
func secWaitDialFailure(t *testing.T, f *fixture) {
	t.Helper()
	f.log.WaitCount(t, "cannot connect to redis", 1, waitLong)
}

// secNoSecret fails the test when any of seen contains the password.
func secNoSecret(t *testing.T, secret string, seen ...string) {
	t.Helper()
	for _, s := range seen {
		if strings.Contains(s, secret) {
			t.Errorf("the password %q appears in:\n%s", secret, s)
		}
	}
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
	t.Fatalf("no number_of_cached_scripts in INFO memory:\n%s", info)
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
	n, err := f.b.CountHit(ctx, key, 1000)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	n, err = f.b.CountHitN(ctx, key, 1001, 4)
	require.NoError(t, err)
	assert.Equal(t, int64(5), n)

	do(t, f.admin, "SCRIPT", "FLUSH") // EVALSHA now gets NOSCRIPT
	n, err = f.b.CountHit(ctx, key, 1002)
	require.NoError(t, err, "the EVAL fallback after NOSCRIPT")
	assert.Equal(t, int64(6), n)

	info, err := f.b.GetBucket(ctx, key)
	require.NoError(t, err)
	require.NotNil(t, info)
	assert.Equal(t, int64(6), info.Count)
	assert.Equal(t, int64(1000), info.Created)
	assert.Equal(t, int64(1002), info.Updated)
	assert.Equal(t, int64(61), do(t, f.admin, "TTL", f.key("user:42", 7)))

	// Concurrent hits on one bucket are coalesced into one script run,
	// whose script this user may not have loaded: each caller must still
	// get its own count.
	do(t, f.admin, "SCRIPT", "FLUSH")
	hot := hammerredis.BucketKey{Bucket: 8, ID: "user:42"}
	const callers, hits = 16, 8
	counts := make(chan int64, callers*hits)
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range hits {
				n, err := f.b.CountHit(ctx, hot, 2000)
				if err != nil {
					t.Errorf("concurrent CountHit: %v", err)
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

	missing, err := f.b.GetBucket(ctx, hammerredis.BucketKey{Bucket: 9, ID: "user:42"})
	require.NoError(t, err)
	assert.Nil(t, missing)

	deleted, err := f.b.DeleteBuckets(ctx, "user:42")
	require.NoError(t, err)
	assert.Equal(t, int64(2), deleted)
	assert.Empty(t, secScanAll(t, f.admin))

	st := f.b.Stats()
	assert.Zero(t, st.Errors.Total(), "errors: %+v", st.Errors)
	assert.Zero(t, st.Restarts)
	assert.Equal(t, st.Connects, uint64(f.log.Count(connectedMsg)), "one connection per server all along:\n%s", f.log)
}

func TestACLMinimalUserWorksEndToEnd(t *testing.T) {
	srv := secACLServer(t)
	admin := srv.Conn(t)
	for _, tt := range []struct {
		name string
		opts hammerredis.Options
	}{
		{"user and password in the URL", hammerredis.Options{
			RedisURL: secUserURL("redis", secUser, secPassword, srv.Addr())}},
		{"user and password in RedixConfig", hammerredis.Options{
			RedixConfig: &hammerredis.RedisConfig{Username: secUser, Password: secPassword}}},
		{"user and password in RedisConfig", hammerredis.Options{
			RedisConfig: &hammerredis.RedisConfig{Username: secUser, Password: secPassword}}},
		{"pipelining and coalescing off", hammerredis.Options{
			RedisURL: secUserURL("redis", secUser, secPassword, srv.Addr()), MaxPipeline: 1, DisableCoalescing: true}},
		{"pool of 3", hammerredis.Options{
			RedisURL: secUserURL("redis", secUser, secPassword, srv.Addr()), PoolSize: 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			do(t, admin, "FLUSHALL")
			do(t, admin, "SCRIPT", "FLUSH")
			opts := tt.opts
			opts.KeyPrefix = secPrefix
			f := start(t, srv, opts)
			f.log.WaitCount(t, connectedMsg, max(1, opts.PoolSize), waitLong) // logged just after connecting
			assert.Zero(t, secCachedScripts(t, admin), "SCRIPT LOAD is denied, and the backend connected anyway")
			secExercise(t, f)
			assert.Equal(t, max(1, opts.PoolSize), f.log.Count(connectedMsg))
			secNoSecret(t, secPassword, f.log.String(), fmt.Sprint(opts), f.b.String())
		})
	}
}

func TestACLOptionalRights(t *testing.T) {
	srv := secACLServer(t)
	admin := srv.Conn(t)
	// The rights that only some options need.
	secSetUser(t, admin, "full", secRules("~"+secPrefix+"*",
		append(slices.Clone(secMinimalCommands), "+script|load", "+client|setname", "+select")...))
	do(t, admin, "SCRIPT", "FLUSH")
	f := start(t, srv, hammerredis.Options{KeyPrefix: secPrefix, RedisURL: secUserURL("redis", "full", secPassword, srv.Addr()),
		RedixConfig: &hammerredis.RedisConfig{ClientName: "acl-full", Database: 2}})
	assert.Equal(t, 2, secCachedScripts(t, admin), "with +script|load both scripts are loaded at connection start")
	assert.NotEmpty(t, clientLine(t, admin, "acl-full"), "CLIENT SETNAME ran")
	n, err := secCount(f.b, hammerredis.BucketKey{Bucket: 1, ID: "db2"})
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	do(t, admin, "SELECT", 2)
	assert.Equal(t, int64(1), do(t, admin, "EXISTS", secPrefix+"db2:1"), "the hit went to database 2")
	do(t, admin, "SELECT", 0)
}

func TestACLMissingRightsGiveClearErrors(t *testing.T) {
	srv := secACLServer(t)
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
			for _, c := range secMinimalCommands {
				if c != tt.drop {
					cmds = append(cmds, c)
				}
			}
			secSetUser(t, admin, user, secRules("~"+secPrefix+"*", cmds...))
			do(t, admin, "FLUSHALL")
			do(t, admin, "SCRIPT", "FLUSH") // no script cached: EVALSHA gets NOSCRIPT, then EVAL
			do(t, admin, "HSET", secPrefix+"x:1", "count", 1, "created", 1, "updated", 1)
			opts := hammerredis.Options{KeyPrefix: secPrefix, RedisURL: secUserURL("redis", user, secPassword, srv.Addr()),
				RedixConfig: tt.cfg}
			f := startNoWait(t, srv, opts)
			if tt.wantClosed {
				secWaitDialFailure(t, f)
			} else {
				ctx, cancel := context.WithTimeout(context.Background(), waitLong)
				defer cancel()
				require.NoError(t, f.b.WaitConnected(ctx))
				f.log.WaitCount(t, connectedMsg, 1, waitLong) // logged just after connecting
			}
			err := tt.call(f.b)
			require.Error(t, err)
			t.Logf("error: %v", err)
			assert.ErrorContains(t, err, tt.want)
			if tt.wantClosed {
				assert.ErrorIs(t, err, hammerredis.ErrClosed)
				assert.Contains(t, f.log.String(), tt.want, "the log says why it cannot connect")
			} else {
				assert.ErrorIs(t, err, hammerredis.ErrRedis)
				assert.NotErrorIs(t, err, hammerredis.ErrDisconnected)
				// The backend stays up: the same call fails the same way,
				// on the same connection.
				err = tt.call(f.b)
				assert.ErrorIs(t, err, hammerredis.ErrRedis)
				assert.True(t, f.b.Connected())
				assert.Zero(t, f.b.Stats().Restarts)
				assert.Equal(t, 1, f.log.Count(connectedMsg), "one connection all along:\n%s", f.log)
			}
			secNoSecret(t, secPassword, err.Error(), f.log.String())
			require.NoError(t, hammerredis.Stop(f.b))
			secNoSecret(t, secPassword, f.log.String())
		})
	}
}

func TestACLKeyPatternExcludingThePrefix(t *testing.T) {
	srv := secACLServer(t)
	admin := srv.Conn(t)
	ctx := context.Background()
	secSetUser(t, admin, "elsewhere", secRules("~Other:*", secMinimalCommands...))
	// A victim's bucket, written by someone allowed to.
	do(t, admin, "HSET", secPrefix+"victim:1", "count", 5, "created", 1, "updated", 2)
	before := secScanAll(t, admin)

	f := start(t, srv, hammerredis.Options{KeyPrefix: secPrefix,
		RedisURL: secUserURL("redis", "elsewhere", secPassword, srv.Addr())})
	f.log.WaitCount(t, connectedMsg, 1, waitLong) // logged just after connecting
	const noKey = "NOPERM this user has no permissions to access one of the keys used as arguments"
	_, err := f.b.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "victim"}, 3)
	assert.ErrorIs(t, err, hammerredis.ErrRedis)
	assert.ErrorContains(t, err, noKey)
	t.Logf("count_hit: %v", err)
	_, err = f.b.GetBucket(ctx, hammerredis.BucketKey{Bucket: 1, ID: "victim"})
	assert.ErrorIs(t, err, hammerredis.ErrRedis)
	assert.ErrorContains(t, err, noKey)
	// SCAN is not a key command, so the victim's key is found; DEL is.
	n, err := f.b.DeleteBuckets(ctx, "victim")
	assert.ErrorIs(t, err, hammerredis.ErrRedis)
	assert.ErrorContains(t, err, noKey)
	assert.Zero(t, n)
	assert.Equal(t, before, secScanAll(t, admin), "nothing was written or deleted")
	assert.True(t, f.b.Connected())
	assert.Equal(t, 1, f.log.Count(connectedMsg))

	// The same user, with the prefix its key pattern allows, works.
	g := start(t, srv, hammerredis.Options{KeyPrefix: "Other:",
		RedisURL: secUserURL("redis", "elsewhere", secPassword, srv.Addr())})
	n, err = g.b.CountHit(ctx, hammerredis.BucketKey{Bucket: 1, ID: "victim"}, 3)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	secNoSecret(t, secPassword, f.log.String(), g.log.String())
}

func TestACLAuthenticationFailures(t *testing.T) {
	srv := secACLServer(t)
	admin := srv.Conn(t)
	secSetUser(t, admin, "disabled", append([]string{"off"}, secMinimalRules()[1:]...))
	wrong := "wrong-" + secPassword
	for _, tt := range []struct {
		name string
		opts hammerredis.Options
	}{
		{"wrong password in the URL", hammerredis.Options{RedisURL: secUserURL("redis", secUser, wrong, srv.Addr())}},
		{"wrong password in the config", hammerredis.Options{
			RedixConfig: &hammerredis.RedisConfig{Username: secUser, Password: wrong}}},
		{"unknown user", hammerredis.Options{RedisURL: secUserURL("redis", "nobody", secPassword, srv.Addr())}},
		{"disabled user", hammerredis.Options{RedisURL: secUserURL("redis", "disabled", secPassword, srv.Addr())}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.KeyPrefix = secPrefix
			f := startNoWait(t, srv, opts)
			f.log.WaitCount(t, "cannot connect to redis", 2, waitLong) // and it keeps trying
			_, err := secCount(f.b, hammerredis.BucketKey{Bucket: 1, ID: "x"})
			require.ErrorIs(t, err, hammerredis.ErrClosed)
			assert.ErrorContains(t, err, "WRONGPASS")
			t.Logf("error: %v", err)
			assert.Contains(t, f.log.String(), "WRONGPASS")
			require.NoError(t, hammerredis.Stop(f.b))
			secNoSecret(t, secPassword, err.Error(), f.log.String(), fmt.Sprintf("%+v", opts), f.b.String())
		})
	}
}

// TLS

// secTLSServer starts a TLS server, with the ACL user of secUserArgs, whose
// certificates come from pki.
func secTLSServer(t *testing.T, pki *redistest.PKI, authClients string) *redistest.TLSServer {
	t.Helper()
	return redistest.NewTLS(t, redistest.TLSOptions{PKI: pki, AuthClients: authClients, Args: secUserArgs()})
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
		{"ACL user over TLS", optional, secUserURL("rediss", secUser, secPassword, optional.TLSAddr()), pki.ClientTLS(false)},
		{"host name localhost", optional, "rediss://localhost:" + strconv.Itoa(optional.TLSPort), pki.ClientTLS(false)},
		{"TLS config with a redis URL", optional, "redis://" + optional.TLSAddr(), pki.ClientTLS(false)},
		{"client certificate, optional", optional, secUserURL("rediss", secUser, secPassword, optional.TLSAddr()), pki.ClientTLS(true)},
		{"client certificate, required", required, secUserURL("rediss", secUser, secPassword, required.TLSAddr()), pki.ClientTLS(true)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := admin[tt.srv]
			do(t, a, "FLUSHALL")
			name := "tls-" + strconv.Itoa(int(prefixes.Add(1)))
			opts := hammerredis.Options{KeyPrefix: secPrefix, RedisURL: tt.url, HealthCheckInterval: 20 * time.Millisecond,
				RedixConfig: &hammerredis.RedisConfig{TLS: tt.tls, ClientName: name}}
			if strings.Contains(tt.url, "@") {
				// The minimal user may not run CLIENT SETNAME.
				secSetUser(t, a, secUser, secRules("~"+secPrefix+"*", append(slices.Clone(secMinimalCommands), "+client|setname")...))
			}
			f := start(t, tt.srv.Server, opts)
			line := clientLine(t, a, name)
			assert.Contains(t, line, " laddr="+tt.srv.TLSAddr()+" ", "connected to the TLS port")
			n, err := secCount(f.b, hammerredis.BucketKey{Bucket: 1, ID: "tls"})
			require.NoError(t, err)
			assert.Equal(t, int64(1), n)
			info, err := f.b.GetBucket(context.Background(), hammerredis.BucketKey{Bucket: 1, ID: "tls"})
			require.NoError(t, err)
			require.NotNil(t, info)
			assert.Equal(t, int64(1), info.Count)
			deleted, err := f.b.DeleteBuckets(context.Background(), "tls")
			require.NoError(t, err)
			assert.Equal(t, int64(1), deleted)
			killClient(t, a, name)
			f.log.WaitCount(t, connectedMsg, 2, waitLong) // redials over TLS
			n, err = secCount(f.b, hammerredis.BucketKey{Bucket: 1, ID: "tls"})
			require.NoError(t, err)
			assert.Equal(t, int64(1), n)
			require.NoError(t, hammerredis.Stop(f.b))
			secNoSecret(t, secPassword, f.log.String(), fmt.Sprintf("%+v", opts), f.b.String())
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
			opts := hammerredis.Options{KeyPrefix: secPrefix, RedisURL: secUserURL("rediss", secUser, secPassword, addr),
				RedixConfig: &hammerredis.RedisConfig{TLS: tt.tls, ConnectTimeout: 500 * time.Millisecond, ReadTimeout: 2 * time.Second}}
			f := startNoWait(t, tt.srv.Server, opts)
			secWaitDialFailure(t, f)
			_, err := secCount(f.b, hammerredis.BucketKey{Bucket: 1, ID: "x"})
			require.Error(t, err)
			t.Logf("error: %v", err)
			assert.ErrorIs(t, err, hammerredis.ErrClosed)
			found := false
			for _, w := range tt.want {
				found = found || strings.Contains(err.Error(), w)
			}
			assert.True(t, found, "error %q, want one of %q", err, tt.want)
			require.NoError(t, hammerredis.Stop(f.b))
			secNoSecret(t, secPassword, err.Error(), f.log.String())
		})
	}
}

// TestTLSPlainClientOnTheTLSPort: a client that forgot TLS gets an error
// (the server drops it), never a working plaintext connection.
func TestTLSPlainClientOnTheTLSPort(t *testing.T) {
	pki := redistest.NewTestPKI(t)
	srv := secTLSServer(t, pki, redistest.ClientCertOptional)
	opts := hammerredis.Options{KeyPrefix: secPrefix, RedisURL: secUserURL("redis", secUser, secPassword, srv.TLSAddr()),
		RedixConfig: &hammerredis.RedisConfig{ConnectTimeout: time.Second, ReadTimeout: time.Second}}
	f := startNoWait(t, srv.Server, opts)
	secWaitDialFailure(t, f)
	_, err := secCount(f.b, hammerredis.BucketKey{Bucket: 1, ID: "x"})
	require.ErrorIs(t, err, hammerredis.ErrClosed)
	t.Logf("error: %v", err)
	require.NoError(t, hammerredis.Stop(f.b))
	secNoSecret(t, secPassword, err.Error(), f.log.String())
}

// TestTLSDialErrorsKeepTheirCause: ErrClosed wraps why the connection could
// not be made, so that callers can tell a certificate problem from others.
func TestTLSDialErrorsKeepTheirCause(t *testing.T) {
	pki := redistest.NewTestPKI(t)
	srv := secTLSServer(t, pki, redistest.ClientCertOptional)
	f := startNoWait(t, srv.Server, hammerredis.Options{KeyPrefix: secPrefix, RedisURL: srv.TLSURL()})
	secWaitDialFailure(t, f)
	_, err := secCount(f.b, hammerredis.BucketKey{Bucket: 1, ID: "x"})
	require.ErrorIs(t, err, hammerredis.ErrClosed)
	var unknown x509.UnknownAuthorityError
	assert.ErrorAs(t, err, &unknown, "errors.As(%q, &x509.UnknownAuthorityError{})", err)
	var verify *tls.CertificateVerificationError
	assert.ErrorAs(t, err, &verify, "errors.As(%q, *tls.CertificateVerificationError)", err)
}

// Passwords

// secCollector gathers every text a test produced.
type secCollector struct {
	mu   sync.Mutex
	seen []string
}

func (c *secCollector) add(s ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = append(c.seen, s...)
}

func (c *secCollector) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.seen)
}

// addFormats adds v printed with every common verb.
func (c *secCollector) addFormats(v any) {
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		c.add(fmt.Sprintf(verb, v))
	}
	c.add(fmt.Sprint(v), fmt.Sprintln(v), fmt.Sprint([]any{v}), fmt.Sprintf("%v", map[string]any{"v": v}))
}

// addSlog adds v logged as an attribute through slog's text and JSON
// handlers.
func (c *secCollector) addSlog(v any) {
	var text, js strings.Builder
	slog.New(slog.NewTextHandler(&text, nil)).Info("config", "value", v)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("config", "value", v, slog.Group("g", "value", v))
	c.add(text.String(), js.String())
}

// addPanic adds what recover returns after panic(v), printed.
func (c *secCollector) addPanic(v any) {
	defer func() {
		r := recover()
		c.add(fmt.Sprint(r), fmt.Sprintf("%v %+v %#v", r, r, r))
	}()
	panic(v)
}

// panicOnceHandler panics on the first record whose message holds msg, then
// passes every record to h.
type panicOnceHandler struct {
	slog.Handler
	msg    string
	panics *atomic.Bool
}

func (h panicOnceHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.msg) && h.panics.CompareAndSwap(false, true) {
		panic("panicOnceHandler: boom in the backend's goroutine")
	}
	return h.Handler.Handle(ctx, r)
}

func (h panicOnceHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return panicOnceHandler{h.Handler.WithAttrs(a), h.msg, h.panics}
}

func (h panicOnceHandler) WithGroup(g string) slog.Handler {
	return panicOnceHandler{h.Handler.WithGroup(g), h.msg, h.panics}
}

func TestPasswordsNeverAppearInAnyOutput(t *testing.T) {
	srv := secACLServer(t)
	admin := srv.Conn(t)
	secSetUser(t, admin, secUser, secRules("~*", "+@all"))
	wrong := "wrong-" + secPassword // contains secPassword: one check covers both
	url := func(user, pw string) string { return secUserURL("redis", user, pw, srv.Addr()) }
	var c secCollector
	for _, tt := range []struct {
		name string
		opts hammerredis.Options
		ok   bool // whether the password is right
	}{
		{"URL only", hammerredis.Options{RedisURL: url(secUser, secPassword)}, true},
		{"URL only, TLS", hammerredis.Options{RedisURL: secUserURL("rediss", secUser, secPassword, "127.0.0.1:1")}, false},
		{"RedixConfig only", hammerredis.Options{RedixConfig: &hammerredis.RedisConfig{Username: secUser, Password: secPassword}}, true},
		{"RedisConfig only", hammerredis.Options{RedisConfig: &hammerredis.RedisConfig{Username: secUser, Password: secPassword}}, true},
		{"both configs and the URL", hammerredis.Options{RedisURL: url(secUser, wrong),
			RedixConfig: &hammerredis.RedisConfig{Username: secUser, Password: secPassword},
			RedisConfig: &hammerredis.RedisConfig{Username: secUser, Password: wrong}}, true},
		{"wrong password in the URL", hammerredis.Options{RedisURL: url(secUser, wrong)}, false},
		{"wrong password in RedixConfig", hammerredis.Options{RedixConfig: &hammerredis.RedisConfig{Username: secUser, Password: wrong}}, false},
		{"lone password, wrong", hammerredis.Options{RedisURL: "redis://:" + wrong + "@" + srv.Addr(),
			RedixConfig: &hammerredis.RedisConfig{Username: secUser}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.KeyPrefix = secPrefix
			name := "pw-" + strconv.Itoa(int(prefixes.Add(1)))
			opts.HealthCheckInterval = 20 * time.Millisecond // a killed connection is soon replaced
			cfg := hammerredis.RedisConfig{ClientName: name, ReadTimeout: time.Second, ConnectTimeout: time.Second}
			if opts.RedixConfig != nil {
				cfg.Username, cfg.Password = opts.RedixConfig.Username, opts.RedixConfig.Password
			}
			opts.RedixConfig = &cfg
			if opts.RedisURL == "" {
				opts.RedisURL = srv.URL()
			}
			// The options, every way a program might print or log them.
			for _, v := range []any{opts, &opts, opts.RedixConfig, *opts.RedixConfig} {
				c.addFormats(v)
				c.addSlog(v)
				c.addPanic(v)
			}
			if opts.RedisConfig != nil {
				c.addFormats(*opts.RedisConfig)
			}
			c.addPanic(fmt.Errorf("bad config %v", opts))

			f := startNoWait(t, srv, opts)
			c.addFormats(f.b)
			if tt.ok {
				ctx, cancel := context.WithTimeout(context.Background(), waitLong)
				defer cancel()
				require.NoError(t, f.b.WaitConnected(ctx))
				_, err := secCount(f.b, hammerredis.BucketKey{Bucket: 1, ID: "pw"})
				require.NoError(t, err)
				killClient(t, admin, name) // "connection lost", "service ended", redial
				f.log.WaitCount(t, connectedMsg, 2, waitLong)
				f.log.WaitCount(t, "service ended", 1, waitLong) // the supervisor's event
			} else {
				f.log.WaitCount(t, "cannot connect to redis", 2, waitLong)
				_, err := secCount(f.b, hammerredis.BucketKey{Bucket: 1, ID: "pw"})
				require.ErrorIs(t, err, hammerredis.ErrClosed)
				c.add(err.Error(), fmt.Sprintf("%+v %#v", err, err))
			}
			for _, call := range []func() error{
				func() error {
					_, err := f.b.GetBucket(context.Background(), hammerredis.BucketKey{ID: "pw"})
					return err
				},
				func() error { _, err := f.b.DeleteBuckets(context.Background(), "pw"); return err },
			} {
				if err := call(); err != nil {
					c.add(err.Error(), fmt.Sprintf("%+v %#v", err, err))
				}
			}
			c.addFormats(f.b.Stats())
			require.NoError(t, hammerredis.Stop(f.b))
			_, err := secCount(f.b, hammerredis.BucketKey{Bucket: 1, ID: "pw"})
			c.add(err.Error())
			c.add(f.log.String())
		})
	}
	secNoSecret(t, secPassword, c.all()...)
}

func TestPasswordsNeverAppearInSupervisorEventsOrPanics(t *testing.T) {
	srv := secACLServer(t)
	admin := srv.Conn(t)
	secSetUser(t, admin, secUser, secRules("~*", "+@all"))
	var c secCollector

	// A parent tree whose events are all recorded.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sup := suture.New("app", suture.Spec{EventHook: func(e suture.Event) {
		c.add(e.String(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e))
	}})
	errc := sup.ServeBackground(ctx)

	// A logger that panics in the backend's goroutine the first time it
	// logs a connection: the supervisor logs the panic and its stack, and
	// restarts the server.
	rec := logtest.New()
	var panicked atomic.Bool
	logger := slog.New(panicOnceHandler{rec, connectedMsg, &panicked})
	b, err := hammerredis.StartLink(sup, hammerredis.Options{ExpiryMs: 1000, KeyPrefix: secPrefix, Logger: logger,
		HealthCheckInterval: 20 * time.Millisecond,
		RedisURL:            secUserURL("redis", secUser, secPassword, srv.Addr()), RedixConfig: named("sup-pw")})
	require.NoError(t, err)
	rec.WaitCount(t, "service panicked", 1, waitLong)
	rec.WaitCount(t, connectedMsg, 1, waitLong) // restarted after the panic
	assert.True(t, panicked.Load())
	assert.Contains(t, rec.String(), "stack=", "the panic's stack was logged")
	n, err := secCount(b, hammerredis.BucketKey{Bucket: 1, ID: "sup"})
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)

	killClient(t, admin, "sup-pw")
	rec.WaitCount(t, connectedMsg, 2, waitLong)
	require.NoError(t, hammerredis.Stop(b)) // the parent sees the backend end
	cancel()
	<-errc
	c.add(rec.String())
	secNoSecret(t, secPassword, c.all()...)
}

// secPanicEnv makes TestPasswordNotInACrash's child process crash.
const secPanicEnv = "HAMMERREDIS_TEST_PANIC_WITH_OPTIONS"

// TestPasswordNotInACrash runs this test binary again to panic, unrecovered,
// with options holding a password, and checks what the crash printed.
func TestPasswordNotInACrash(t *testing.T) {
	if os.Getenv(secPanicEnv) != "" {
		panic(hammerredis.Options{ExpiryMs: 1, RedisURL: "redis://" + secUser + ":" + secPassword + "@h:1",
			RedixConfig: &hammerredis.RedisConfig{Password: secPassword}})
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPasswordNotInACrash$", "-test.count=1", "-test.shuffle=off")
	// The child's TestMain starts a redis-server; a crash leaves its
	// directory behind, so keep it in the test's own.
	cmd.Env = append(os.Environ(), secPanicEnv+"=1", "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the child must crash:\n%s", out)
	assert.Contains(t, string(out), "panic: {ExpiryMs:1 ", "the child panicked with the options:\n%s", out)
	assert.Contains(t, string(out), "Password:[redacted]")
	secNoSecret(t, secPassword, string(out))
}

// TestMalformedRedisURLNeverShowsThePassword: the RedisURL is redacted in
// Start's errors and in Options.String even when it cannot be parsed, for
// example because the password holds a '/', '?' or '#' that was not
// percent-encoded, or the scheme lacks its slashes.
func TestMalformedRedisURLNeverShowsThePassword(t *testing.T) {
	// Pieces of passwords: none may be shown.
	const a, b, c = "Zq9xA", "Kk7yB", "Vb3wC"
	for _, tt := range []struct {
		url    string
		pieces []string
	}{
		{"redis://user:" + a + "/" + b + "@h:1", []string{a, b}},
		{"redis://:" + a + "/" + b + "@h:1/0", []string{a, b}},
		{"redis://user:" + a + "?" + b + "@h:1", []string{a, b}},
		{"redis://user:" + a + "#" + b + "@h:1", []string{a, b}},
		{"redis://user:" + a + "@" + b + "#" + c + "@h:1", []string{a, b, c}},
		{"redis//user:" + a + "@h:1", []string{a}},
		{"redis:/user:" + a + "@h:1", []string{a}},
		{"redis:user:" + a + "@h:1", []string{a}},
		{"redis:" + a + "@h:1", []string{a}},
		{"user:" + a + "@h:1", []string{a}},
		{" redis://user:" + a + "@h:1", []string{a}},
		{"redis://user:" + a + "@h:99999", []string{a}},
		{"redis://user:" + a + "%zz@h:1", []string{a}},
		{"redis://user:" + a + "@[::1", []string{a}},
		{"redis://user:" + a + "@h:1/x", []string{a}},
		{"redis://user:" + a + "@h:1/0?password=x", []string{a}},
		{"http://user:" + a + "@h:1", []string{a}},
		{"rediss://user:" + a + " " + b + "@h:1", []string{a, b}},
	} {
		t.Run(tt.url, func(t *testing.T) {
			opts := hammerredis.Options{ExpiryMs: 1, RedisURL: tt.url}
			_, err := hammerredis.New(opts)
			require.Error(t, err)
			assert.ErrorIs(t, err, hammerredis.ErrInvalid)
			_, serr := hammerredis.Start(opts)
			assert.Equal(t, err, serr, "Start fails as New does")
			for _, s := range []string{err.Error(), fmt.Sprint(opts)} {
				for _, p := range tt.pieces {
					if strings.Contains(s, p) {
						t.Errorf("%q, a piece of the password, shows in:\n%s", p, s)
						break
					}
				}
			}
		})
	}
}

// DeleteBuckets isolation

// secIsBucketOf is an independent oracle: key is "<prefix><id>:<n>" with n
// an int64 in canonical base 10.
func secIsBucketOf(prefix, id, key string) bool {
	rest, ok := strings.CutPrefix(key, prefix+id+":")
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	return err == nil && strconv.FormatInt(n, 10) == rest
}

func TestDeleteBucketsAttackerIDsDeleteNothingOfVictims(t *testing.T) {
	attackers := []string{
		"*", "?", "[a-z]*", "[v]ictim", "\\", "\\*", "Hammer:Redis:", "", ":", "x:*", "*:*", "victim*", "vic?im",
		"victim:*", "victim:", "victim:1", "victi", "[", "]", "[!a]*", "[^a]*", "\\victim", "victim\\", "VICTIM",
		" victim", "victim ", "\x00", "*\x00", strings.Repeat("*", 1000), "?*?*?*?*?*?*?*?*?*?*",
	}
	for _, prefix := range []string{secPrefix, `rl:{*}?[a]\:`} {
		t.Run(fmt.Sprintf("prefix %q", prefix), func(t *testing.T) {
			srv := redistest.New(t)
			admin := srv.Conn(t)
			f := start(t, srv, hammerredis.Options{KeyPrefix: prefix})
			ctx := context.Background()

			// The victims: several buckets of "victim" and of an id full of
			// glob characters, written by the backend.
			victims := []string{"victim", "v[1]*?\\", "victim:2"}
			for _, id := range victims {
				for _, bucket := range []int64{-5, 0, 1, 2, 29923304, 1 << 62} {
					_, err := f.b.CountHit(ctx, hammerredis.BucketKey{Bucket: bucket, ID: id}, 1)
					require.NoError(t, err)
				}
			}
			// Keys that are nobody's buckets, inside and outside the prefix.
			for _, k := range []string{
				prefix + "victim", prefix + "victim:", prefix + "victim:01", prefix + "victim:+1", prefix + "victim:1x",
				prefix + "victim:-0", prefix + "*:01", prefix + "?:1:x", prefix + ":", prefix,
				"victim:1", "other:key", "Hammer:Redis", "hammer:redis:victim:1", "rl:X?[a]\\:victim:1",
				"rlX{*}?[a]\\:victim:1", "rl:{*}?a\\:victim:1",
			} {
				if !strings.HasPrefix(k, prefix) || k == prefix {
					do(t, admin, "SET", k, "not a bucket")
				} else {
					do(t, admin, "HSET", k, "count", 1, "created", 1, "updated", 1)
				}
			}
			before := secScanAll(t, admin)
			// The test is only meaningful if no key is an attacker's bucket.
			for _, id := range attackers {
				for _, k := range before {
					require.False(t, secIsBucketOf(prefix, id, k), "key %q is a bucket of attacker id %q", k, id)
				}
			}

			for _, id := range attackers {
				n, err := f.b.DeleteBuckets(ctx, id)
				require.NoError(t, err, "DeleteBuckets(%q)", id)
				assert.Zero(t, n, "DeleteBuckets(%q)", id)
				require.Equal(t, before, secScanAll(t, admin), "after DeleteBuckets(%q)", id)
			}

			// Control: each attacker id's own buckets do go, and nothing else.
			for _, id := range attackers {
				for _, bucket := range []int64{-3, 7} {
					_, err := f.b.CountHit(ctx, hammerredis.BucketKey{Bucket: bucket, ID: id}, 1)
					require.NoError(t, err)
				}
				n, err := f.b.DeleteBuckets(ctx, id)
				require.NoError(t, err, "DeleteBuckets(%q)", id)
				assert.Equal(t, int64(2), n, "DeleteBuckets(%q) of its own buckets", id)
				require.Equal(t, before, secScanAll(t, admin), "after DeleteBuckets(%q) of its own buckets", id)
			}

			// And the victims still own theirs.
			for _, id := range victims {
				n, err := f.b.DeleteBuckets(ctx, id)
				require.NoError(t, err)
				assert.Equal(t, int64(6), n, "DeleteBuckets(%q)", id)
			}
			assert.Equal(t, int64(0), do(t, admin, "EXISTS", prefix+"victim:1"))
			assert.Equal(t, int64(1), do(t, admin, "EXISTS", "victim:1"), "keys outside the prefix stay")
		})
	}
}
