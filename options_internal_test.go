package hammerredis

import (
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRedisConfigFromOptions(t *testing.T) {
	tlsConf := &tls.Config{ServerName: "cache"}
	defaults := func(c RedisConfig) RedisConfig {
		if c.Host == "" && c.SocketPath == "" {
			c.Host = DefaultHost
		}
		if c.Port == 0 {
			c.Port = DefaultPort
		}
		c.ConnectTimeout, c.ReadTimeout, c.WriteTimeout = DefaultConnectTimeout, DefaultReadTimeout, DefaultWriteTimeout
		return c
	}
	for _, tt := range []struct {
		name string
		opts Options
		want RedisConfig
	}{
		{"nothing: Redix defaults", Options{}, defaults(RedisConfig{})},
		{"url", Options{RedisURL: "redis://cache.internal:6380/2"},
			defaults(RedisConfig{Host: "cache.internal", Port: 6380, Database: 2})},
		{"url with user and password", Options{RedisURL: "redis://app:p%40ss@h"},
			defaults(RedisConfig{Host: "h", Username: "app", Password: "p@ss"})},
		{"url with password only", Options{RedisURL: "redis://:pw@h"}, defaults(RedisConfig{Host: "h", Password: "pw"})},
		{"url with lone user info is a password", Options{RedisURL: "redis://pw@h"}, defaults(RedisConfig{Host: "h", Password: "pw"})},
		{"ipv6", Options{RedisURL: "redis://[::1]:7000"}, defaults(RedisConfig{Host: "::1", Port: 7000})},
		{"rediss", Options{RedisURL: "rediss://h:6390"}, defaults(RedisConfig{Host: "h", Port: 6390, TLS: &tls.Config{}})},
		{"config overrides url", Options{RedisURL: "redis://:old@h:1/3",
			RedixConfig: &RedisConfig{Port: 2, Password: "new", TLS: tlsConf, ReadTimeout: time.Second}},
			RedisConfig{Host: "h", Port: 2, Password: "new", Database: 3, TLS: tlsConf,
				ConnectTimeout: DefaultConnectTimeout, ReadTimeout: time.Second, WriteTimeout: DefaultWriteTimeout}},
		{"RedixConfig wins over RedisConfig", Options{RedixConfig: &RedisConfig{Host: "a"}, RedisConfig: &RedisConfig{Host: "b", Port: 9}},
			defaults(RedisConfig{Host: "a"})},
		{"RedisConfig alone", Options{RedisConfig: &RedisConfig{Host: "b", Port: 9}}, defaults(RedisConfig{Host: "b", Port: 9})},
		{"unix socket", Options{RedisConfig: &RedisConfig{SocketPath: "/run/redis.sock"}},
			defaults(RedisConfig{SocketPath: "/run/redis.sock"})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opts.redisConfig()
			require.NoError(t, err, "redisConfig()")
			assert.Equal(t, tt.want.String(), got.String(), "redisConfig()")
			assert.Equal(t, tt.want.Password, got.Password, "redisConfig().Password")
			if tt.want.TLS == nil {
				assert.Nil(t, got.TLS, "redisConfig().TLS")
			} else if assert.NotNil(t, got.TLS, "redisConfig().TLS") {
				assert.Equal(t, tt.want.TLS.ServerName, got.TLS.ServerName, "redisConfig().TLS.ServerName")
			}
		})
	}
}

func TestDialTarget(t *testing.T) {
	tcp := RedisConfig{Host: "::1", Port: 7000}.target()
	assert.Equal(t, "tcp [::1]:7000", tcp.network+" "+tcp.address, "target()")
	unix := RedisConfig{Host: "h", Port: 1, SocketPath: "/s"}.target()
	assert.Equal(t, "unix /s", unix.network+" "+unix.address, "target(): a socket path wins")
}

func TestRedactURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"redis://u:secret@h:1/0", "redis://xxxxx@h:1/0"},
		{"redis://:secret@h", "redis://xxxxx@h"},
		{"redis://secret@h", "redis://xxxxx@h"},
		{"redis://u:se@cret@h", "redis://xxxxx@h"},
		{"redis://u:se/cr?e#t@h:1", "redis://xxxxx@h:1"},
		{"redis:/u:secret@h", "redis:xxxxx@h"},
		{"u:secret@h:1", "u:xxxxx@h:1"},
		{"redis//u:secret@h", "xxxxx@h"},
		{"redis://h", "redis://h"},
		{"not a url", "not a url"},
	} {
		assert.Equal(t, tt.want, redactURL(tt.in), "redactURL(%q)", tt.in)
	}
}

// FuzzParseRedisURL checks that parsing never panics, that failures are
// ErrInvalid, and that a password never shows in an error.
func FuzzParseRedisURL(f *testing.F) {
	for _, s := range []string{"redis://u:pw@h:1/2", "rediss://h", "redis://:p%zz@h", "redis://[::1", "http://x", "redis://h:99999", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		rc, err := parseRedisURL(raw)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid, "parseRedisURL(%q)", raw)
			return
		}
		other := rc
		other.Password += "x"
		if rc.Password != "" {
			require.Equal(t, other.String(), rc.String(), "String() depends on the password")
		}
	})
}

func TestSentinelOptions(t *testing.T) {
	for _, c := range []*SentinelConfig{
		{MasterName: "m"},
		{Addrs: []string{"127.0.0.1:26379"}},
		{Addrs: []string{"no-port"}, MasterName: "m"},
		{Addrs: []string{"h:1"}, MasterName: "m", Username: "u"},
	} {
		_, err := (Options{ExpiryMs: 1, Sentinel: c}).serverConfig()
		assert.ErrorIs(t, err, ErrInvalid, "serverConfig with Sentinel %v", c)
	}
	c := &SentinelConfig{Addrs: []string{"h:1"}, MasterName: "m", Password: "s3cret-sentinel"}
	cfg, err := Options{ExpiryMs: 1, Sentinel: c}.serverConfig()
	require.NoError(t, err)
	assert.Equal(t, "m via sentinel", cfg.Name)
	for _, s := range []string{fmt.Sprint(Options{Sentinel: c}), fmt.Sprintf("%#v", c), fmt.Sprintf("%+v", *c)} {
		assert.NotContains(t, s, "s3cret", "the sentinel password shows")
	}
}
