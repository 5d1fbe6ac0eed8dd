package server

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis/protocol"
)

// multi7Reply answers a run of Multi7Lua from its arguments: fix-window
// hits count per key, "bad" keys fail with WRONGTYPE, and the buckets
// allow, with 9 left.
func multi7Reply(counts map[string]int64, args []any) []any {
	n := args[1].(int)
	keys, rest := args[2:2+n], args[3+n:]
	out := make([]any, n)
	for i, k := range keys {
		alg, op, a := rest[5*i], rest[5*i+1], rest[5*i+2]
		switch {
		case strings.Contains(k.(string), "bad"):
			out[i] = redis.Error("WRONGTYPE Operation against a key holding the wrong kind of value")
		case alg == 1 && op == "get":
			out[i] = nil
		case alg == 1:
			counts[k.(string)] += a.(int64)
			out[i] = counts[k.(string)]
		default:
			out[i] = int64(9)
		}
	}
	return out
}

func TestHammer7CallsOfAFlightShareOneRun(t *testing.T) {
	g := newGate()
	var mu sync.Mutex
	counts := map[string]int64{}
	conn := &fakeConn{}
	conn.do = func(cmd string, args ...any) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		if cmd == "PING" || strings.Contains(fmt.Sprint(args...), ":first:") {
			return int64(1), nil
		}
		require.Equal(t, multi7.sha, args[0], "one run of the multi-key script")
		return multi7Reply(counts, args), nil
	}
	conn.beforeSend = holdFirst(is(g))
	h := run(t, nil, conn)
	h.connected(t)
	fix := protocol.Policy{Algorithm: protocol.FixWindow, Prefix: "P", ScaleMs: 1000, Limit: 4}
	hot := func(cost int64) protocol.Request {
		return protocol.Hit{Policy: fix, ID: "hot", Cost: cost, Now: 10_250}
	}
	reqs := []protocol.Request{
		hot(1), tokenHit("tok"), hot(2), tokenHit("tok"), tokenHit("bad"),
		protocol.Get{Policy: fix, ID: "other", Now: 10_250}, hot(3),
	}
	counts2, errs := queueBehindCounts(t, h, g, reqs)
	for i, err := range errs {
		if i == 4 {
			assert.ErrorIs(t, err, protocol.ErrRedis, "the element's error, for its call only")
			assert.ErrorContains(t, err, "WRONGTYPE")
			continue
		}
		require.NoError(t, err, "call %d", i)
	}
	assert.Equal(t, []int64{1, 9, 3, 9, 0, 0, 6}, counts2, "each caller's own answer; the fix hits coalesced")
	cmds := conn.commands()
	require.Len(t, cmds, 3, "PING, first, one run: %q", cmds)
	assert.Equal(t, fmt.Sprint("EVALSHA ", multi7.sha, " 5 P:hot:10 P:tok P:tok P:bad P:other:10  ",
		"1 hit 6 11000 0 4 hit 5 1 1 4 hit 5 1 1 4 hit 5 1 1 1 get 0 11000 0"), cmds[2],
		"keys in queue order, the tok bucket twice; the clock; then each element")
}

func TestHammer7RunLostByRedisGoesAgainOneByOne(t *testing.T) {
	g := newGate()
	var mu sync.Mutex
	lost := true
	conn := &fakeConn{}
	conn.do = func(cmd string, args ...any) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case cmd == "PING" || strings.Contains(fmt.Sprint(args...), ":first:"):
			return int64(1), nil
		case args[0] == multi7.sha && lost:
			lost = false
			return nil, redis.Error("NOSCRIPT No matching script. Please use EVAL.")
		case args[0] == multi7.sha || args[0] == multi7.source:
			return multi7Reply(map[string]int64{}, args), nil
		}
		return int64(7), nil
	}
	conn.beforeSend = holdFirst(is(g))
	h := run(t, nil, conn)
	h.connected(t)
	counts, errs := queueBehindCounts(t, h, g, []protocol.Request{tokenHit("a"), tokenHit("b")})
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, []int64{7, 7}, counts, "answered by the scripts run one by one")
	assert.Equal(t, 1, conn.sentWith(fmt.Sprint(multi7.sha)), "the run went once")
	assert.Equal(t, 2, conn.sentWith(fmt.Sprint(scripts7[protocol.TokenBucket].sha)))

	// The next run goes out as EVAL, which puts the script back.
	g2 := newGate()
	conn.beforeSend = holdFirst(is(g2))
	counts, errs = queueBehindCounts(t, h, g2, []protocol.Request{tokenHit("c"), tokenHit("d")})
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, []int64{9, 9}, counts)
	assert.Equal(t, 1, conn.sentWith("EVAL "+Multi7Lua[:20]), "EVAL with the source")
}

func TestHammer7RunWhoseReplyIsOddFailsItsCalls(t *testing.T) {
	g := newGate()
	conn := &fakeConn{}
	conn.do = func(cmd string, args ...any) (any, error) {
		if cmd == "PING" || strings.Contains(fmt.Sprint(args...), ":first:") {
			return int64(1), nil
		}
		return []any{int64(1)}, nil // one element for two keys
	}
	conn.beforeSend = holdFirst(is(g))
	h := run(t, nil, conn)
	h.connected(t)
	for _, err := range queueBehind(t, h, g, []protocol.Request{tokenHit("a"), tokenHit("b")}) {
		assert.ErrorIs(t, err, protocol.ErrBadReply)
	}
	assert.Equal(t, 1, conn.sentWith(fmt.Sprint(multi7.sha)), "never sent again")
}
