package server

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis/protocol"
)

// A check of one limit of each kind but the leaky bucket, at Now 1500.
func testCheck() protocol.Check {
	return protocol.Check{Now: 1500, Limits: []protocol.CheckLimit{
		{Hammer6: true, Policy: protocol.Policy{ScaleMs: 1000, Limit: 2}, ID: "u", Cost: 1},
		{Policy: protocol.Policy{Algorithm: protocol.FixWindow, Prefix: "P", ScaleMs: 1000, Limit: 3}, ID: "u", Cost: 2, Shadow: true},
		{Policy: protocol.Policy{Algorithm: protocol.SlidingWindow, Prefix: "P", ScaleMs: 10_000, Limit: 5}, ID: "u", Cost: 1},
		{Policy: protocol.Policy{Algorithm: protocol.TokenBucket, Prefix: "P", Limit: 4, Rate: 2}, ID: "u", Cost: 1},
	}}
}

// testCheckReply answers testCheck: allowed, denied for 500 ms, allowed,
// denied for good.
var testCheckReply = []any{
	[]any{int64(1), int64(0)}, []any{int64(4), int64(500)}, []any{int64(1), int64(0)}, []any{int64(3), int64(-1)},
}

func TestCheckIsOneRunOfTheCheckScript(t *testing.T) {
	conn := &fakeConn{do: func(cmd string, args ...any) (any, error) {
		if cmd == "PING" {
			return "PONG", nil
		}
		return testCheckReply, nil
	}}
	h := run(t, nil, conn)
	h.connected(t)
	c := testCheck()
	got, err := h.s.Check(context.Background(), c, false)
	require.NoError(t, err)
	assert.Equal(t, []protocol.HitReply{
		{Allowed: true, Count: 1}, {Count: 4, RetryAfterMs: 500}, {Allowed: true, Count: 1}, {Count: 3, RetryAfterMs: protocol.Never},
	}, got.Decisions)
	c.AllOrNothing = true
	_, err = h.s.Check(context.Background(), c, false)
	require.NoError(t, err)
	sha := checkScript.sha.(string)
	limits := "0 0 1 2 500 1 1 2 3 2000 2 0 1 5 10 4 0 1 4 2"
	assert.Equal(t, []string{
		"PING",
		"EVALSHA " + sha + " 4 Hammer:Redis:u:1 P:u:1 P:u:10000 P:u each  1500 61 " + limits,
		"EVALSHA " + sha + " 4 Hammer:Redis:u:1 P:u:1 P:u:10000 P:u all  1500 61 " + limits,
	}, conn.commands(), "keys, mode, Redis TIME, Now, the Hammer 6 TTL, then kind, shadow, cost and two numbers per limit")
	assert.EqualValues(t, 2, h.s.Stats().Calls.Check)
}

func TestCheckGoesAloneInAFlight(t *testing.T) {
	g := newGate()
	conn := &fakeConn{do: func(cmd string, args ...any) (any, error) {
		if len(args) > 0 && args[0] == checkScript.sha {
			return testCheckReply, nil
		}
		return okDo(cmd, args...)
	}}
	conn.beforeSend = holdFirst(is(g))
	h := run(t, nil, conn)
	h.connected(t)
	errs := queueBehind(t, h, g, []protocol.Request{countHit("a"), testCheck(), countHit("b"), countHit("a")})
	for _, err := range errs {
		require.NoError(t, err)
	}
	cmds := conn.commands()
	require.Len(t, cmds, 4, "PING, first, one multi-key run for the hits, the check: %q", cmds)
	assert.Contains(t, cmds[2], fmt.Sprint(multiKeySHA))
	assert.Contains(t, cmds[3], fmt.Sprint(checkScript.sha))
}

func TestCheckOnRedisBefore7FailsUnsent(t *testing.T) {
	conn := &fakeConn{do: okDo, info: "# Server\r\nredis_version:6.2.14\r\n"}
	h := run(t, nil, conn)
	h.connected(t)
	c := testCheck()
	c.Limits = c.Limits[:1] // Hammer 6 alone: the script is Hammer 7's still
	_, err := h.s.Check(context.Background(), c, false)
	assert.ErrorIs(t, err, protocol.ErrUnsupported)
	assert.ErrorContains(t, err, "6.2.14")
	assert.Equal(t, []string{"PING"}, conn.commands(), "nothing sent")
}

func TestCheckOddRepliesAreErrors(t *testing.T) {
	pair := func(a, b any) any { return []any{a, b} }
	ok := pair(int64(1), int64(0))
	for _, reply := range []any{
		nil, int64(1), []byte("x"), []any{}, []any{ok, ok, ok}, []any{ok, ok, ok, ok, ok},
		[]any{ok, ok, ok, int64(1)}, []any{ok, ok, ok, []any{int64(1)}}, []any{ok, ok, ok, []any{int64(1), int64(0), int64(0)}},
		[]any{ok, ok, ok, pair([]byte("1"), int64(0))}, []any{ok, ok, ok, pair(int64(1), nil)},
		[]any{ok, ok, ok, pair(int64(1), int64(-2))}, []any{ok, ok, ok, redis.Error("ERR x")},
	} {
		conn := &fakeConn{do: func(cmd string, args ...any) (any, error) {
			if cmd == "PING" {
				return "PONG", nil
			}
			return reply, nil
		}}
		h := run(t, nil, conn)
		h.connected(t)
		_, err := h.s.Check(context.Background(), testCheck(), false)
		assert.ErrorIs(t, err, protocol.ErrBadReply, "reply %#v", reply)
		h.s.Stop()
	}
}

func TestCheckAfterNoScriptGoesAgainAsEval(t *testing.T) {
	conn := &fakeConn{do: func(cmd string, args ...any) (any, error) {
		switch cmd {
		case "PING":
			return "PONG", nil
		case "EVALSHA":
			return nil, redis.Error("NOSCRIPT No matching script. Please use EVAL.")
		}
		return testCheckReply, nil
	}}
	h := run(t, nil, conn)
	h.connected(t)
	got, err := h.s.Check(context.Background(), testCheck(), false)
	require.NoError(t, err)
	assert.Len(t, got.Decisions, 4)
	cmds := conn.commands()
	require.Len(t, cmds, 3)
	assert.True(t, strings.HasPrefix(cmds[2], "EVAL "+CheckLua), "sent again with the source: %.40q", cmds[2])
}

func TestCheckOnABrokenConnectionIsNeverResent(t *testing.T) {
	conn := &fakeConn{}
	conn.do = func(cmd string, args ...any) (any, error) {
		if cmd == "PING" {
			return "PONG", nil
		}
		return nil, conn.breakWith(io.ErrUnexpectedEOF)
	}
	h := run(t, nil, conn)
	h.connected(t)
	_, err := h.s.Check(context.Background(), testCheck(), false)
	assert.ErrorIs(t, err, protocol.ErrDisconnected, "written: the outcome is unknown")
	assert.ErrorIs(t, <-h.errc, io.ErrUnexpectedEOF)
	assert.Equal(t, 1, conn.sentWith("EVALSHA"), "sent once, never again")
}

func TestCheckInvalidIsRefusedUnsent(t *testing.T) {
	conn := &fakeConn{do: okDo}
	h := run(t, nil, conn)
	h.connected(t)
	fix := protocol.Policy{Algorithm: protocol.FixWindow, Prefix: "P", ScaleMs: 1000, Limit: 3}
	leaky := protocol.Policy{Algorithm: protocol.LeakyBucket, Prefix: "P", Limit: 3, Rate: 1}
	token := leaky
	token.Algorithm = protocol.TokenBucket
	for _, tc := range []struct {
		name   string
		limits []protocol.CheckLimit
	}{
		{"no limit", nil},
		{"a cost of 0", []protocol.CheckLimit{{Policy: fix, ID: "u"}}},
		// A bucket's key "P:u:1" is the fix window's key of id "u" at 1500.
		{"one key as two types", []protocol.CheckLimit{{Policy: fix, ID: "u", Cost: 1}, {Policy: leaky, ID: "u:1", Cost: 1}}},
		{"a Hammer 6 limit on a Hammer 7 key", []protocol.CheckLimit{
			{Policy: protocol.Policy{Algorithm: protocol.FixWindow, Prefix: "Hammer:Redis", ScaleMs: 1000, Limit: 1}, ID: "u", Cost: 1},
			{Hammer6: true, Policy: protocol.Policy{ScaleMs: 1000, Limit: 1}, ID: "u", Cost: 1},
		}},
	} {
		_, err := h.s.Check(context.Background(), protocol.Check{Now: 1500, Limits: tc.limits}, false)
		assert.ErrorIs(t, err, protocol.ErrInvalid, tc.name)
	}
	// Leaky and token buckets keep the same fields: one key may serve both.
	_, err := h.s.Check(context.Background(), protocol.Check{Now: 1500, Limits: []protocol.CheckLimit{
		{Policy: leaky, ID: "u", Cost: 1}, {Policy: token, ID: "u", Cost: 1}}}, false)
	assert.ErrorIs(t, err, protocol.ErrBadReply, "sent: okDo's reply is no check's")
	assert.Equal(t, 1, conn.sentWith("EVALSHA"))
	st := h.s.Stats()
	assert.EqualValues(t, 4, st.Errors.Invalid)
	assert.EqualValues(t, 5, st.Calls.Check)
}

func TestCheckKeys(t *testing.T) {
	c := testCheck()
	layout := protocol.Layout{Prefix: "H:", HashTag: true}
	var got []string
	for _, l := range c.Limits {
		got = append(got, CheckKey(layout, c.Now, l))
	}
	assert.Equal(t, []string{"H:{u}:1", "P:u:1", "P:u:10000", "P:u"}, got)
}
