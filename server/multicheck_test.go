package server

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis/protocol"
)

// fixCheck is a check at now of one fix-window limit (prefix "P", 5 per
// second) per id.
func fixCheck(now int64, ids ...string) protocol.Check {
	c := protocol.Check{Now: now}
	for _, id := range ids {
		c.Limits = append(c.Limits, protocol.CheckLimit{
			Policy: protocol.Policy{Algorithm: protocol.FixWindow, Prefix: "P", ScaleMs: 1000, Limit: 5}, ID: id, Cost: 1})
	}
	return c
}

// checkRunReply answers a run of MultiCheckLua from its arguments: a check
// with a "bad" key fails with WRONGTYPE; any other allows its limit i with
// the count Now+i.
func checkRunReply(args []any) []any {
	keys := args[2 : 2+args[1].(int)]
	rest := args[2+len(keys)+2:] // after the clock and the TTL
	var out []any
	for len(rest) > 0 {
		n, now := rest[0].(int), rest[2].(int64)
		bad := false
		for _, k := range keys[:n] {
			bad = bad || strings.Contains(k.(string), "bad")
		}
		if bad {
			out = append(out, redis.Error("WRONGTYPE Operation against a key holding the wrong kind of value"))
		} else {
			for i := range n {
				out = append(out, now+int64(i), int64(0))
			}
		}
		keys, rest = keys[n:], rest[3+5*n:]
	}
	return out
}

// checkReply answers a run of the check script alone as checkRunReply
// would: {Now+i, 0} for limit i.
func checkReply(args []any) []any {
	n := args[1].(int)
	now := args[2+n+2].(int64)
	out := make([]any, n)
	for i := range out {
		out[i] = []any{now + int64(i), int64(0)}
	}
	return out
}

// queueBehindReplies is queueBehind, returning the replies too.
func queueBehindReplies(t *testing.T, h *harness, g *gate, reqs []protocol.Request) ([]protocol.Reply, []error) {
	t.Helper()
	first := make(chan error, 1)
	go func() {
		_, err := h.s.do(context.Background(), countHit("first"))
		first <- err
	}()
	<-g.entered
	reps, errs := make([]protocol.Reply, len(reqs)), make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps[i], errs[i] = h.s.do(context.Background(), r)
		}()
		h.waitQueued(t, i+1) // keep queue order = call order
	}
	close(g.release)
	require.NoError(t, <-first)
	wg.Wait()
	return reps, errs
}

// decisions returns a check's decisions, nil for another reply.
func decisions(rep protocol.Reply) []protocol.HitReply {
	if r, ok := rep.(protocol.CheckReply); ok {
		return r.Decisions
	}
	return nil
}

// allowedFrom returns n allowed decisions of counts from, from+1...
func allowedFrom(from int64, n int) []protocol.HitReply {
	out := make([]protocol.HitReply, n)
	for i := range out {
		out[i] = protocol.HitReply{Allowed: true, Count: from + int64(i)}
	}
	return out
}

func TestChecksOfAFlightShareOneRun(t *testing.T) {
	g := newGate()
	conn := &fakeConn{beforeSend: holdFirst(is(g))}
	conn.do = func(cmd string, args ...any) (any, error) {
		switch {
		case len(args) > 0 && args[0] == multiCheck.sha:
			return checkRunReply(args), nil
		case len(args) > 0 && args[0] == checkScript.sha:
			return checkReply(args), nil
		}
		return okDo(cmd, args...)
	}
	h := run(t, nil, conn)
	h.connected(t)
	read := protocol.CheckLimit{Hammer6: true, Policy: protocol.Policy{ScaleMs: 1000, Limit: 5}, ID: "d", Cost: 1}
	readCheck := fixCheck(500, "e")
	readCheck.Limits = append(readCheck.Limits, read)
	all := fixCheck(300, "c", "a")
	all.AllOrNothing = true
	reqs := []protocol.Request{
		fixCheck(100, "a", "b"), countHit("h"), fixCheck(200, "bad"), protocol.GetBucket{Key: protocol.BucketKey{ID: "d"}},
		all, readCheck, fixCheck(400, "a"),
	}
	reps, errs := queueBehindReplies(t, h, g, reqs)
	for i, err := range errs {
		if i == 2 {
			assert.ErrorIs(t, err, protocol.ErrRedis, "the element's error, for its check only")
			assert.ErrorContains(t, err, "WRONGTYPE")
			continue
		}
		require.NoError(t, err, "call %d", i)
	}
	assert.Equal(t, allowedFrom(100, 2), decisions(reps[0]), "each caller its own part of the reply")
	assert.Equal(t, allowedFrom(300, 2), decisions(reps[4]))
	assert.Equal(t, allowedFrom(500, 2), decisions(reps[5]))
	assert.Equal(t, allowedFrom(400, 1), decisions(reps[6]))

	cmds := conn.commands()
	require.Len(t, cmds, 6, "PING, first, the hit, one run for four checks, then the read and its check in order: %q", cmds)
	assert.Contains(t, cmds[2], ":h:")
	limit := "1 0 1 5 1000" // kind, shadow, cost, limit, window's end
	assert.Equal(t, fmt.Sprint("EVALSHA ", multiCheck.sha, " 6 P:a:0 P:b:0 P:bad:0 P:c:0 P:a:0 P:a:0  61 ",
		"2 each 100 ", limit, " ", limit, " 1 each 200 ", limit, " 2 all 300 ", limit, " ", limit, " 1 each 400 ", limit), cmds[3],
		"every check's keys in queue order, a key again; the clock and the TTL; then each check's limits, mode and Now")
	assert.True(t, strings.HasPrefix(cmds[4], "HMGET Hammer:Redis:d:0"), cmds[4])
	assert.Contains(t, cmds[5], fmt.Sprint(checkScript.sha), "a check on a bucket the flight reads goes alone, after the read")
}

func TestCheckRunLostByRedisGoesAgainOneByOne(t *testing.T) {
	g := newGate()
	var mu sync.Mutex
	lost := true
	conn := &fakeConn{}
	conn.do = func(cmd string, args ...any) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case len(args) == 0 || strings.Contains(fmt.Sprint(args...), ":first:"):
			return okDo(cmd, args...)
		case args[0] == multiCheck.sha && lost:
			lost = false
			return nil, redis.Error("NOSCRIPT No matching script. Please use EVAL.")
		case args[0] == multiCheck.sha || args[0] == multiCheck.source:
			return checkRunReply(args), nil
		}
		return checkReply(args), nil
	}
	conn.beforeSend = holdFirst(is(g))
	h := run(t, nil, conn)
	h.connected(t)
	reps, errs := queueBehindReplies(t, h, g, []protocol.Request{fixCheck(100, "a"), fixCheck(200, "b", "c")})
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, allowedFrom(100, 1), decisions(reps[0]), "answered by the check script, run once per check")
	assert.Equal(t, allowedFrom(200, 2), decisions(reps[1]))
	assert.Equal(t, 1, conn.sentWith(fmt.Sprint(multiCheck.sha)), "the run went once")
	assert.Equal(t, 2, conn.sentWith(fmt.Sprint(checkScript.sha)))

	// The next run goes out as EVAL, which puts the script back.
	g2 := newGate()
	conn.beforeSend = holdFirst(is(g2))
	reps, errs = queueBehindReplies(t, h, g2, []protocol.Request{fixCheck(300, "a"), fixCheck(400, "b")})
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, allowedFrom(300, 1), decisions(reps[0]))
	assert.Equal(t, allowedFrom(400, 1), decisions(reps[1]))
	assert.Equal(t, 1, conn.sentWith("EVAL "+MultiCheckLua[:20]), "EVAL with the source")
}

func TestCheckRunOddRepliesAreErrors(t *testing.T) {
	bad := redis.Error("WRONGTYPE Operation against a key holding the wrong kind of value")
	n := func(v int64) any { return v }
	for _, tc := range []struct {
		name  string
		reply any
		err   []error // per check: nil when allowed
	}{
		{"not an array", n(1), []error{protocol.ErrBadReply, protocol.ErrBadReply}},
		{"short", []any{n(1), n(0)}, []error{protocol.ErrBadReply, protocol.ErrBadReply}},
		{"long", []any{n(1), n(0), n(2), n(0), n(3), n(0), n(0)}, []error{protocol.ErrBadReply, protocol.ErrBadReply}},
		{"errors where decisions go", []any{bad, bad, bad}, []error{protocol.ErrBadReply, protocol.ErrBadReply}},
		{"a string for a count", []any{[]byte("1"), n(0), n(2), n(0), n(3), n(0)}, []error{protocol.ErrBadReply, nil}},
		{"a wait below -1", []any{n(1), n(0), n(2), n(0), n(3), n(-2)}, []error{nil, protocol.ErrBadReply}},
		{"an error, then decisions", []any{bad, n(2), n(0), n(3), n(0)}, []error{protocol.ErrRedis, nil}},
		{"a whole run's error", bad, []error{protocol.ErrRedis, protocol.ErrRedis}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate()
			conn := &fakeConn{beforeSend: holdFirst(is(g))}
			conn.do = func(cmd string, args ...any) (any, error) {
				if len(args) > 0 && args[0] == multiCheck.sha {
					if err, ok := tc.reply.(redis.Error); ok {
						return nil, err
					}
					return tc.reply, nil
				}
				return okDo(cmd, args...)
			}
			h := run(t, nil, conn)
			h.connected(t)
			reps, errs := queueBehindReplies(t, h, g, []protocol.Request{fixCheck(1, "a"), fixCheck(2, "b", "c")})
			for i, want := range tc.err {
				if want == nil {
					assert.NoError(t, errs[i], "check %d", i)
					assert.Equal(t, allowedFrom(int64(i+1), i+1), decisions(reps[i]))
					continue
				}
				assert.ErrorIs(t, errs[i], want, "check %d", i)
			}
			assert.Equal(t, 1, conn.sentWith(fmt.Sprint(multiCheck.sha)), "never sent again")
		})
	}
}
