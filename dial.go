package hammerredis

import (
	"context"
	"crypto/tls"
	"net"
	"time"
)

// tlsDialer returns a dial function for redigo that opens the TCP connection
// and runs the TLS handshake within ctx, bounded by timeout. redigo's own TLS
// handshake ignores ctx: against a server that accepts and never answers, a
// Stop would wait the whole ConnectTimeout.
func tlsDialer(cfg *tls.Config, timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: timeout, KeepAlive: 5 * time.Minute}
		raw, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c := cfg.Clone()
		if c.ServerName == "" {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				c.ServerName = host
			}
		}
		conn := tls.Client(raw, c)
		hctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := conn.HandshakeContext(hctx); err != nil {
			raw.Close()
			if ctx.Err() == nil && hctx.Err() != nil {
				return nil, tlsHandshakeTimeout{}
			}
			return nil, err
		}
		return conn, nil
	}
}

// tlsHandshakeTimeout is the error of a handshake that took longer than
// ConnectTimeout.
type tlsHandshakeTimeout struct{}

func (tlsHandshakeTimeout) Error() string   { return "TLS handshake timeout" }
func (tlsHandshakeTimeout) Timeout() bool   { return true }
func (tlsHandshakeTimeout) Temporary() bool { return true }
