package hammerredis_test

// Options: validation at Start, bounds, Redis URLs, pool and cluster
// settings. The parsing itself is tested inside the package
// (options_internal_test.go).

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/thejerf/suture/v4"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/internal/testenv"
	"github.com/hammer-go/hammerredis/protocol"
)

// TestBadInputOptions: malformed URLs, unknown schemes, bad ports and other
// bad settings fail at Start and StartLink with ErrInvalid and a message
// naming the problem, start nothing, and never show the password.
func TestBadInputOptions(t *testing.T) {
	const pw = "Zq9-opt-secret"
	withURL := func(u string) hammerredis.Options { return hammerredis.Options{ExpiryMs: 1000, RedisURL: u} }
	withConfig := func(c hammerredis.RedisConfig) hammerredis.Options {
		return hammerredis.Options{ExpiryMs: 1000, RedixConfig: &c}
	}
	for _, tt := range []struct {
		name string
		opts hammerredis.Options
		want string // a piece of the message
	}{
		{"port 0", withURL("redis://:" + pw + "@127.0.0.1:0"), `port "0" is not in 1-65535`},
		{"port 65536", withURL("redis://:" + pw + "@127.0.0.1:65536"), `port "65536" is not in 1-65535`},
		{"port -1", withURL("redis://:" + pw + "@127.0.0.1:-1"), "invalid port"},
		{"port of letters", withURL("redis://:" + pw + "@127.0.0.1:http"), "invalid port"},
		{"port beyond int64", withURL("redis://:" + pw + "@h:99999999999999999999"), "not in 1-65535"},
		{"config port -1", withConfig(hammerredis.RedisConfig{Port: -1, Password: pw}), "port -1 is out of range"},
		{"config port 65536", withConfig(hammerredis.RedisConfig{Port: 65536, Password: pw}), "port 65536 is out of range"},
		{"scheme unix", withURL("unix:///tmp/redis.sock"), `unknown scheme "unix"`},
		{"scheme tcp", withURL("tcp://:" + pw + "@h:1"), `unknown scheme "tcp"`},
		{"scheme https", withURL("https://:" + pw + "@h:1"), `unknown scheme "https"`},
		{"no scheme", withURL("127.0.0.1:6379"), "scheme"},
		{"one slash", withURL("redis:/h:1"), "two slashes"},
		{"no slashes", withURL("redis:h:1"), "two slashes"},
		{"leading space", withURL(" redis://h:1"), "RedisURL"},
		{"newline", withURL("redis://h:1\n"), "RedisURL"},
		{"NUL", withURL("redis://h\x00:1"), "RedisURL"},
		{"space in host", withURL("redis://a b:1"), "RedisURL"},
		{"unclosed IPv6", withURL("redis://:" + pw + "@[::1:1"), "RedisURL"},
		{"database -1", withURL("redis://:" + pw + "@h:1/-1"), `database "-1"`},
		{"database beyond int64", withURL("redis://h:1/99999999999999999999"), "database"},
		{"database path", withURL("redis://h:1/0/1"), `database "0/1"`},
		{"fragment", withURL("redis://:" + pw + "@h:1/0#top"), "fragments"},
		{"query", withURL("redis://:" + pw + "@h:1/0?db=1"), "query"},
		{"bad escape in password", withURL("redis://u:" + pw + "%zz@h:1"), "percent-encode"},
		{"host with a slash", withConfig(hammerredis.RedisConfig{Host: "a/b"}), "not a host name"},
		{"host with a newline", withConfig(hammerredis.RedisConfig{Host: "h\n"}), "not a host name"},
		{"database -1 in config", withConfig(hammerredis.RedisConfig{Database: -1}), "database -1"},
		{"negative read timeout", withConfig(hammerredis.RedisConfig{ReadTimeout: -1}), "timeouts"},
		{"user without password", withConfig(hammerredis.RedisConfig{Username: "app"}), "without a Password"},
		{"ExpiryMs 0", hammerredis.Options{}, "ExpiryMs"},
		{"ExpiryMs MinInt64", hammerredis.Options{ExpiryMs: math.MinInt64}, "ExpiryMs"},
		{"PoolSize -1", hammerredis.Options{ExpiryMs: 1, PoolSize: -1}, "PoolSize"},
		{"PoolSize 257", hammerredis.Options{ExpiryMs: 1, PoolSize: 257}, "PoolSize"},
		{"QueueSize -1", hammerredis.Options{ExpiryMs: 1, QueueSize: -1}, "QueueSize"},
		{"MaxPipeline -1", hammerredis.Options{ExpiryMs: 1, MaxPipeline: -1}, "MaxPipeline"},
		{"MinBackoff -1", hammerredis.Options{ExpiryMs: 1, MinBackoff: -1}, "MinBackoff"},
		{"DeleteBucketsTimeout -1", hammerredis.Options{ExpiryMs: 1, DeleteBucketsTimeout: -1}, "DeleteBucketsTimeout"},
		{"ExpiryMs -1", hammerredis.Options{ExpiryMs: -1}, "ExpiryMs"},
		{"scheme http", withURL("http://:" + pw + "@h:1"), `unknown scheme "http"`},
		{"no scheme before a host name", withURL("localhost:6379"), "scheme"},
		{"port 99999", withURL("redis://:" + pw + "@h:99999"), "port"},
		{"port of letters after a user", withURL("redis://u:" + pw + "@h:abc"), "port"},
		{"database of letters", withURL("redis://:" + pw + "@h:1/x"), "database"},
		{"bad escape before the password", withURL("redis://u:%zz" + pw + "@h:1"), "password"},
		{"unclosed IPv6 without a port", withURL("redis://:" + pw + "@[::1"), "RedisURL"},
		{"query without a password", withURL("redis://h/0?timeout=1"), "query"},
		{"config port 70000", withConfig(hammerredis.RedisConfig{Port: 70000, Password: pw}), "port 70000"},
		{"database -1 in RedisConfig", hammerredis.Options{ExpiryMs: 1, RedisConfig: &hammerredis.RedisConfig{Database: -1}}, "database"},
		{"CallTimeout -1", hammerredis.Options{ExpiryMs: 1, CallTimeout: -1}, "CallTimeout"},
		{"MaxBackoff below MinBackoff", hammerredis.Options{ExpiryMs: 1, MinBackoff: time.Second, MaxBackoff: time.Millisecond}, "MaxBackoff"},
		{"PoolSize MaxPoolSize+1", hammerredis.Options{ExpiryMs: 1, PoolSize: hammerredis.MaxPoolSize + 1}, "PoolSize"},
		{"cluster without addresses", hammerredis.Options{ExpiryMs: 1, Cluster: &hammerredis.ClusterConfig{}}, "Cluster.Addrs is empty"},
		{"cluster address without a port", hammerredis.Options{ExpiryMs: 1, Cluster: &hammerredis.ClusterConfig{Addrs: []string{"no-port"}}},
			`cluster address "no-port" is not host:port`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := hammerredis.Start(tt.opts)
			if b != nil {
				hammerredis.Stop(b)
			}
			assert.Nil(t, b, "Start(%v)", tt.opts)
			require.ErrorIs(t, err, hammerredis.ErrInvalid, "Start(%v)", tt.opts)
			assert.Contains(t, err.Error(), tt.want, "Start(%v)", tt.opts)
			assert.NotContains(t, err.Error(), pw, "Start(%v) shows the password", tt.opts)
			_, err = hammerredis.StartLink(suture.NewSimple("x"), tt.opts)
			assert.ErrorIs(t, err, hammerredis.ErrInvalid, "StartLink(%v)", tt.opts)
		})
	}
	_, err := hammerredis.StartLink(nil, hammerredis.Options{ExpiryMs: 1})
	assert.ErrorIs(t, err, hammerredis.ErrInvalid, "StartLink(nil, ...)")
}

// TestOptionBounds: each numeric option past its bound fails at New with
// ErrInvalid and a message naming the option and its allowed range, rather
// than exhausting memory (QueueSize 1<<40) or breaking every call
// (ExpiryMs near MaxInt64: Redis refuses the TTL while the hit is counted).
// The bounds themselves are accepted, and a backend at the longest expiry
// counts hits and sets their TTL.
func TestOptionBounds(t *testing.T) {
	opts := func(set func(*hammerredis.Options)) hammerredis.Options {
		o := hammerredis.Options{ExpiryMs: 60_000, RedisURL: shared.URL(), Logger: logtest.New().Logger()}
		set(&o)
		return o
	}
	for _, tt := range []struct {
		name string
		opts hammerredis.Options
		want string // the message names the option and its range; "" for accepted
	}{
		{"ExpiryMs MaxExpiryMs", opts(func(o *hammerredis.Options) { o.ExpiryMs = hammerredis.MaxExpiryMs }), ""},
		{"ExpiryMs MaxExpiryMs+1", opts(func(o *hammerredis.Options) { o.ExpiryMs = hammerredis.MaxExpiryMs + 1 }),
			fmt.Sprintf("ExpiryMs %d is not in 1-%d (100 years)", hammerredis.MaxExpiryMs+1, hammerredis.MaxExpiryMs)},
		{"ExpiryMs MaxInt64", opts(func(o *hammerredis.Options) { o.ExpiryMs = math.MaxInt64 }),
			fmt.Sprintf("ExpiryMs %d is not in 1-%d", int64(math.MaxInt64), hammerredis.MaxExpiryMs)},
		{"QueueSize MaxQueueSize", opts(func(o *hammerredis.Options) { o.QueueSize = hammerredis.MaxQueueSize }), ""},
		{"QueueSize MaxQueueSize+1", opts(func(o *hammerredis.Options) { o.QueueSize = hammerredis.MaxQueueSize + 1 }),
			"QueueSize 65537 is not in 1-65536 (0 means the default 1024)"},
		{"QueueSize 1<<40", opts(func(o *hammerredis.Options) { o.QueueSize = 1 << 40 }),
			"QueueSize 1099511627776 is not in 1-65536"},
		{"QueueSize -1", opts(func(o *hammerredis.Options) { o.QueueSize = -1 }), "QueueSize -1 is not in 1-65536"},
		{"QueueSize 1<<40 with a pool", opts(func(o *hammerredis.Options) { o.QueueSize, o.PoolSize = 1<<40, 4 }),
			"QueueSize 1099511627776 is not in 1-65536"},
		{"QueueSize 1<<40 on a cluster", opts(func(o *hammerredis.Options) {
			o.QueueSize, o.Cluster = 1<<40, &hammerredis.ClusterConfig{Addrs: []string{"127.0.0.1:1"}}
		}), "QueueSize 1099511627776 is not in 1-65536"},
		{"MaxPipeline MaxPipelineLimit", opts(func(o *hammerredis.Options) { o.MaxPipeline = hammerredis.MaxPipelineLimit }), ""},
		{"MaxPipeline MaxPipelineLimit+1", opts(func(o *hammerredis.Options) { o.MaxPipeline = hammerredis.MaxPipelineLimit + 1 }),
			"MaxPipeline 16385 is not in 1-16384 (0 means the default 256)"},
		{"MaxPipeline MaxInt", opts(func(o *hammerredis.Options) { o.MaxPipeline = math.MaxInt }),
			fmt.Sprintf("MaxPipeline %d is not in 1-16384", math.MaxInt)},
		{"MaxPipeline -1", opts(func(o *hammerredis.Options) { o.MaxPipeline = -1 }), "MaxPipeline -1 is not in 1-16384"},
		{"KeyPrefix MaxKeyPrefixBytes", opts(func(o *hammerredis.Options) {
			o.KeyPrefix = strings.Repeat("p", hammerredis.MaxKeyPrefixBytes)
		}), ""},
		{"KeyPrefix MaxKeyPrefixBytes+1", opts(func(o *hammerredis.Options) {
			o.KeyPrefix = strings.Repeat("p", hammerredis.MaxKeyPrefixBytes+1)
		}), "KeyPrefix is 1048577 bytes long, the limit is 1048576"},
		{"ClientName with a space", opts(func(o *hammerredis.Options) {
			o.RedixConfig = &hammerredis.RedisConfig{ClientName: "my app"}
		}), `ClientName "my app" may hold only printable ASCII characters other than space`},
		{"ClientName with a newline", opts(func(o *hammerredis.Options) {
			o.RedixConfig = &hammerredis.RedisConfig{ClientName: "app\n"}
		}), `ClientName "app\n" may hold only`},
		{"ClientName of every allowed character", opts(func(o *hammerredis.Options) {
			var b strings.Builder
			for c := '!'; c <= '~'; c++ {
				b.WriteRune(c)
			}
			o.RedixConfig = &hammerredis.RedisConfig{ClientName: b.String()}
		}), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := hammerredis.New(tt.opts)
			if tt.want == "" {
				require.NoError(t, err, "New(%.200v)", tt.opts)
				require.NotNil(t, b)
				return
			}
			require.Nil(t, b, "New(%.200v)", tt.opts)
			require.ErrorIs(t, err, hammerredis.ErrInvalid, "New(%.200v)", tt.opts)
			assert.Contains(t, err.Error(), tt.want, "New(%.200v)", tt.opts)
		})
	}

	// The bounds work, not only pass New: the longest expiry counts and
	// sets its TTL, the deepest queue and pipeline and a full-length
	// client name serve.
	var name strings.Builder
	for c := '!'; c <= '~'; c++ {
		name.WriteRune(c)
	}
	f := start(t, nil, hammerredis.Options{ExpiryMs: hammerredis.MaxExpiryMs, QueueSize: hammerredis.MaxQueueSize,
		MaxPipeline: hammerredis.MaxPipelineLimit, RedixConfig: &hammerredis.RedisConfig{ClientName: name.String()}})
	key := hammerredis.BucketKey{Bucket: 1, ID: "longest"}
	for want := int64(1); want <= 2; want++ {
		n, err := f.B.CountHit(context.Background(), key, 1)
		require.NoError(t, err, "a hit at ExpiryMs MaxExpiryMs")
		require.Equal(t, want, n)
	}
	require.Equal(t, protocol.ExpirySeconds(hammerredis.MaxExpiryMs), badTTL(t, f.Admin, protocol.Key(f.Prefix, key)))
}

// FuzzOptions checks that no options, however odd, make New panic; that
// every failure is ErrInvalid, and the documented limits fail; and that a
// password never shows in an error, in the backend's name or in the
// options' String, %+v or %#v: set in the config (where 0), in the URL
// percent-encoded (1), or in the URL as typed (2), reserved bytes and all.
func FuzzOptions(f *testing.F) {
	f.Add("redis", "app", "s3cret", "127.0.0.1:6379", "/0", "", 0, 0, int64(60_000), 0, uint8(1))
	f.Add("rediss", "", "p@ss/w#rd?:", "[::1]:6380", "/15", "cache", 6390, 2, int64(1), 4, uint8(2))
	f.Add("redis", "u", "pw", "h:99999", "/x", "", -1, -1, int64(0), -1, uint8(0))
	f.Add("http", "u", "pw", "h", "?q=1", "a b", 70000, 0, int64(-5), 300, uint8(1))
	f.Add("", "", "", "", "", "a/b", 0, 0, int64(1), 0, uint8(0))
	f.Add("redis", "u", "%zz", "h:1", "#frag", "", 0, 0, int64(1), 1, uint8(2))
	f.Fuzz(func(t *testing.T, scheme, user, pw, hostport, path, host string, port, db int, expiryMs int64, poolSize int, where uint8) {
		// Markers around the password show any piece of it that leaks.
		const head, tail = "Pw9", "9wP"
		secret := head + pw + tail
		for _, s := range []string{scheme, user, hostport, path, host} {
			if strings.Contains(s, head) || strings.Contains(s, tail) {
				return
			}
		}
		opts := hammerredis.Options{ExpiryMs: expiryMs, PoolSize: poolSize,
			RedixConfig: &hammerredis.RedisConfig{Host: host, Port: port, Database: db}}
		switch where % 3 {
		case 0:
			opts.RedixConfig.Password = secret
			if scheme != "" || hostport != "" || path != "" {
				opts.RedisURL = scheme + "://" + hostport + path
			}
		case 1:
			opts.RedisURL = scheme + "://" + url.UserPassword(user, secret).String() + "@" + hostport + path
		case 2:
			opts.RedisURL = scheme + "://" + user + ":" + secret + "@" + hostport + path
		}
		b, err := hammerredis.New(opts)
		require.NotEqual(t, err == nil, b == nil, "New(%v) = %v, %v: want a backend or an error", opts, b, err)
		shown := []string{fmt.Sprint(opts), fmt.Sprintf("%+v", opts), fmt.Sprintf("%#v", opts)}
		if err != nil {
			require.ErrorIs(t, err, hammerredis.ErrInvalid, "New(%v)", opts)
			shown = append(shown, err.Error())
		} else {
			shown = append(shown, b.String())
			defer hammerredis.Stop(b)
			require.False(t, expiryMs <= 0 || poolSize < 0 || poolSize > hammerredis.MaxPoolSize || port < 0 || port > 65535 || db < 0,
				"New(%v) = nil error; want ErrInvalid", opts)
		}
		for _, s := range shown {
			require.NotContains(t, s, head, "the password %q shows", secret)
			require.NotContains(t, s, tail, "the password %q shows", secret)
		}
	})
}

func TestUnixSocketAndDatabase(t *testing.T) {
	f := start(t, nil, hammerredis.Options{RedisConfig: &hammerredis.RedisConfig{SocketPath: shared.Socket, Database: 3}})
	assert.Equal(t, int64(1), hit(t, f.B, "u"))
	testenv.Do(t, f.Admin, "SELECT", 3)
	assert.Equal(t, int64(1), testenv.Do(t, f.Admin, "EXISTS", f.Key("u", 1)))
	testenv.Do(t, f.Admin, "SELECT", 0)
	assert.Equal(t, int64(0), testenv.Do(t, f.Admin, "EXISTS", f.Key("u", 1)))
}
