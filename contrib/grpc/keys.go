package hammergrpc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// KeyFunc returns the keys a call is counted under: one key for every
// limit of the Checker, or one key per limit in the order of its
// Config.Limits (hammer.Checker.Check). fullMethod is the call's method,
// as in "/package.Service/Method". An error or an empty key means the
// call cannot be attributed to a client: it is refused with
// codes.InvalidArgument, never let through unlimited.
type KeyFunc func(ctx context.Context, fullMethod string) ([]string, error)

// PeerIP keys calls by the IP address of the connection's peer, without
// its port: the key is "ip:<address>", as in "ip:203.0.113.7" (an IPv4
// address mapped into IPv6 is keyed as IPv4, and zones are dropped). A peer
// that is not an IP address, such as a client on a unix socket, has no key.
// Behind a proxy every call comes from the proxy's address: key by
// [Metadata] the proxy sets instead.
func PeerIP(ctx context.Context, fullMethod string) ([]string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return nil, errors.New("hammergrpc: the call has no peer")
	}
	var ip netip.Addr
	switch a := p.Addr.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			ip = ap.Addr()
		}
	}
	if !ip.IsValid() {
		return nil, fmt.Errorf("hammergrpc: the peer %s %q is not an IP address", p.Addr.Network(), p.Addr)
	}
	return []string{"ip:" + ip.Unmap().WithZone("").String()}, nil
}

// Metadata keys calls by the first value of the incoming metadata (a
// request header) name, such as "x-api-key": the key is
// "md:<name>:<hash>", where hash is the first 128 bits of the SHA-256 of
// the value, in hex. The value is hashed because such metadata often
// carries secrets, which do not belong in Redis key names, and because the
// client chooses it and so its length. A call without the metadata, or
// with an empty value, has no key. Names are case-insensitive.
//
// Metadata panics if name is empty: that is a mistake in the program, not
// in a call.
func Metadata(name string) KeyFunc {
	if name == "" {
		panic("hammergrpc: Metadata needs a metadata name")
	}
	name = strings.ToLower(name)
	return func(ctx context.Context, _ string) ([]string, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		if v := md.Get(name); len(v) > 0 && v[0] != "" {
			sum := sha256.Sum256([]byte(v[0]))
			return []string{"md:" + name + ":" + hex.EncodeToString(sum[:16])}, nil
		}
		return nil, fmt.Errorf("hammergrpc: the call has no %q metadata", name)
	}
}

// FirstOf returns the keys of the first of fs that has keys for the call:
// FirstOf(Metadata("x-api-key"), PeerIP) keys by API key when the call has
// one, else by address. When none has, it returns their errors joined. The
// built-in key functions start their keys differently ("ip:", "md:"), so
// that a client cannot pick a key of another kind, such as another
// client's address.
func FirstOf(fs ...KeyFunc) KeyFunc {
	return func(ctx context.Context, fullMethod string) ([]string, error) {
		var errs []error
		for _, f := range fs {
			keys, err := f(ctx, fullMethod)
			if err == nil {
				if err = checkKeys(keys); err == nil {
					return keys, nil
				}
			}
			errs = append(errs, err)
		}
		if len(errs) == 0 {
			return nil, errors.New("hammergrpc: FirstOf of no KeyFunc")
		}
		return nil, errors.Join(errs...)
	}
}

// SkipMethods returns a Config.Skip that skips the calls to the given full
// methods, such as "/grpc.health.v1.Health/Check".
func SkipMethods(fullMethods ...string) func(ctx context.Context, fullMethod string) bool {
	methods := slices.Clone(fullMethods)
	return func(_ context.Context, fullMethod string) bool { return slices.Contains(methods, fullMethod) }
}

var errEmptyKey = errors.New("hammergrpc: the KeyFunc returned an empty key")

// checkKeys reports an empty key, or none.
func checkKeys(keys []string) error {
	if len(keys) == 0 || slices.Contains(keys, "") {
		return errEmptyKey
	}
	return nil
}
