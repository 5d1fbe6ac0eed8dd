package hammerredis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

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

// dialer returns a dial function that asks the sentinels for the current
// master, dials it with opts and checks that it is a master: after a
// failover, a sentinel that has not caught up may still name the old one.
func (c *SentinelConfig) dialer(rc RedisConfig, opts []redis.DialOption) func(context.Context) (redis.Conn, error) {
	cfg := *c
	cfg.Addrs = append([]string(nil), c.Addrs...)
	sentinelOpts := []redis.DialOption{
		redis.DialConnectTimeout(rc.ConnectTimeout), redis.DialReadTimeout(rc.ReadTimeout),
		redis.DialWriteTimeout(rc.WriteTimeout),
	}
	if cfg.Password != "" {
		sentinelOpts = append(sentinelOpts, redis.DialPassword(cfg.Password), redis.DialUsername(cfg.Username))
	}
	return func(ctx context.Context) (redis.Conn, error) {
		addr, err := cfg.master(ctx, sentinelOpts)
		if err != nil {
			return nil, err
		}
		conn, err := redis.DialContext(ctx, "tcp", addr, opts...)
		if err != nil {
			return nil, fmt.Errorf("master %q at %s: %w", cfg.MasterName, addr, err)
		}
		if err := checkMaster(conn); err != nil {
			conn.Close()
			return nil, fmt.Errorf("master %q at %s: %w", cfg.MasterName, addr, err)
		}
		return conn, nil
	}
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
