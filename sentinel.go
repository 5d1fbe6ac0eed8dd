package hammerredis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/gomodule/redigo/redis"
)

// SentinelConfig points a backend at a Redis Sentinel group. The master's
// connection uses the backend's RedisConfig (password, TLS, database,
// timeouts); these fields are for the sentinels themselves.
type SentinelConfig struct {
	// Addrs are the sentinels' "host:port" addresses, asked in order until
	// one answers. Required.
	Addrs []string
	// MasterName is the name the sentinels monitor the master under.
	// Required.
	MasterName string
	// Username and Password authenticate to the sentinels, when they
	// require it (sentinel requirepass or ACL). The password never appears
	// in errors or logs.
	Username, Password string
}

// String describes the config with the password redacted.
func (c SentinelConfig) String() string {
	pw := ""
	if c.Password != "" {
		pw = "[redacted]"
	}
	return fmt.Sprintf("{Addrs:%v MasterName:%s Username:%s Password:%s}", c.Addrs, c.MasterName, c.Username, pw)
}

// GoString keeps the password out of %#v.
func (c SentinelConfig) GoString() string { return "hammerredis.SentinelConfig" + c.String() }

func (c *SentinelConfig) validate() error {
	switch {
	case len(c.Addrs) == 0:
		return fmt.Errorf("%w: Sentinel.Addrs is empty", ErrInvalid)
	case c.MasterName == "":
		return fmt.Errorf("%w: Sentinel.MasterName is empty", ErrInvalid)
	case c.Username != "" && c.Password == "":
		return fmt.Errorf("%w: Sentinel.Username %q is set without a Password", ErrInvalid, c.Username)
	}
	for _, a := range c.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("%w: sentinel address %q is not host:port", ErrInvalid, a)
		}
	}
	return nil
}

// sentinelDialer dials the master the sentinels name, and tells when they
// name another one. One per server: it remembers the master it dialed.
type sentinelDialer struct {
	cfg          SentinelConfig
	sentinelOpts []redis.DialOption
	opts         []redis.DialOption
	mu           sync.Mutex
	current      string // the master dialed last
}

// dialer returns a sentinel dialer for one server.
func (c *SentinelConfig) dialer(rc RedisConfig, opts []redis.DialOption) *sentinelDialer {
	d := &sentinelDialer{cfg: *c, opts: opts}
	d.cfg.Addrs = append([]string(nil), c.Addrs...)
	d.sentinelOpts = []redis.DialOption{
		redis.DialConnectTimeout(rc.ConnectTimeout), redis.DialReadTimeout(rc.ReadTimeout),
		redis.DialWriteTimeout(rc.WriteTimeout),
	}
	if c.Password != "" {
		d.sentinelOpts = append(d.sentinelOpts, redis.DialPassword(c.Password), redis.DialUsername(c.Username))
	}
	return d
}

// dial asks the sentinels for the current master, dials it and checks that
// it is a master: after a failover, a sentinel that has not caught up may
// still name the old one.
func (d *sentinelDialer) dial(ctx context.Context) (redis.Conn, error) {
	addr, err := d.cfg.master(ctx, d.sentinelOpts)
	if err != nil {
		return nil, err
	}
	conn, err := redis.DialContext(ctx, "tcp", addr, d.opts...)
	if err != nil {
		return nil, fmt.Errorf("master %q at %s: %w", d.cfg.MasterName, addr, err)
	}
	if err := checkMaster(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("master %q at %s: %w", d.cfg.MasterName, addr, err)
	}
	d.mu.Lock()
	d.current = addr
	d.mu.Unlock()
	return conn, nil
}

// stale reports why the connection should go: a sentinel names another
// master. After a forced failover the old master goes on accepting writes
// for a while, which would be lost. When no sentinel answers, the working
// connection stays.
func (d *sentinelDialer) stale(ctx context.Context) string {
	addr, err := d.cfg.master(ctx, d.sentinelOpts)
	d.mu.Lock()
	current := d.current
	d.mu.Unlock()
	if err != nil || addr == current {
		return ""
	}
	return fmt.Sprintf("the sentinels name %s the master of %q now, not %s", addr, d.cfg.MasterName, current)
}

// master asks the sentinels, in order, for the master's address.
func (c *SentinelConfig) master(ctx context.Context, opts []redis.DialOption) (string, error) {
	var errs []error
	for _, s := range c.Addrs {
		addr, err := askSentinel(ctx, s, c.MasterName, opts)
		if err == nil {
			return addr, nil
		}
		errs = append(errs, fmt.Errorf("sentinel %s: %w", s, err))
		if ctx.Err() != nil {
			break
		}
	}
	return "", fmt.Errorf("no sentinel named the master %q: %w", c.MasterName, errors.Join(errs...))
}

func askSentinel(ctx context.Context, sentinel, name string, opts []redis.DialOption) (string, error) {
	conn, err := redis.DialContext(ctx, "tcp", sentinel, opts...)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	reply, err := redis.Strings(conn.Do("SENTINEL", "get-master-addr-by-name", name))
	switch {
	case errors.Is(err, redis.ErrNil):
		return "", fmt.Errorf("it monitors no master named %q", name)
	case err != nil:
		return "", err
	case len(reply) != 2:
		return "", fmt.Errorf("%w: SENTINEL get-master-addr-by-name replied %d values", ErrBadReply, len(reply))
	}
	return net.JoinHostPort(reply[0], reply[1]), nil
}

// checkMaster fails unless ROLE says master. A user who may not run ROLE is
// trusted to have been sent to the master.
func checkMaster(conn redis.Conn) error {
	reply, err := redis.Values(conn.Do("ROLE"))
	var rerr redis.Error
	switch {
	case errors.As(err, &rerr):
		return nil
	case err != nil:
		return err
	case len(reply) == 0:
		return fmt.Errorf("%w: empty ROLE reply", ErrBadReply)
	}
	if role, _ := redis.String(reply[0], nil); !strings.EqualFold(role, "master") {
		return fmt.Errorf("it is a %s, not the master (a failover is under way)", role)
	}
	return nil
}
