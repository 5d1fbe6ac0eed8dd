package hammerredis

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
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
			if err != nil {
				t.Fatalf("redisConfig() error: %v", err)
			}
			if got.String() != tt.want.String() || got.Password != tt.want.Password ||
				(got.TLS == nil) != (tt.want.TLS == nil) || (tt.want.TLS != nil && got.TLS.ServerName != tt.want.TLS.ServerName) {
				t.Errorf("redisConfig() =\n %v (password %q)\nwant\n %v (password %q)", got, got.Password, tt.want, tt.want.Password)
			}
		})
	}
}

func TestDialTarget(t *testing.T) {
	tcp := RedisConfig{Host: "::1", Port: 7000}.target()
	if tcp.network != "tcp" || tcp.address != "[::1]:7000" {
		t.Errorf("target() = %s %s, want tcp [::1]:7000", tcp.network, tcp.address)
	}
	unix := RedisConfig{Host: "h", Port: 1, SocketPath: "/s"}.target()
	if unix.network != "unix" || unix.address != "/s" {
		t.Errorf("target() = %s %s, want unix /s: a socket path wins", unix.network, unix.address)
	}
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
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
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
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("parseRedisURL(%q) error %v is not ErrInvalid", raw, err)
			}
			return
		}
		other := rc
		other.Password += "x"
		if rc.Password != "" && rc.String() != other.String() {
			t.Fatalf("String() %q depends on the password", rc.String())
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
		if _, err := (Options{ExpiryMs: 1, Sentinel: c}).serverConfig(); !errors.Is(err, ErrInvalid) {
			t.Errorf("serverConfig with Sentinel %v: error %v, want ErrInvalid", c, err)
		}
	}
	c := &SentinelConfig{Addrs: []string{"h:1"}, MasterName: "m", Password: "s3cret-sentinel"}
	cfg, err := Options{ExpiryMs: 1, Sentinel: c}.serverConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "m via sentinel" {
		t.Errorf("Name = %q, want %q", cfg.Name, "m via sentinel")
	}
	for _, s := range []string{fmt.Sprint(Options{Sentinel: c}), fmt.Sprintf("%#v", c), fmt.Sprintf("%+v", *c)} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("%q shows the sentinel password", s)
		}
	}
}
