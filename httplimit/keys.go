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
	// RFC 7239 node, garbage, an entry over 256 bytes) ends the walk: the
	// client is then the last address read to its right, a trusted proxy.
	// At most 32 entries are read, from the right, so a longer chain of
	// trusted addresses is keyed by the 32nd from the right. A long header
	// costs no memory: its entries are read where they lie, never copied.
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

// maxHops bounds the header entries read, from the right: a chain of more
// trusted proxies than that is keyed by the trusted address read last, as
// when every entry is trusted. The entries are walked where they lie in the
// header, never split into a list, so a long header costs no memory.
const maxHops = 32

// maxNodeBytes bounds one comma-separated entry: a longer one is not an
// address, and ends the walk. The longest address with a port and a zone,
// spaces around it, takes well under that.
const maxNodeBytes = 256

// client returns the client's address, unmapped and without a zone.
func (c ipKey) client(r *http.Request) (netip.Addr, error) {
	peer, ok := parseNode(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, fmt.Errorf("httplimit: RemoteAddr %q is not an IP address", r.RemoteAddr)
	}
	if !c.isTrusted(peer) {
		return peer, nil
	}
	lines := r.Header.Values(c.header)
	if c.header == "Forwarded" {
		return c.walkForwarded(peer, lines), nil
	}
	return c.walkList(peer, lines), nil
}

// step reads one hop: it returns the client so far and whether to read the
// next hop to the left.
func (c ipKey) step(client netip.Addr, node string) (netip.Addr, bool) {
	a, ok := parseNode(node)
	if !ok {
		return client, false
	}
	return a, c.isTrusted(a)
}

// walkList walks the comma-separated entries of the header lines from the
// right, the last line first, from the trusted peer client, and returns the
// client: the first untrusted address, else the last address read. It reads
// at most maxHops entries of at most maxNodeBytes each, without allocating.
func (c ipKey) walkList(client netip.Addr, lines []string) netip.Addr {
	hops := 0
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		for {
			if hops == maxHops {
				return client
			}
			hops++
			// The last entry of l, looked for in its last bytes only.
			lo := max(len(l)-maxNodeBytes-1, 0)
			j := strings.LastIndexByte(l[lo:], ',')
			entry, more := l, false
			if j >= 0 {
				entry, more = l[lo+j+1:], true
			}
			if len(entry) > maxNodeBytes {
				return client
			}
			var next bool
			if client, next = c.step(client, entry); !next {
				return client
			}
			if !more {
				break
			}
			l = l[:lo+j]
		}
	}
	return client
}

// walkForwarded is walkList for RFC 7239 Forwarded header lines, whose
// elements may hold quoted commas and so can only be told apart from the
// left: it reads the elements in order, without allocating, keeping the
// for= nodes of the last maxHops, then walks those from the right. An
// element without a for= node ends the walk, as "unknown" would.
func (c ipKey) walkForwarded(client netip.Addr, lines []string) netip.Addr {
	var last [maxHops]string // the for= values, ring-indexed by element number
	n := 0
	for _, l := range lines {
		for rest, more := l, true; more; n++ {
			var elem string
			elem, rest, more = cutQuoted(rest, ',')
			last[n%maxHops] = forValue(elem)
		}
	}
	for k := range min(n, maxHops) {
		var next bool
		if client, next = c.step(client, unquote(last[(n-1-k)%maxHops])); !next {
			break
		}
	}
	return client
}

// forValue returns the value of the for= parameter of a Forwarded element,
// as written (maybe quoted); "" when it has none.
func forValue(elem string) string {
	for rest, more := elem, true; more; {
		var pair string
		pair, rest, more = cutQuoted(rest, ';')
		name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(strings.TrimSpace(name), "for") {
			return strings.TrimSpace(value)
		}
	}
	return ""
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

// cutQuoted cuts s at the first sep outside double-quoted strings, as
// strings.Cut does.
func cutQuoted(s string, sep byte) (before, after string, found bool) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++ // the escaped byte
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// unquote returns the content of an RFC 7230 quoted-string, or s as it is
// when it is a token.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	if !strings.Contains(s, "\\") {
		return s[1 : len(s)-1]
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
