package httplimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis/httplimit"
)

// request returns a GET request from remoteAddr with the given header lines.
func request(remoteAddr string, header ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remoteAddr
	for _, h := range header {
		name, value, _ := strings.Cut(h, ": ")
		r.Header.Add(name, value)
	}
	return r
}

var (
	proxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	proxy   = "10.0.0.1:40000" // a trusted peer
	client  = "203.0.113.7:51000"
)

func TestClientIP(t *testing.T) {
	tests := []struct {
		name    string
		cfg     httplimit.ClientIPConfig
		remote  string
		header  []string
		want    string
		wantErr string
	}{
		{name: "the peer", remote: client, want: "ip:203.0.113.7"},
		{name: "a peer without a port", remote: "203.0.113.7", want: "ip:203.0.113.7"},
		{name: "untrusted peer: X-Forwarded-For is ignored", remote: client,
			header: []string{"X-Forwarded-For: 198.51.100.1"}, want: "ip:203.0.113.7"},
		{name: "untrusted peer: Forwarded is ignored", remote: client,
			cfg:    httplimit.ClientIPConfig{Header: "Forwarded"},
			header: []string{"Forwarded: for=198.51.100.1"}, want: "ip:203.0.113.7"},
		{name: "no proxies trusted: headers are ignored even from a private peer", remote: proxy,
			header: []string{"X-Forwarded-For: 198.51.100.1", "X-Real-IP: 198.51.100.2"}, want: "ip:10.0.0.1"},
		{name: "trusted peer: the right-most entry", remote: proxy,
			cfg:    httplimit.ClientIPConfig{TrustedProxies: proxies},
			header: []string{"X-Forwarded-For: 1.1.1.1, 198.51.100.9"}, want: "ip:198.51.100.9"},
		{name: "trusted peer: the right-most untrusted entry", remote: proxy,
			cfg:    httplimit.ClientIPConfig{TrustedProxies: proxies},
			header: []string{"X-Forwarded-For: 1.1.1.1, 198.51.100.9, 10.0.0.2,10.9.9.9"}, want: "ip:198.51.100.9"},
		{name: "trusted peer: header lines are one list", remote: proxy,
			cfg:    httplimit.ClientIPConfig{TrustedProxies: proxies},
			header: []string{"X-Forwarded-For: 198.51.100.9", "X-Forwarded-For: 1.1.1.1, 10.0.0.2"}, want: "ip:1.1.1.1"},
		{name: "trusted peer without the header", remote: proxy,
			cfg: httplimit.ClientIPConfig{TrustedProxies: proxies}, want: "ip:10.0.0.1"},
		{name: "every hop trusted: the left-most", remote: proxy,
			cfg:    httplimit.ClientIPConfig{TrustedProxies: proxies},
			header: []string{"X-Forwarded-For: 10.0.0.5, 10.0.0.2"}, want: "ip:10.0.0.5"},
		{name: "garbage ends the walk at the last trusted hop", remote: proxy,
			cfg:    httplimit.ClientIPConfig{TrustedProxies: proxies},
			header: []string{"X-Forwarded-For: 198.51.100.9, unknown, 10.0.0.2"}, want: "ip:10.0.0.2"},
		{name: "an empty entry ends the walk", remote: proxy,
			cfg:    httplimit.ClientIPConfig{TrustedProxies: proxies},
			header: []string{"X-Forwarded-For: 198.51.100.9,"}, want: "ip:10.0.0.1"},
		{name: "entries with ports", remote: proxy,
			cfg:    httplimit.ClientIPConfig{TrustedProxies: proxies},
			header: []string{"X-Forwarded-For: 198.51.100.9:5555, [2001:db8::1]:443"}, want: "ip:2001:db8::1"},
		{name: "a client's Forwarded is ignored when proxies set X-Forwarded-For", remote: proxy,
			cfg:    httplimit.ClientIPConfig{TrustedProxies: proxies},
			header: []string{"Forwarded: for=1.1.1.1", "X-Real-IP: 1.1.1.2"}, want: "ip:10.0.0.1"},
		{name: "X-Real-IP", remote: proxy,
			cfg:    httplimit.ClientIPConfig{TrustedProxies: proxies, Header: "x-real-ip"},
			header: []string{"X-Real-IP: 198.51.100.9", "X-Forwarded-For: 1.1.1.1"}, want: "ip:198.51.100.9"},
		{name: "X-Real-IP from an untrusted peer", remote: client,
			cfg:    httplimit.ClientIPConfig{TrustedProxies: proxies, Header: "X-Real-IP"},
			header: []string{"X-Real-IP: 198.51.100.9"}, want: "ip:203.0.113.7"},
		{name: "Forwarded", remote: proxy,
			cfg: httplimit.ClientIPConfig{TrustedProxies: proxies, Header: "Forwarded"},
			header: []string{`Forwarded: for=1.1.1.1, for=192.0.2.60;proto=http;by=203.0.113.43`,
				`Forwarded: For="10.0.0.3:8080"`}, want: "ip:192.0.2.60"},
		{name: "Forwarded IPv6, quoted, with a port", remote: proxy,
			cfg:    httplimit.ClientIPConfig{TrustedProxies: proxies, Header: "Forwarded"},
			header: []string{`Forwarded: for=1.1.1.1, proto=https;for="[2001:db8:cafe::17]:4711";by="a,b"`}, want: "ip:2001:db8:cafe::17"},
		{name: "Forwarded unknown ends the walk", remote: proxy,
			cfg:    httplimit.ClientIPConfig{TrustedProxies: proxies, Header: "Forwarded"},
			header: []string{`Forwarded: for=198.51.100.9, for=unknown`}, want: "ip:10.0.0.1"},
		{name: "Forwarded obfuscated ends the walk", remote: proxy,
			cfg:    httplimit.ClientIPConfig{TrustedProxies: proxies, Header: "Forwarded"},
			header: []string{`Forwarded: for=198.51.100.9, for=10.0.0.7, for=_hidden;proto=https`}, want: "ip:10.0.0.1"},
		{name: "Forwarded element without for= ends the walk", remote: proxy,
			cfg:    httplimit.ClientIPConfig{TrustedProxies: proxies, Header: "Forwarded"},
			header: []string{`Forwarded: for=198.51.100.9, proto=https`}, want: "ip:10.0.0.1"},
		{name: "IPv6 peer", remote: "[2001:db8:1:2:a:b:c:d]:443", want: "ip:2001:db8:1:2:a:b:c:d"},
		{name: "IPv6 peer grouped by /64", remote: "[2001:db8:1:2:a:b:c:d]:443",
			cfg: httplimit.ClientIPConfig{GroupIPv6: true}, want: "ip:2001:db8:1:2::/64"},
		{name: "IPv4 is not grouped", remote: client,
			cfg: httplimit.ClientIPConfig{GroupIPv6: true}, want: "ip:203.0.113.7"},
		{name: "IPv6 client behind an IPv6 proxy, grouped", remote: "[2001:db8:ffff::1]:443",
			cfg:    httplimit.ClientIPConfig{TrustedProxies: proxies, GroupIPv6: true},
			header: []string{"X-Forwarded-For: 2001:db8:5:6:7::1"}, want: "ip:2001:db8:5:6::/64"},
		{name: "IPv4-mapped peer is IPv4", remote: "[::ffff:203.0.113.7]:1", want: "ip:203.0.113.7"},
		{name: "IPv4-mapped peer in a trusted IPv4 prefix", remote: "[::ffff:10.0.0.1]:1",
			cfg:    httplimit.ClientIPConfig{TrustedProxies: proxies},
			header: []string{"X-Forwarded-For: 198.51.100.9"}, want: "ip:198.51.100.9"},
		{name: "IPv4-mapped trusted prefix", remote: proxy,
			cfg:    httplimit.ClientIPConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}},
			header: []string{"X-Forwarded-For: 198.51.100.9"}, want: "ip:198.51.100.9"},
		{name: "zones are dropped", remote: "[fe80::1%eth0]:80", want: "ip:fe80::1"},
		{name: "a unix socket peer", remote: "@", wantErr: `RemoteAddr "@" is not an IP address`},
		{name: "no peer", remote: "", wantErr: `RemoteAddr "" is not an IP address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := httplimit.ClientIPWith(tt.cfg)(request(tt.remote, tt.header...))
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got, "ClientIPWith(%+v)(%s %q)", tt.cfg, tt.remote, tt.header)
		})
	}
}

// TestClientIPReadsAtMost32Hops: a chain of trusted addresses longer than
// the walk's bound is keyed by the 32nd address from the right, as when
// every address is trusted; a shorter one by its left-most address, and the
// first untrusted address from the right always wins within the bound.
func TestClientIPReadsAtMost32Hops(t *testing.T) {
	hops := func(n int) string {
		var b strings.Builder
		for i := n; i >= 1; i-- { // 10.0.0.n, ..., 10.0.0.1: the i-th from the right is 10.0.0.i
			fmt.Fprintf(&b, "10.0.%d.%d, ", i/256, i%256)
		}
		return strings.TrimSuffix(b.String(), ", ")
	}
	tests := []struct {
		name   string
		header string
		want   string
	}{
		{"31 trusted hops behind a client", "198.51.100.9, " + hops(31), "ip:198.51.100.9"},
		{"32 trusted hops: the left-most", hops(32), "ip:10.0.0.32"},
		{"40 trusted hops: the 32nd from the right", hops(40), "ip:10.0.0.32"},
		{"a client beyond 32 trusted hops is not read", "198.51.100.9, " + hops(32), "ip:10.0.0.32"},
	}
	for _, tt := range tests {
		for _, header := range []string{"X-Forwarded-For", "X-Real-IP", "Forwarded"} {
			t.Run(tt.name+"/"+header, func(t *testing.T) {
				value := tt.header
				if header == "Forwarded" {
					value = "for=" + strings.ReplaceAll(value, ", ", ", for=")
				}
				got, err := httplimit.ClientIPWith(httplimit.ClientIPConfig{TrustedProxies: proxies, Header: header})(
					request(proxy, header+": "+value))
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
			})
		}
	}
	// Several header lines count as one list.
	got, err := httplimit.ClientIP(proxies)(request(proxy, "X-Forwarded-For: 198.51.100.9, "+hops(20),
		"X-Forwarded-For: "+hops(20)))
	require.NoError(t, err)
	assert.Equal(t, "ip:10.0.0.12", got, "the 32nd from the right, on the first line")
}

// TestClientIPLongHeaderCostsNoMemory: a trusted peer's request with a
// 1 MiB header, of commas, of trusted addresses or of one long entry, is
// keyed in a few small allocations, not in memory growing with the header.
func TestClientIPLongHeaderCostsNoMemory(t *testing.T) {
	const size = 1 << 20
	values := map[string]string{
		"commas":          strings.Repeat(",", size),
		"trusted hops":    strings.Repeat("10.0.0.2, ", size/10),
		"untrusted hops":  strings.Repeat("198.51.100.9, ", size/14),
		"one long entry":  strings.Repeat(" ", size) + "198.51.100.9",
		"spaces, commas":  strings.Repeat(" , ", size/3),
		"Forwarded elems": strings.Repeat("for=10.0.0.2,", size/13),
	}
	for name, value := range values {
		for _, header := range []string{"X-Forwarded-For", "Forwarded"} {
			t.Run(name+"/"+header, func(t *testing.T) {
				key := httplimit.ClientIPWith(httplimit.ClientIPConfig{TrustedProxies: proxies, Header: header})
				r := request(proxy)
				r.Header.Set(header, value)
				allocs := testing.AllocsPerRun(10, func() {
					if _, err := key(r); err != nil {
						t.Fatal(err)
					}
				})
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				const runs = 10
				for range runs {
					key(r)
				}
				runtime.ReadMemStats(&after)
				perRun := (after.TotalAlloc - before.TotalAlloc) / runs
				t.Logf("%d-byte %s of %s: %.0f allocations, %d bytes per request", len(value), header, name, allocs, perRun)
				assert.LessOrEqual(t, allocs, float64(8), "allocations per request")
				assert.Less(t, perRun, uint64(64<<10), "bytes allocated per request")
			})
		}
	}
}

func TestClientIPIsClientIPWith(t *testing.T) {
	r := request(proxy, "X-Forwarded-For: 1.1.1.1, 198.51.100.9")
	got, err := httplimit.ClientIP(proxies)(r)
	require.NoError(t, err)
	assert.Equal(t, "ip:198.51.100.9", got)
	got, err = httplimit.ClientIP(nil)(r)
	require.NoError(t, err)
	assert.Equal(t, "ip:10.0.0.1", got)
}

func TestClientIPCopiesTrustedProxies(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	key := httplimit.ClientIP(trusted)
	trusted[0] = netip.MustParsePrefix("0.0.0.0/0") // the caller's slice changes later
	got, err := key(request(client, "X-Forwarded-For: 198.51.100.9"))
	require.NoError(t, err)
	assert.Equal(t, "ip:203.0.113.7", got)
}

func TestHeader(t *testing.T) {
	key := httplimit.Header("x-api-key")
	a1, err := key(request(client, "X-Api-Key: secret-a"))
	require.NoError(t, err)
	a2, err := key(request("198.51.100.1:1", "X-Api-Key: secret-a", "X-Api-Key: secret-b"))
	require.NoError(t, err)
	b, err := key(request(client, "X-Api-Key: secret-b"))
	require.NoError(t, err)

	assert.Equal(t, a1, a2, "the same value from another peer, and the first of repeated values")
	assert.NotEqual(t, a1, b)
	assert.Regexp(t, `^header:X-Api-Key:[0-9a-f]{32}$`, a1)
	assert.NotContains(t, a1, "secret", "the value is hashed, not stored")

	for _, r := range []*http.Request{request(client), request(client, "X-Api-Key: ")} {
		_, err = key(r)
		assert.ErrorContains(t, err, "missing header X-Api-Key")
	}
	assert.PanicsWithValue(t, "httplimit: Header needs a header name", func() { httplimit.Header("") })
}

func TestFirstOf(t *testing.T) {
	empty := func(*http.Request) (string, error) { return "", nil }
	key := httplimit.FirstOf(empty, httplimit.Header("X-Api-Key"), httplimit.ClientIP(nil))
	got, err := key(request(client, "X-Api-Key: k"))
	require.NoError(t, err)
	assert.Regexp(t, `^header:X-Api-Key:`, got)
	got, err = key(request(client))
	require.NoError(t, err)
	assert.Equal(t, "ip:203.0.113.7", got, "falls back to the client IP")

	_, err = key(request("@"))
	assert.ErrorContains(t, err, "empty key")
	assert.ErrorContains(t, err, "missing header X-Api-Key")
	assert.ErrorContains(t, err, "not an IP address")

	_, err = httplimit.FirstOf()(request(client))
	assert.ErrorContains(t, err, "without any KeyFunc")
}

// FuzzClientIP checks that no header makes ClientIP fail or panic, that an
// untrusted peer is always its own key, and that a trusted peer's client is
// either itself or an address from the header.
func FuzzClientIP(f *testing.F) {
	f.Add("1.1.1.1, 198.51.100.9", false)
	f.Add(`for=1.1.1.1, for="[2001:db8::1]:80";proto=https`, true)
	f.Add(`for="\"quoted\\", for=unknown,,;;=`, true)
	f.Add("[::ffff:1.2.3.4]:80, fe80::1%eth0", false)
	f.Fuzz(func(t *testing.T, header string, forwarded bool) {
		cfg := httplimit.ClientIPConfig{TrustedProxies: proxies, GroupIPv6: forwarded}
		name := "X-Forwarded-For"
		if forwarded {
			cfg.Header, name = "Forwarded", "Forwarded"
		}
		key := httplimit.ClientIPWith(cfg)
		r := request(client)
		r.Header.Set(name, header)
		got, err := key(r)
		if err != nil || got != "ip:203.0.113.7" {
			t.Fatalf("untrusted peer with %s %q: %q, %v; want the peer", name, header, got, err)
		}
		r.RemoteAddr = proxy
		got, err = key(r)
		if err != nil || !strings.HasPrefix(got, "ip:") {
			t.Fatalf("trusted peer with %s %q: %q, %v", name, header, got, err)
		}
		if _, perr := netip.ParsePrefix(got[3:]); perr != nil {
			if _, aerr := netip.ParseAddr(got[3:]); aerr != nil {
				t.Fatalf("trusted peer with %s %q: key %q holds no address", name, header, got)
			}
		}
		// Within the walk's bounds, the key is the one of splitting the
		// whole header and walking the list from the right.
		if want, ok := splitWalk(header, forwarded, forwarded); ok && got != want {
			t.Fatalf("trusted peer with %s %q: %q, want %q", name, header, got, want)
		}
	})
}

// splitWalk is a reference ClientIP(proxies) behind the trusted peer proxy,
// grouping IPv6 by /64 when group: it splits the header into its entries (for
// Forwarded, the for= nodes of its elements), then walks them from the
// right. ok is false when the header holds more than 32 entries, or an entry
// over 256 bytes: the walk reads no further than that.
func splitWalk(header string, forwarded, group bool) (key string, ok bool) {
	var nodes []string
	if forwarded {
		for _, elem := range splitQuoted(header, ',') {
			node := ""
			for _, pair := range splitQuoted(elem, ';') {
				name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(strings.TrimSpace(name), "for") {
					node = strings.TrimSpace(value)
					if len(node) >= 2 && node[0] == '"' && node[len(node)-1] == '"' {
						var b strings.Builder
						for i := 1; i < len(node)-1; i++ {
							if node[i] == '\\' && i+1 < len(node)-1 {
								i++
							}
							b.WriteByte(node[i])
						}
						node = b.String()
					}
					break
				}
			}
			nodes = append(nodes, node)
		}
	} else {
		nodes = strings.Split(header, ",")
		for _, n := range nodes {
			if len(n) > 256 {
				return "", false
			}
		}
	}
	if len(nodes) > 32 {
		return "", false
	}
	trusted := func(a netip.Addr) bool {
		for _, p := range proxies {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	parse := func(s string) (netip.Addr, bool) {
		s = strings.TrimSpace(s)
		if a, err := netip.ParseAddr(s); err == nil {
			return a.Unmap().WithZone(""), true
		}
		if ap, err := netip.ParseAddrPort(s); err == nil {
			return ap.Addr().Unmap().WithZone(""), true
		}
		if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
			if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
				return a.Unmap().WithZone(""), true
			}
		}
		return netip.Addr{}, false
	}
	client, _ := parse(proxy)
	for i := len(nodes) - 1; i >= 0; i-- {
		a, ok := parse(nodes[i])
		if !ok {
			break
		}
		client = a
		if !trusted(a) {
			break
		}
	}
	if group && client.Is6() {
		return "ip:" + netip.PrefixFrom(client, 64).Masked().String(), true
	}
	return "ip:" + client.String(), true
}

// splitQuoted splits s at sep outside double-quoted strings.
func splitQuoted(s string, sep byte) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
