package hammerredis

import (
	"fmt"
	"log/slog"
	"net"
	"time"
)

// DefaultSentinelTimeout bounds each exchange with one sentinel (see
// SentinelConfig.Timeout).
const DefaultSentinelTimeout = 300 * time.Millisecond

// SentinelConfig points a backend at a Redis Sentinel group. The master's
// connection uses the backend's RedisConfig (password, TLS, database,
// timeouts); these fields are for the sentinels themselves.
type SentinelConfig struct {
	// Addrs are the sentinels' "host:port" addresses. They are asked all at
	// once, and the backend follows the master that most of them name.
	// Required.
	Addrs []string
	// MasterName is the name the sentinels monitor the master under.
	// Required.
	MasterName string
	// Username and Password authenticate to the sentinels, when they
	// require it (sentinel requirepass or ACL). The password never appears
	// in errors or logs.
	Username, Password string
	// Timeout bounds every exchange with one sentinel: dialing it with its
	// AUTH, then one command (SENTINEL get-master-addr-by-name, SUBSCRIBE).
	// It is apart from RedisConfig's timeouts, which are the master's: a
	// sentinel that is down or frozen costs at most this, and never on a
	// call's path. Default DefaultSentinelTimeout (300ms).
	Timeout time.Duration
}

// String describes the config with the password redacted.
func (c SentinelConfig) String() string {
	pw := ""
	if c.Password != "" {
		pw = "[redacted]"
	}
	return fmt.Sprintf("{Addrs:%v MasterName:%s Username:%s Password:%s Timeout:%v}",
		c.Addrs, c.MasterName, c.Username, pw, c.Timeout)
}

// GoString keeps the password out of %#v.
func (c SentinelConfig) GoString() string { return "hammerredis.SentinelConfig" + c.String() }

// LogValue keeps the password out of structured logs.
func (c SentinelConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

func (c *SentinelConfig) validate() error {
	switch {
	case len(c.Addrs) == 0:
		return fmt.Errorf("%w: Sentinel.Addrs is empty", ErrInvalid)
	case c.MasterName == "":
		return fmt.Errorf("%w: Sentinel.MasterName is empty", ErrInvalid)
	case c.Username != "" && c.Password == "":
		return fmt.Errorf("%w: Sentinel.Username %q is set without a Password", ErrInvalid, c.Username)
	case c.Timeout < 0:
		return fmt.Errorf("%w: Sentinel.Timeout %v is negative", ErrInvalid, c.Timeout)
	}
	for _, a := range c.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("%w: sentinel address %q is not host:port", ErrInvalid, a)
		}
	}
	return nil
}
