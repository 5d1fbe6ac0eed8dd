package hammerredis

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/internal/cluster"
	"github.com/hammer-go/hammerredis/internal/redisdial"
	"github.com/hammer-go/hammerredis/internal/sentinel"
	"github.com/hammer-go/hammerredis/protocol"
	"github.com/hammer-go/hammerredis/server"
	"github.com/hammer-go/hammerredis/supervisor"
	"github.com/thejerf/suture/v4"
)

// Connection defaults, as Redix's.
const (
	DefaultHost           = "127.0.0.1"
	DefaultPort           = 6379
	DefaultConnectTimeout = 5 * time.Second
	DefaultReadTimeout    = 5 * time.Second
	DefaultWriteTimeout   = 5 * time.Second
)

// Defaults of Options, for the zero value of the field each is named after
// (see that field). New applies them, all in one place (Options.resolve).
const (
	DefaultCallTimeout          = 5 * time.Second
	DefaultDeleteBucketsTimeout = 5 * time.Second
	DefaultHealthCheckInterval  = time.Second
	DefaultMinBackoff           = 50 * time.Millisecond
	DefaultMaxBackoff           = 800 * time.Millisecond
	DefaultPoolSize             = 1
	DefaultMaxPipeline          = 256
	DefaultQueueSize            = 1024
)

// Bounds of Options, checked by New: a value past one is refused with
// ErrInvalid rather than crashing the process or breaking every call.
const (
	// MaxExpiryMs bounds Options.ExpiryMs: 100 years. Past it Redis
	// refuses the TTL, and no rate window is that long.
	MaxExpiryMs = protocol.MaxExpiryMs
	// MaxQueueSize bounds Options.QueueSize. The queue is allocated at New,
	// per server; callers that find it full wait for room as long as their
	// context allows, so a longer queue would only add latency.
	MaxQueueSize = 1 << 16
	// MaxPipelineLimit bounds Options.MaxPipeline, far past the depth where
	// pipelining stops paying (a few hundred calls).
	MaxPipelineLimit = 1 << 14
	// MaxKeyPrefixBytes bounds the length of Options.KeyPrefix, as
	// protocol.MaxIDBytes bounds an id's.
	MaxKeyPrefixBytes = protocol.MaxIDBytes
	// MaxPoolSize bounds Options.PoolSize.
	MaxPoolSize = 256
)

// Options configure a backend; Elixir's keyword list. The zero value of every
// field but ExpiryMs means its documented default.
type Options struct {
	// ExpiryMs is how long a bucket lives after its latest hit, in ms.
	// Required, 1 to MaxExpiryMs (100 years); set it to at least the longest
	// scale you check with. The key TTL is round(ExpiryMs/1000 + 1)
	// seconds, refreshed on every hit.
	ExpiryMs int64

	// RedixConfig holds the connection settings (Elixir redix_config).
	RedixConfig *RedisConfig
	// RedisConfig is an alias, used only when RedixConfig is nil (Elixir
	// redis_config).
	RedisConfig *RedisConfig
	// RedisURL is "redis://[[user]:password@]host[:port][/db]", or rediss://
	// for TLS. When set it is the base, and the non-zero fields of the
	// config override it.
	RedisURL string

	// KeyPrefix starts every bucket key; default "Hammer:Redis:". At most
	// MaxKeyPrefixBytes (1 MiB) long.
	KeyPrefix string
	// DeleteBucketsTimeout bounds DeleteBuckets; default
	// DefaultDeleteBucketsTimeout (5s).
	DeleteBucketsTimeout time.Duration
	// CallTimeout bounds the other calls when the caller's context has no
	// earlier deadline; default DefaultCallTimeout (5s).
	CallTimeout time.Duration

	// HealthCheckInterval is how often an idle connection is PINGed, so that
	// a dead one is replaced before a caller needs it; default
	// DefaultHealthCheckInterval (1s), negative disables.
	HealthCheckInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait before a redial, after a
	// failed dial or a connection that broke within a second: it doubles
	// from MinBackoff (default DefaultMinBackoff, 50ms) up to MaxBackoff
	// (default DefaultMaxBackoff, 800ms; not less than MinBackoff), minus
	// up to 20% jitter, so calls succeed within MaxBackoff plus a dial of
	// Redis being reachable again (under 1s with the defaults).
	MinBackoff, MaxBackoff time.Duration
	// PoolSize is how many server goroutines, each with its own connection,
	// share the calls (Hammer's pool_size). Calls are routed by id, so the
	// calls of one id stay in order. Default DefaultPoolSize (1), at most
	// MaxPoolSize (256).
	PoolSize int
	// MaxPipeline bounds how many calls one connection has written to Redis
	// and not yet had replies for; default DefaultMaxPipeline
	// (256), at most MaxPipelineLimit (16384). 1 turns pipelining off: one
	// round trip per call.
	MaxPipeline int

	// Sentinel, when set, finds the master through Redis Sentinel and dials
	// it with the settings above (their host and port are not used). The
	// backend follows a failover by itself: it subscribes to the sentinels'
	// failover events and asks them every HealthCheckInterval
	// (DefaultHealthCheckInterval when health checks are disabled), off the
	// calls' path (see SentinelConfig).
	Sentinel *SentinelConfig

	// Cluster, when set, talks to a Redis Cluster: one pipelining server per
	// master, calls routed by their key's slot, redirects followed (see
	// ClusterConfig). PoolSize does not apply; New refuses it together
	// with Sentinel or a Database.
	Cluster *ClusterConfig

	// HashTagKeys writes keys as "<prefix>{<id>}:<bucket>", so that on a
	// Redis Cluster all buckets of an id share one slot. NOT compatible with
	// the Elixir library, which does not see such buckets; the prefix may
	// then hold no '{'. Default false: the Elixir layout.
	HashTagKeys bool

	// DisableCoalescing sends every hit on its own. By default, hits queued
	// together share script runs: hits on one bucket go to Redis as one run
	// of their summed increment, and on a single server (not a cluster) the
	// hits on up to 64 distinct buckets as one multi-key run; each caller
	// still gets the count it would have had in queue order, and each bucket
	// the data its hits would have written one by one. Turn it off only to
	// measure what it saves.
	DisableCoalescing bool

	// scriptClock replaces Redis TIME in Hammer 7's scripts: a seam for
	// tests (export_test.go), nil otherwise.
	scriptClock func() time.Time

	// QueueSize bounds the calls waiting for the connection, per server;
	// default DefaultQueueSize (1024), at most MaxQueueSize (65536). When
	// it is full, callers wait as long as their context allows.
	QueueSize int
	// Logger receives connection, restart and panic events; default
	// slog.Default(). Passwords are never logged.
	Logger *slog.Logger
}

// RedisConfig holds connection settings. The zero value of each field means
// its default, or the RedisURL's value when one is given.
type RedisConfig struct {
	// Host is the server's host name or IP; default 127.0.0.1.
	Host string
	// Port is the server's TCP port; default 6379.
	Port int
	// SocketPath, when set, connects over this unix socket instead of TCP.
	SocketPath string
	// Username selects a Redis ACL user (Redis 6+); needs Password.
	Username string
	// Password authenticates with AUTH. It never appears in errors or logs.
	Password string
	// Database is the logical database number; default 0.
	Database int
	// TLS, when non-nil, encrypts the connection with this configuration.
	// rediss:// URLs use an empty one (system roots, server name from Host).
	TLS *tls.Config
	// ConnectTimeout bounds dialing, TLS handshake, AUTH and SELECT;
	// default 5s.
	ConnectTimeout time.Duration
	// ReadTimeout bounds the wait for each reply; past it the connection is
	// considered broken and is replaced. Default 5s.
	ReadTimeout time.Duration
	// WriteTimeout bounds each write; default 5s.
	WriteTimeout time.Duration
	// ClientName is set with CLIENT SETNAME, to find the connection in
	// CLIENT LIST; printable ASCII without spaces, as Redis requires.
	ClientName string
}

// String describes the config with the password redacted, so that printing
// it (%v, %+v) never leaks it.
func (c RedisConfig) String() string {
	pw := ""
	if c.Password != "" {
		pw = "[redacted]"
	}
	return fmt.Sprintf("{Host:%s Port:%d SocketPath:%s Username:%s Password:%s Database:%d TLS:%t "+
		"ConnectTimeout:%v ReadTimeout:%v WriteTimeout:%v ClientName:%s}",
		c.Host, c.Port, c.SocketPath, c.Username, pw, c.Database, c.TLS != nil,
		c.ConnectTimeout, c.ReadTimeout, c.WriteTimeout, c.ClientName)
}

// LogValue keeps the password out of structured logs.
func (c RedisConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// GoString keeps the password out of %#v.
func (c RedisConfig) GoString() string { return "hammerredis.RedisConfig" + c.String() }

// String describes the options with passwords redacted.
func (o Options) String() string {
	cfg := func(c *RedisConfig) string {
		if c == nil {
			return "<nil>"
		}
		return c.String()
	}
	return fmt.Sprintf("{ExpiryMs:%d RedixConfig:%s RedisConfig:%s RedisURL:%s KeyPrefix:%q "+
		"DeleteBucketsTimeout:%v CallTimeout:%v HealthCheckInterval:%v MinBackoff:%v MaxBackoff:%v "+
		"PoolSize:%d MaxPipeline:%d DisableCoalescing:%t QueueSize:%d Sentinel:%s}",
		o.ExpiryMs, cfg(o.RedixConfig), cfg(o.RedisConfig), redactURL(o.RedisURL), o.KeyPrefix,
		o.DeleteBucketsTimeout, o.CallTimeout, o.HealthCheckInterval, o.MinBackoff, o.MaxBackoff,
		o.PoolSize, o.MaxPipeline, o.DisableCoalescing, o.QueueSize, sentinelString(o.Sentinel))
}

func sentinelString(c *SentinelConfig) string {
	if c == nil {
		return "<nil>"
	}
	return c.String()
}

// LogValue keeps passwords out of structured logs.
func (o Options) LogValue() slog.Value { return slog.StringValue(o.String()) }

// GoString keeps passwords out of %#v.
func (o Options) GoString() string { return "hammerredis.Options" + o.String() }

// dialTarget is a resolved, validated connection config.
type dialTarget struct {
	network, address string
	opts             []redis.DialOption
}

// resolved is Options with every default applied and every bound checked:
// what New builds a backend from.
type resolved struct {
	name   string       // the backend's name in logs and String
	logger *slog.Logger // the backend's logger
	// server is the config of every server, every field set; Name is
	// numbered per server of a pool, and with Sentinel or Cluster Dial (and
	// for a cluster Name) is set per server.
	server server.Config
	spec   supervisor.Spec // the backend's own supervisor
	// newRouter makes the backend's servers, and the services that follow
	// the topology, children of the backend's tree: a pool (with its
	// sentinel watcher) or a cluster router, as the options say.
	newRouter func(tree *suture.Supervisor) (router, error)
}

// check validates the options that need no defaults applied and returns
// the connection config, defaults applied.
func (o Options) check() (RedisConfig, error) {
	if o.ExpiryMs <= 0 {
		if o.ExpiryMs == 0 {
			return RedisConfig{}, fmt.Errorf("%w: missing required option ExpiryMs (Elixir: expiry_ms)", ErrInvalid)
		}
		return RedisConfig{}, fmt.Errorf("%w: ExpiryMs must be > 0, got %d", ErrInvalid, o.ExpiryMs)
	}
	if err := o.checkBounds(); err != nil {
		return RedisConfig{}, err
	}
	rc, err := o.redisConfig()
	if err != nil {
		return RedisConfig{}, err
	}
	if o.Sentinel != nil {
		if err := o.Sentinel.validate(); err != nil {
			return RedisConfig{}, err
		}
	}
	if o.PoolSize < 0 || o.PoolSize > MaxPoolSize {
		return RedisConfig{}, fmt.Errorf("%w: PoolSize %d is not in 1-%d", ErrInvalid, o.PoolSize, MaxPoolSize)
	}
	if o.Cluster != nil {
		if err := o.Cluster.validate(); err != nil {
			return RedisConfig{}, err
		}
		// A cluster node refuses SELECT, so a database other than 0 would
		// keep every connection from being made; and the nodes come from the
		// slot map, not from sentinels.
		switch {
		case rc.Database != 0:
			return RedisConfig{}, fmt.Errorf("%w: Database %d with Cluster: a Redis Cluster has only database 0", ErrInvalid, rc.Database)
		case o.Sentinel != nil:
			return RedisConfig{}, fmt.Errorf("%w: Sentinel with Cluster: a Redis Cluster finds its masters by itself", ErrInvalid)
		}
	}
	return rc, nil
}

// resolve validates o and applies every default, once: the one place
// where the zero values of Options become their documented defaults. Its
// errors wrap ErrInvalid and name the problem.
func (o Options) resolve() (resolved, error) {
	rc, err := o.check()
	if err != nil {
		return resolved{}, err
	}
	r := resolved{logger: cmp.Or(o.Logger, slog.Default())}
	target := rc.target()
	r.server = server.Config{
		Dial:                 redisdial.To(target.network, target.address, target.opts),
		Name:                 target.address,
		ExpiryMs:             o.ExpiryMs,
		KeyPrefix:            cmp.Or(o.KeyPrefix, protocol.DefaultKeyPrefix),
		CallTimeout:          cmp.Or(o.CallTimeout, DefaultCallTimeout),
		DeleteBucketsTimeout: cmp.Or(o.DeleteBucketsTimeout, DefaultDeleteBucketsTimeout),
		HealthCheckInterval:  cmp.Or(o.HealthCheckInterval, DefaultHealthCheckInterval),
		MinBackoff:           cmp.Or(o.MinBackoff, DefaultMinBackoff),
		MaxBackoff:           cmp.Or(o.MaxBackoff, DefaultMaxBackoff),
		QueueSize:            cmp.Or(o.QueueSize, DefaultQueueSize),
		MaxPipeline:          cmp.Or(o.MaxPipeline, DefaultMaxPipeline),
		DisableCoalescing:    o.DisableCoalescing,
		HashTag:              o.HashTagKeys,
		Logger:               r.logger,
		ScriptClock:          o.scriptClock,
	}
	if err := checkServer(r.server); err != nil {
		return resolved{}, err
	}
	// The servers back off by themselves (at most MaxBackoff between dials,
	// lost connections counted like failed dials), so the backend's tree
	// must not add suture's thrash pause on top: it would hold a recovery
	// past MaxBackoff.
	r.spec = supervisor.Spec{Logger: r.logger, FailureBackoff: supervisor.DefaultFailureBackoff,
		FailureThreshold: math.Inf(1)}
	// The sentinels and the slot map are asked every HealthCheckInterval,
	// even when health checks are disabled.
	poll := r.server.HealthCheckInterval
	if poll < 0 {
		poll = DefaultHealthCheckInterval
	}

	if o.Cluster != nil {
		r.name = fmt.Sprintf("hammerredis(cluster %s)", strings.Join(o.Cluster.Addrs, ","))
		r.server.Dial, r.server.Name = nil, "" // per master
		c := cluster.Config{
			Seeds:         slices.Clone(o.Cluster.Addrs),
			DialOptions:   target.opts,
			Server:        r.server,
			Logger:        r.logger,
			RefreshEvery:  poll,
			NodeTimeout:   rc.ConnectTimeout + rc.ReadTimeout,
			DeleteTimeout: r.server.DeleteBucketsTimeout,
		}
		r.newRouter = func(tree *suture.Supervisor) (router, error) {
			c.Tree = tree
			return cluster.New(c), nil
		}
		return r, nil
	}
	p := poolConfig{size: cmp.Or(o.PoolSize, DefaultPoolSize), logger: r.logger}
	if o.Sentinel != nil {
		// One watcher follows the master for every server of the backend;
		// each server dials through a dialer of its own.
		r.server.Dial = nil
		r.server.Name = fmt.Sprintf("%s via sentinel", o.Sentinel.MasterName)
		p.sentinel = &sentinel.Config{
			Addrs:             slices.Clone(o.Sentinel.Addrs),
			MasterName:        o.Sentinel.MasterName,
			Username:          o.Sentinel.Username,
			Password:          o.Sentinel.Password,
			Timeout:           cmp.Or(o.Sentinel.Timeout, DefaultSentinelTimeout),
			MasterDialOptions: target.opts,
			PromotionWait:     rc.ConnectTimeout,
			PollEvery:         poll,
			Logger:            r.logger,
		}
	}
	p.server = r.server
	r.newRouter = p.newRouter
	r.name = "hammerredis(" + r.server.Name + ")"
	if p.size > 1 {
		r.name = fmt.Sprintf("hammerredis(%s, pool %d)", r.server.Name, p.size)
	}
	return r, nil
}

// serverConfig is the server config that resolve makes of o, before the
// Name of each server of a pool, and the Dial of each with Sentinel or
// Cluster, are set.
func (o Options) serverConfig() (server.Config, error) {
	r, err := o.resolve()
	return r.server, err
}

// checkBounds refuses the numeric options past their bounds, each error
// naming the option and its allowed range. ExpiryMs > 0 is checked before.
func (o Options) checkBounds() error {
	switch {
	case o.ExpiryMs > MaxExpiryMs:
		return fmt.Errorf("%w: ExpiryMs %d is not in 1-%d (100 years)", ErrInvalid, o.ExpiryMs, MaxExpiryMs)
	case o.QueueSize < 0 || o.QueueSize > MaxQueueSize:
		return fmt.Errorf("%w: QueueSize %d is not in 1-%d (0 means the default %d)",
			ErrInvalid, o.QueueSize, MaxQueueSize, DefaultQueueSize)
	case o.MaxPipeline < 0 || o.MaxPipeline > MaxPipelineLimit:
		return fmt.Errorf("%w: MaxPipeline %d is not in 1-%d (0 means the default %d)",
			ErrInvalid, o.MaxPipeline, MaxPipelineLimit, DefaultMaxPipeline)
	case len(o.KeyPrefix) > MaxKeyPrefixBytes:
		return fmt.Errorf("%w: KeyPrefix is %d bytes long, the limit is %d", ErrInvalid, len(o.KeyPrefix), MaxKeyPrefixBytes)
	}
	return nil
}

// checkServer refuses the settings of a server, defaults applied, that no
// server could run with.
func checkServer(c server.Config) error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"CallTimeout", c.CallTimeout}, {"DeleteBucketsTimeout", c.DeleteBucketsTimeout},
		{"MinBackoff", c.MinBackoff}, {"MaxBackoff", c.MaxBackoff},
	} {
		if d.v < 0 {
			return fmt.Errorf("%w: %s must not be negative, got %v", ErrInvalid, d.name, d.v)
		}
	}
	switch {
	case c.MaxBackoff < c.MinBackoff:
		return fmt.Errorf("%w: MaxBackoff %v is less than MinBackoff %v", ErrInvalid, c.MaxBackoff, c.MinBackoff)
	case c.HashTag && strings.Contains(c.KeyPrefix, "{"):
		return fmt.Errorf("%w: KeyPrefix %q holds a '{', which the hash-tag layout cannot have", ErrInvalid, c.KeyPrefix)
	}
	return nil
}

// redisConfig merges RedisURL with the config that wins (RedixConfig, else
// RedisConfig), applies defaults and validates the result.
func (o Options) redisConfig() (RedisConfig, error) {
	var rc RedisConfig
	if o.RedisURL != "" {
		u, err := parseRedisURL(o.RedisURL)
		if err != nil {
			return RedisConfig{}, err
		}
		rc = u
	}
	over := o.RedixConfig
	if over == nil {
		over = o.RedisConfig
	}
	if over != nil {
		rc.override(*over)
	}
	if rc.SocketPath == "" && rc.Host == "" {
		rc.Host = DefaultHost
	}
	if rc.Port == 0 {
		rc.Port = DefaultPort
	}
	if rc.ConnectTimeout == 0 {
		rc.ConnectTimeout = DefaultConnectTimeout
	}
	if rc.ReadTimeout == 0 {
		rc.ReadTimeout = DefaultReadTimeout
	}
	if rc.WriteTimeout == 0 {
		rc.WriteTimeout = DefaultWriteTimeout
	}
	switch {
	case rc.Port < 0 || rc.Port > 65535:
		return RedisConfig{}, fmt.Errorf("%w: port %d is out of range 1-65535", ErrInvalid, rc.Port)
	case rc.Database < 0:
		return RedisConfig{}, fmt.Errorf("%w: database %d is negative", ErrInvalid, rc.Database)
	case rc.ConnectTimeout < 0 || rc.ReadTimeout < 0 || rc.WriteTimeout < 0:
		return RedisConfig{}, fmt.Errorf("%w: connection timeouts must not be negative", ErrInvalid)
	case rc.Username != "" && rc.Password == "":
		return RedisConfig{}, fmt.Errorf("%w: Username %q is set without a Password", ErrInvalid, rc.Username)
	case strings.ContainsAny(rc.Host, "/ \t\r\n"):
		return RedisConfig{}, fmt.Errorf("%w: host %q is not a host name or IP address", ErrInvalid, rc.Host)
	case strings.ContainsFunc(rc.ClientName, func(r rune) bool { return r < '!' || r > '~' }):
		// Redis refuses such a name in CLIENT SETNAME, so every dial would fail.
		return RedisConfig{}, fmt.Errorf("%w: ClientName %q may hold only printable ASCII characters other than space ('!' to '~')",
			ErrInvalid, rc.ClientName)
	}
	return rc, nil
}

// override copies the non-zero fields of o into c.
func (c *RedisConfig) override(o RedisConfig) {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&c.Host, o.Host)
	set(&c.SocketPath, o.SocketPath)
	set(&c.Username, o.Username)
	set(&c.Password, o.Password)
	set(&c.ClientName, o.ClientName)
	if o.Port != 0 {
		c.Port = o.Port
	}
	if o.Database != 0 {
		c.Database = o.Database
	}
	if o.TLS != nil {
		c.TLS = o.TLS
	}
	for _, d := range []struct{ dst, v *time.Duration }{
		{&c.ConnectTimeout, &o.ConnectTimeout}, {&c.ReadTimeout, &o.ReadTimeout}, {&c.WriteTimeout, &o.WriteTimeout},
	} {
		if *d.v != 0 {
			*d.dst = *d.v
		}
	}
}

func (c RedisConfig) target() dialTarget {
	t := dialTarget{network: "tcp", address: net.JoinHostPort(c.Host, strconv.Itoa(c.Port))}
	if c.SocketPath != "" {
		t.network, t.address = "unix", c.SocketPath
	}
	t.opts = []redis.DialOption{
		redis.DialConnectTimeout(c.ConnectTimeout),
		redis.DialReadTimeout(c.ReadTimeout),
		redis.DialWriteTimeout(c.WriteTimeout),
	}
	if c.Password != "" {
		t.opts = append(t.opts, redis.DialPassword(c.Password))
		if c.Username != "" {
			t.opts = append(t.opts, redis.DialUsername(c.Username))
		}
	}
	if c.Database != 0 {
		t.opts = append(t.opts, redis.DialDatabase(c.Database))
	}
	if c.ClientName != "" {
		t.opts = append(t.opts, redis.DialClientName(c.ClientName))
	}
	if c.TLS != nil {
		t.opts = append(t.opts, redis.DialContextFunc(tlsDialer(c.TLS, c.ConnectTimeout)))
	}
	return t
}

// parseRedisURL parses redis:// and rediss:// URLs. Its errors wrap
// ErrInvalid and show the URL with the password redacted.
func parseRedisURL(raw string) (RedisConfig, error) {
	shown := redactURL(raw)
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: RedisURL %q: %s", ErrInvalid, shown, fmt.Sprintf(format, args...))
	}
	if !strings.Contains(raw, "://") {
		if scheme, _, ok := strings.Cut(raw, ":"); ok && (scheme == "redis" || scheme == "rediss") {
			return RedisConfig{}, bad("want %s://host[:port][/db], with two slashes", scheme)
		}
		return RedisConfig{}, bad("no scheme, want redis://host[:port][/db] or rediss://")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url's message may quote the raw URL, password included: report
		// the redacted URL's problem instead, if it has one.
		why := "malformed URL"
		if _, rerr := url.Parse(shown); rerr != nil {
			var uerr *url.Error
			if errors.As(rerr, &uerr) {
				why = uerr.Err.Error()
			}
		} else if shown != raw {
			why = "malformed user info or password (percent-encode special characters)"
		}
		return RedisConfig{}, bad("%s", why)
	}
	var rc RedisConfig
	switch u.Scheme {
	case "redis":
	case "rediss":
		rc.TLS = &tls.Config{}
	case "":
		return RedisConfig{}, bad("no scheme, want redis:// or rediss://")
	default:
		return RedisConfig{}, bad("unknown scheme %q, want redis:// or rediss://", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return RedisConfig{}, bad("want redis://host[:port][/db], with two slashes and a host")
	}
	rc.Host = u.Hostname()
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return RedisConfig{}, bad("port %q is not in 1-65535", p)
		}
		rc.Port = n
	}
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			rc.Username, rc.Password = u.User.Username(), pw
		} else {
			// As redis-cli and redigo: a lone user info is the password.
			rc.Password = u.User.Username()
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return RedisConfig{}, bad("database %q is not a non-negative number", db)
		}
		rc.Database = n
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return RedisConfig{}, bad("query parameters and fragments are not supported")
	}
	return rc, nil
}

// redactURL hides the user info of a URL-like string, even a malformed one:
// everything between the scheme and the last "@" becomes "xxxxx". The last
// "@" of the whole string, not of the authority, because a password may hold
// "/", "?" or "#"; without an "@" there is no password to hide.
func redactURL(raw string) string {
	at := strings.LastIndex(raw, "@")
	if at < 0 {
		return raw
	}
	start := 0
	if i := strings.Index(raw, "://"); i >= 0 && i < at {
		start = i + 3
	} else if i := strings.Index(raw, ":"); i > 0 && i < at && isScheme(raw[:i]) {
		start = i + 1
	}
	return raw[:start] + "xxxxx" + raw[at:]
}

// isScheme reports whether s has the form of a URL scheme.
func isScheme(s string) bool {
	for i, c := range s {
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}
