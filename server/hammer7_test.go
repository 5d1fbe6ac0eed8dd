package server

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis/protocol"
)

func tokenHit(id string) protocol.Hit {
	return protocol.Hit{Policy: protocol.Policy{Algorithm: protocol.TokenBucket, Prefix: "P", Limit: 5, Rate: 1}, ID: id, Cost: 1}
}

func TestHammer7CallsOnRedisBefore7FailUnsent(t *testing.T) {
	conn := &fakeConn{do: okDo, info: "# Server\r\nredis_version:6.2.14\r\nredis_mode:standalone\r\n"}
	h := run(t, nil, conn)
	h.connected(t)
	_, err := h.s.Hit(context.Background(), tokenHit("a"), false)
	assert.ErrorIs(t, err, protocol.ErrUnsupported)
	assert.ErrorContains(t, err, "6.2.14")
	_, err = h.s.Get(context.Background(), protocol.Get{Policy: tokenHit("a").Policy, ID: "a"}, false)
	assert.ErrorIs(t, err, protocol.ErrUnsupported)
	n, err := h.s.CountHit(context.Background(), protocol.BucketKey{Bucket: 1, ID: "a"}, 1, 1)
	require.NoError(t, err, "Hammer 6's calls still run")
	assert.EqualValues(t, 1, n)
	assert.Equal(t, []string{"PING", "EVALSHA " + countHitSHA.(string) + " 1 Hammer:Redis:a:1 1 1 61"}, conn.commands(),
		"nothing of Hammer 7's was sent")
}

func TestHammer7RunsWhenTheVersionIsUnknownOrRecent(t *testing.T) {
	for _, info := range []string{"", "redis_version:7.0.15\r\n", "redis_version:8.2.1\r\n"} {
		conn := &fakeConn{info: info, do: func(cmd string, args ...any) (any, error) {
			return int64(4), nil // allowed, 4 tokens left
		}}
		h := run(t, nil, conn)
		h.connected(t)
		got, err := h.s.Hit(context.Background(), tokenHit("a"), false)
		require.NoError(t, err, "INFO %q", info)
		assert.Equal(t, protocol.HitReply{Allowed: true, Count: 4}, got)
		h.s.Stop()
	}
}

func TestHammer7OddRepliesAreErrors(t *testing.T) {
	for _, reply := range []any{
		[]byte("3"), []any{int64(1)}, []any{int64(1), int64(2), int64(0)}, []any{[]byte("2"), int64(5)},
		[]any{int64(2), int64(0)}, []any{int64(2), int64(-7)}, nil,
	} {
		conn := &fakeConn{do: func(cmd string, args ...any) (any, error) { return reply, nil }}
		h := run(t, nil, conn)
		h.connected(t)
		_, err := h.s.Hit(context.Background(), tokenHit("a"), false)
		assert.ErrorIs(t, err, protocol.ErrBadReply, "reply %#v", reply)
		h.s.Stop()
	}
}

func TestFixWindowHitsOnOneKeyAreCoalesced(t *testing.T) {
	g := newGate()
	var mu sync.Mutex
	count := int64(0)
	var replies []protocol.HitReply
	conn := &fakeConn{}
	conn.do = func(cmd string, args ...any) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case cmd == "PING" || strings.Contains(fmt.Sprint(args...), ":first:"):
			return int64(1), nil
		case cmd == "GET":
			return nil, nil
		case args[0] == scripts7[protocol.FixWindow].sha:
			count += args[4].(int64)
			return count, nil
		default:
			return int64(9), nil
		}
	}
	conn.beforeSend = holdFirst(is(g))
	// On a cluster node, where no multi-key run goes out (multi7_test.go).
	h := run(t, func(c *Config) { c.Cluster = true }, conn)
	h.connected(t)
	fix := protocol.Policy{Algorithm: protocol.FixWindow, Prefix: "P", ScaleMs: 1000, Limit: 4}
	hot := func(cost int64) protocol.Request {
		return protocol.Hit{Policy: fix, ID: "hot", Cost: cost, Now: 10_250}
	}
	reqs := []protocol.Request{
		hot(1), hot(2), tokenHit("tok"), hot(3),
		protocol.Inc{Policy: fix, ID: "hot", N: 1, Now: 10_999},
		protocol.Get{Policy: fix, ID: "other", Now: 10_250},
		protocol.Hit{Policy: fix, ID: "hot", Cost: 1, Now: 11_000}, // the next window: alone
	}
	counts, errs := queueBehindCounts(t, h, g, reqs)
	for _, err := range errs {
		require.NoError(t, err)
	}
	cmds := conn.commands()
	require.Len(t, cmds, 6, "PING, first, one fix run for four calls, the token hit, GET, the next window: %q", cmds)
	assert.Contains(t, cmds[2], fmt.Sprint(scripts7[protocol.FixWindow].sha)+" 1 P:hot:10 hit 7 11000", "one INCRBY of the sum")
	assert.Equal(t, []int64{1, 3, 9, 6, 7, 0, 8}, counts, "each caller's count in queue order")

	// Each hit is judged on its own count.
	mu.Lock()
	count = 0
	mu.Unlock()
	for _, r := range []protocol.Request{hot(4), hot(1), hot(5)} {
		rep, err := h.s.do(context.Background(), r)
		require.NoError(t, err)
		replies = append(replies, rep.(protocol.HitReply))
	}
	assert.Equal(t, []protocol.HitReply{
		{Allowed: true, Count: 4}, {Count: 5, RetryAfterMs: 750}, {Count: 10, RetryAfterMs: protocol.Never},
	}, replies)
}

func TestHammer7HitOnABrokenConnectionIsNeverResent(t *testing.T) {
	conn := &fakeConn{}
	conn.do = func(cmd string, args ...any) (any, error) {
		if cmd == "PING" {
			return "PONG", nil
		}
		return nil, conn.breakWith(io.ErrUnexpectedEOF)
	}
	h := run(t, nil, conn)
	h.connected(t)
	_, err := h.s.Hit(context.Background(), tokenHit("a"), false)
	assert.ErrorIs(t, err, protocol.ErrDisconnected, "written: the outcome is unknown")
	assert.ErrorIs(t, <-h.errc, io.ErrUnexpectedEOF)
	assert.Equal(t, 1, conn.sentWith("EVALSHA"), "sent once, never again")
	_, err = h.s.Hit(context.Background(), tokenHit("a"), false)
	assert.ErrorIs(t, err, protocol.ErrClosed)
}

func TestHammer7InvalidCallsAreRefusedUnsent(t *testing.T) {
	conn := &fakeConn{do: okDo}
	h := run(t, nil, conn)
	h.connected(t)
	bad := tokenHit("a")
	bad.Policy.Rate = 0
	_, err := h.s.Hit(context.Background(), bad, false)
	assert.ErrorIs(t, err, protocol.ErrInvalid)
	_, err = h.s.Inc(context.Background(), protocol.Inc{Policy: tokenHit("a").Policy, ID: "a", N: 1}, false)
	assert.ErrorIs(t, err, protocol.ErrInvalid, "a bucket has no inc")
	_, err = h.s.Hit(context.Background(), protocol.Hit{Policy: protocol.Policy{Algorithm: protocol.SlidingWindow, Prefix: "P", ScaleMs: 999, Limit: 1}, ID: "a"}, false)
	assert.ErrorIs(t, err, protocol.ErrInvalid, "a sliding window under one second")
	assert.Equal(t, []string{"PING"}, conn.commands())
	assert.EqualValues(t, 3, h.s.Stats().Errors.Invalid)
}
