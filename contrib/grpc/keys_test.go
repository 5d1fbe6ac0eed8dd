package hammergrpc_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	hammergrpc "github.com/hammer-go/hammerredis/contrib/grpc"
)

func withPeer(a net.Addr) context.Context {
	return peer.NewContext(context.Background(), &peer.Peer{Addr: a})
}

func TestPeerIP(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 5000}, "ip:203.0.113.7"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:203.0.113.7"), Port: 5000}, "ip:203.0.113.7"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443}, "ip:2001:db8::1"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 443, Zone: "eth0"}, "ip:fe80::1"},
		{&net.UDPAddr{IP: net.ParseIP("198.51.100.1"), Port: 53}, "ip:198.51.100.1"},
		{&net.UDPAddr{IP: net.ParseIP("fe80::2"), Port: 53, Zone: "eth1"}, "ip:fe80::2"},
	} {
		keys, err := hammergrpc.PeerIP(withPeer(tc.addr), "/s/M")
		if err != nil || len(keys) != 1 || keys[0] != tc.want {
			t.Errorf("%v: %q, %v; want %q", tc.addr, keys, err, tc.want)
		}
	}
	for _, ctx := range []context.Context{
		context.Background(),
		withPeer(nil),
		withPeer(&net.UnixAddr{Name: "@", Net: "unix"}),
		withPeer(&net.TCPAddr{}),
	} {
		if keys, err := hammergrpc.PeerIP(ctx, "/s/M"); err == nil {
			t.Errorf("%v: %q, want an error", ctx, keys)
		}
	}
}

func TestMetadata(t *testing.T) {
	sum := sha256.Sum256([]byte("secret-1"))
	want := "md:x-api-key:" + hex.EncodeToString(sum[:16])
	key := hammergrpc.Metadata("X-API-Key")
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("x-api-key", "secret-1", "x-api-key", "secret-2"))
	if keys, err := key(ctx, "/s/M"); err != nil || len(keys) != 1 || keys[0] != want {
		t.Errorf("%q, %v; want [%q]: the first value, hashed", keys, err, want)
	}
	for _, md := range []metadata.MD{nil, metadata.Pairs("x-api-key", ""), metadata.Pairs("x-api-keys", "secret-1")} {
		ctx := metadata.NewIncomingContext(context.Background(), md)
		if keys, err := key(ctx, "/s/M"); err == nil || !strings.Contains(err.Error(), `"x-api-key"`) {
			t.Errorf("%v: %q, %v; want an error naming the metadata", md, keys, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Metadata(\"\") did not panic")
		}
	}()
	hammergrpc.Metadata("")
}

func TestFirstOf(t *testing.T) {
	key := hammergrpc.FirstOf(
		func(context.Context, string) ([]string, error) { return []string{""}, nil }, // an empty key counts as none
		hammergrpc.Metadata("x-api-key"),
		hammergrpc.PeerIP,
	)
	ctx := withPeer(&net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 5000})
	if keys, err := key(ctx, "/s/M"); err != nil || len(keys) != 1 || keys[0] != "ip:203.0.113.7" {
		t.Errorf("without a key: %q, %v; want the peer's", keys, err)
	}
	ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("x-api-key", "203.0.113.7"))
	if keys, err := key(ctx, "/s/M"); err != nil || len(keys) != 1 || !strings.HasPrefix(keys[0], "md:x-api-key:") {
		t.Errorf("with a key: %q, %v; want the key's, apart from any address", keys, err)
	}
	_, err := key(context.Background(), "/s/M")
	if err == nil || !strings.Contains(err.Error(), "empty key") || !strings.Contains(err.Error(), "x-api-key") ||
		!strings.Contains(err.Error(), "no peer") {
		t.Errorf("none: %v, want every error", err)
	}
	if _, err := hammergrpc.FirstOf()(ctx, "/s/M"); err == nil {
		t.Error("FirstOf(): no error")
	}
}

func TestSkipMethods(t *testing.T) {
	methods := []string{"/grpc.health.v1.Health/Check"}
	skip := hammergrpc.SkipMethods(methods...)
	methods[0] = "/changed/Later"
	if !skip(context.Background(), "/grpc.health.v1.Health/Check") || skip(context.Background(), "/grpc.health.v1.Health/Watch") ||
		skip(context.Background(), "/changed/Later") {
		t.Error("SkipMethods skips the wrong methods")
	}
}
