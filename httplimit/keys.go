package httplimit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// KeyFunc returns the key that a request is counted under: requests with the
// same key share one limit. The middleware prepends Config.IDPrefix to it.
//
// An error, or an empty key, means the request cannot be attributed to a
// client: the middleware answers it through Config.ErrorHandler with an
// error wrapping [ErrNoKey] (by default 400 Bad Request) and never lets it
// through unlimited, since a client could otherwise escape its limit by
// leaving out whatever the key is made of. Use [FirstOf] to fall back to
// another key instead.
type KeyFunc func(r *http.Request) (string, error)

// DefaultProxyHeader is the header that ClientIP reads behind a trusted
// proxy.
const DefaultProxyHeader = "X-Forwarded-For"

// ClientIP keys requests by the client's IP address: the IP of
// r.RemoteAddr, the direct peer. When that peer is inside one of
// trustedProxies, the client is instead taken from the X-Forwarded-For header
// that the proxies append to: the right-most address in it that is not in a
// trusted prefix. Addresses to the left of that one were written by the
// client and are never used, so a client cannot choose its own key by sending
// a forged X-Forwarded-For.
//
// With no trusted proxies (nil), headers are never read. The key is
// "ip:<address>", IPv4-mapped IPv6 addresses are keyed as IPv4 and zones are
// dropped. Every IPv6 address is its own key; see [ClientIPConfig.GroupIPv6]
// to key IPv6 clients by their /64, and [ClientIPConfig.Header] for proxies
// that set Forwarded, X-Real-IP or another header.
//
// ClientIP returns an error when RemoteAddr is not an IP address, as for a
// server listening on a unix socket: behind such a proxy, key requests by the
// header it sets with a KeyFunc of your own.
func ClientIP(trustedProxies []netip.Prefix) KeyFunc {
	return ClientIPWith(ClientIPConfig{TrustedProxies: trustedProxies})
}

// ClientIPConfig configures [ClientIPWith]. The zero value is ClientIP(nil):
// the direct peer's address, no header read.
type ClientIPConfig struct {
	// TrustedProxies are the networks of your own reverse proxies and load
	// balancers. A header is read only when the direct peer is inside one of
	// them, and the client is the right-most address of the header that is
	// not. When every address is trusted, the left-most one is the client.
	// List only proxies that append to (or overwrite) Header; never trust
	// the whole internet, or clients pick their own keys.
	TrustedProxies []netip.Prefix

	// Header is the one header your trusted proxies set; default
	// X-Forwarded-For. "Forwarded" is parsed as RFC 7239 (its for=
	// parameters); any other header, such as X-Real-IP, True-Client-IP or
	// CF-Connecting-IP, as a comma-separated list of addresses, which may be
	// a single one. Several header lines are read as one list, in order.
	//
	// Only this header is read: a proxy that appends to X-Forwarded-For
	// usually passes a Forwarded or X-Real-IP header from the client through
	// untouched, so reading several headers would let clients forge one of
	// them. An entry that is not an address ("unknown", an obfuscated
	// RFC 7239 node, garbage) ends the walk: the client is then the last
	// address read to its right, a trusted proxy.
	Header string

	// GroupIPv6 keys IPv6 clients by their /64 network, "ip:2001:db8:1:2::/64",
	// instead of by their full address. A single host usually holds a whole
	// /64 and can switch addresses inside it at will, so per-address limits
	// are easy to escape over IPv6; the cost is that hosts sharing a /64
	// share a limit. IPv4 clients are always keyed by their address.
	GroupIPv6 bool
}

// ClientIPWith is [ClientIP] with more choices: which header trusted proxies
// set, and IPv6 grouping.
func ClientIPWith(cfg ClientIPConfig) KeyFunc {
	c := ipKey{
		trusted:   append([]netip.Prefix(nil), cfg.TrustedProxies...),
		header:    http.CanonicalHeaderKey(cfg.Header),
		groupIPv6: cfg.GroupIPv6,
	}
	if c.header == "" {
		c.header = DefaultProxyHeader
	}
	for i, p := range c.trusted {
		// Compare unmapped addresses with unmapped, masked prefixes.
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		c.trusted[i] = p.Masked()
	}
	return c.key
}

type ipKey struct {
	trusted   []netip.Prefix
	header    string
	groupIPv6 bool
}

func (c ipKey) key(r *http.Request) (string, error) {
	a, err := c.client(r)
	if err != nil {
		return "", err
	}
	if c.groupIPv6 && a.Is6() {
		return "ip:" + netip.PrefixFrom(a, 64).Masked().String(), nil
	}
	return "ip:" + a.String(), nil
}

// client returns the client's address, unmapped and without a zone.
func (c ipKey) client(r *http.Request) (netip.Addr, error) {
	peer, ok := parseNode(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, fmt.Errorf("httplimit: RemoteAddr %q is not an IP address", r.RemoteAddr)
	}
	if !c.isTrusted(peer) {
		return peer, nil
	}
	var hops []string
	if c.header == "Forwarded" {
		hops = forwardedFor(r.Header.Values(c.header))
	} else {
		hops = splitList(r.Header.Values(c.header))
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseNode(hops[i])
		if !ok {
			break
		}
		client = a
		if !c.isTrusted(a) {
			break
		}
	}
	return client, nil
}

func (c ipKey) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseNode parses an address as peers and proxies write it: "ip",
// "ip:port", "[ipv6]" or "[ipv6]:port". It returns the address unmapped and
// without a zone.
func parseNode(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		switch {
		case perr == nil:
			a = ap.Addr()
		case len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']':
			if a, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil {
				return netip.Addr{}, false
			}
		default:
			return netip.Addr{}, false
		}
	}
	return a.Unmap().WithZone(""), true
}

// splitList returns the comma-separated entries of the header lines, in
// order.
func splitList(lines []string) []string {
	var out []string
	for _, l := range lines {
		for e := range strings.SplitSeq(l, ",") {
			out = append(out, strings.TrimSpace(e))
		}
	}
	return out
}

// forwardedFor returns the for= node of each element of RFC 7239 Forwarded
// header lines, in order; "" for an element without one (which stops the
// walk as "unknown" would).
func forwardedFor(lines []string) []string {
	var out []string
	for _, l := range lines {
		for _, elem := range splitQuoted(l, ',') {
			node := ""
			for _, pair := range splitQuoted(elem, ';') {
				name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(strings.TrimSpace(name), "for") {
					node = unquote(strings.TrimSpace(value))
					break
				}
			}
			out = append(out, node)
		}
	}
	return out
}

// splitQuoted splits s at sep outside double-quoted strings.
func splitQuoted(s string, sep byte) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++ // the escaped byte
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unquote returns the content of an RFC 7230 quoted-string, or s as it is
// when it is a token.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		if s[i] == '\\' && i+1 < len(s)-1 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Header keys requests by the value of the request header name, such as an
// API key header: the key is "header:<Name>:<hash>", where hash is the first
// 128 bits of the SHA-256 of the value, in hex. The value is hashed because
// such headers often carry secrets, which do not belong in Redis key names,
// and because the client chooses the value and so its length.
//
// A missing or empty header is an error, so the request is answered 400 Bad
// Request by default (see [KeyFunc]); FirstOf(Header(name), ClientIP(nil))
// limits requests without the header by client IP instead. When the header
// is repeated, its first value is used.
//
// Header panics if name is empty, as http.Handle does for an empty pattern:
// that is a mistake in the program, not in a request.
func Header(name string) KeyFunc {
	if name == "" {
		panic("httplimit: Header needs a header name")
	}
	name = http.CanonicalHeaderKey(name)
	return func(r *http.Request) (string, error) {
		v := r.Header.Get(name)
		if v == "" {
			return "", fmt.Errorf("httplimit: missing header %s", name)
		}
		sum := sha256.Sum256([]byte(v))
		return "header:" + name + ":" + hex.EncodeToString(sum[:16]), nil
	}
}

// FirstOf returns a KeyFunc that tries keys in order and returns the first
// key found. When none is, it returns their errors joined. The built-in key
// functions start their keys differently ("ip:", "header:"), so keys of
// different kinds never share a limit.
func FirstOf(keys ...KeyFunc) KeyFunc {
	keys = append([]KeyFunc(nil), keys...)
	return func(r *http.Request) (string, error) {
		var errs []error
		for _, k := range keys {
			key, err := k(r)
			if err == nil && key != "" {
				return key, nil
			}
			if err == nil {
				err = errEmptyKey
			}
			errs = append(errs, err)
		}
		if len(errs) == 0 {
			return "", errors.New("httplimit: FirstOf without any KeyFunc")
		}
		return "", errors.Join(errs...)
	}
}
