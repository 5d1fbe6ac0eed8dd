package server

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis/protocol"
)

// multiRuns returns the multi-key runs among cmds.
func multiRuns(cmds []string) []string {
	var runs []string
	for _, c := range cmds {
		if strings.Contains(c, fmt.Sprint(multiKeySHA)) || strings.HasPrefix(c, "EVAL \n") || strings.Contains(c, "for i = 1, #KEYS") {
			runs = append(runs, c)
		}
	}
	return runs
}

// keyed answers a multi-key run with reply(key) for each key, and every
// other command with okDo.
func keyed(reply func(key string) any) func(string, ...any) (any, error) {
	return func(cmd string, args ...any) (any, error) {
		n, ok := multiKeys(args)
		if !ok {
			return okDo(cmd, args...)
		}
		out := make([]any, n)
		for i := range out {
			out[i] = reply(fmt.Sprint(args[2+i]))
		}
		return out, nil
	}
}

func TestHitsOnDistinctKeysShareOneRun(t *testing.T) {
	g := newGate()
	conn := &fakeConn{beforeSend: holdFirst(is(g))}
	conn.do = keyed(func(key string) any {
		return map[string]any{"Hammer:Redis:a:1": int64(10), "Hammer:Redis:b:1": int64(20), "Hammer:Redis:c:1": []byte("30")}[key]
	})
	h := run(t, nil, conn)
	h.connected(t)
	hit := func(id string, now int64) protocol.Request {
		return protocol.CountHit{Key: protocol.BucketKey{Bucket: 1, ID: id}, Now: now, Increment: 1}
	}
	reqs := []protocol.Request{hit("a", 5), hit("b", 6), hit("d", 7), protocol.GetBucket{Key: protocol.BucketKey{Bucket: 1, ID: "d"}},
		hit("a", 8), hit("c", 9)}
	counts, errs := queueBehindCounts(t, h, g, reqs)
	for _, err := range errs {
		require.NoError(t, err)
	}

	cmds := conn.commands()
	require.Len(t, cmds, 5, "PING, first, one run for a, b and c, then d's hit and read in order: %q", cmds)
	assert.Equal(t, fmt.Sprintf("EVALSHA %s 3 Hammer:Redis:a:1 Hammer:Redis:b:1 Hammer:Redis:c:1 61 5 8 2 6 6 1 9 9 1", multiKeySHA), cmds[2],
		"per key: first now, last now, summed increment")
	assert.Contains(t, cmds[3], "Hammer:Redis:d:1", "a bucket also read goes on its own")
	assert.True(t, strings.HasPrefix(cmds[4], "HMGET Hammer:Redis:d:1"))
	assert.Equal(t, []int64{9, 20, 1, 0, 10, 30}, counts, "each caller's own count, in queue order")
}

func TestMultiKeyRunAnswersEachBucketWithItsOwnOutcome(t *testing.T) {
	g := newGate()
	conn := &fakeConn{beforeSend: holdFirst(is(g))}
	conn.do = func(cmd string, args ...any) (any, error) {
		if _, ok := multiKeys(args); ok {
			return keyed(func(key string) any {
				switch key {
				case "Hammer:Redis:a:1": // a group of two: nothing written, so one by one
					return redis.Error(notRunCode + " ERR increment or decrement would overflow")
				case "Hammer:Redis:b:1": // a lone hit refused before its write
					return redis.Error(notRunCode + " WRONGTYPE Operation against a key holding the wrong kind of value")
				case "Hammer:Redis:c:1": // refused after its count was written
					return redis.Error("NOPERM this user has no permissions to run the 'expire' command")
				}
				return int64(4)
			})(cmd, args...)
		}
		return okDo(cmd, args...)
	}
	h := run(t, nil, conn)
	h.connected(t)
	ids := []string{"a", "a", "b", "c", "e"}
	reqs := make([]protocol.Request, len(ids))
	for i, id := range ids {
		reqs[i] = countHit(id)
	}
	errs := queueBehind(t, h, g, reqs)
	assert.NoError(t, errs[0], "a's hits ran again one by one")
	assert.NoError(t, errs[1])
	assert.ErrorIs(t, errs[2], protocol.ErrRedis)
	assert.ErrorContains(t, errs[2], "WRONGTYPE")
	assert.NotContains(t, errs[2].Error(), notRunCode)
	assert.ErrorIs(t, errs[3], protocol.ErrRedis)
	assert.ErrorContains(t, errs[3], "NOPERM")
	assert.NoError(t, errs[4])

	sent := map[string]int{}
	for _, id := range []string{"a", "b", "c", "e"} {
		sent[id] = conn.sentWith(":" + id + ":")
	}
	assert.Equal(t, map[string]int{"a": 3, "b": 1, "c": 1, "e": 1}, sent, "a: the run, then its two hits; nothing else again")
	assert.Zero(t, h.s.Stats().InAir)
}

func TestMultiKeyRunNotRunGoesAgainOneByOne(t *testing.T) {
	for _, tt := range []struct {
		name  string
		reply error
	}{
		{"NOSCRIPT", redis.Error("NOSCRIPT No matching script. Please use EVAL.")},
		{"refused before any write", redis.Error(notRunCode + " ERR count_hit: invalid TTL 0")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			gates := []*gate{newGate(), newGate()}
			var mu sync.Mutex
			round := 0
			conn := &fakeConn{}
			conn.beforeSend = holdFirst(func() *gate {
				mu.Lock()
				defer mu.Unlock()
				return gates[round]
			})
			conn.do = func(cmd string, args ...any) (any, error) {
				if _, ok := multiKeys(args); ok && cmd == "EVALSHA" {
					return nil, tt.reply
				}
				return okDo(cmd, args...)
			}
			h := run(t, nil, conn)
			h.connected(t)
			reqs := []protocol.Request{countHit("a"), countHit("b")}
			for _, err := range queueBehind(t, h, gates[0], reqs) {
				assert.NoError(t, err)
			}
			mu.Lock()
			round = 1
			mu.Unlock()
			for _, err := range queueBehind(t, h, gates[1], reqs) {
				assert.NoError(t, err)
			}
			cmds := conn.commands()
			var singles, evals int
			for _, c := range cmds {
				if strings.HasPrefix(c, fmt.Sprintf("EVALSHA %s", countHitSHA)) && !strings.Contains(c, "first") {
					singles++
				}
				if strings.HasPrefix(c, "EVAL ") && strings.Contains(c, "#KEYS") {
					evals++
				}
			}
			if tt.name == "NOSCRIPT" {
				assert.Equal(t, 2, singles, "round 1's two hits, once each: %q", cmds)
				assert.Equal(t, 1, evals, "round 2's run goes as EVAL, which caches the script")
			} else {
				assert.Equal(t, 4, singles, "each round's hits, one by one: %q", cmds)
				assert.Zero(t, evals)
			}
			assert.Zero(t, h.s.Stats().InAir)
		})
	}
}

func TestMultiKeyRunWhoseOutcomeIsUnknownIsNeverSentAgain(t *testing.T) {
	for _, tt := range []struct {
		name  string
		reply func(*fakeConn) (any, error)
		want  error
	}{
		{"broken connection", func(c *fakeConn) (any, error) { return nil, c.breakWith(io.ErrUnexpectedEOF) },
			protocol.ErrDisconnected},
		{"error reply", func(*fakeConn) (any, error) { return nil, redis.Error("BUSY Redis is busy running a script") },
			protocol.ErrRedis},
		{"reply of the wrong shape", func(*fakeConn) (any, error) { return []any{int64(1)}, nil }, protocol.ErrBadReply},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := newGate()
			conn := &fakeConn{beforeSend: holdFirst(is(g))}
			conn.do = func(cmd string, args ...any) (any, error) {
				if _, ok := multiKeys(args); ok {
					return tt.reply(conn)
				}
				return okDo(cmd, args...)
			}
			h := run(t, nil, conn)
			h.connected(t)
			for _, err := range queueBehind(t, h, g, []protocol.Request{countHit("a"), countHit("b"), countHit("c")}) {
				assert.ErrorIs(t, err, tt.want)
			}
			assert.Equal(t, 1, conn.sentWith(":a:"), "sent once")
		})
	}
}

func TestMultiKeyRunsHoldAtMostMaxMultiKeysAndNeverRunOnACluster(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		t.Run(fmt.Sprint("cluster=", cluster), func(t *testing.T) {
			g := newGate()
			conn := &fakeConn{do: okDo, beforeSend: holdFirst(is(g))}
			h := run(t, func(c *Config) { c.Cluster = cluster }, conn)
			h.connected(t)
			reqs := make([]protocol.Request, maxMultiKeys+6)
			for i := range reqs {
				reqs[i] = countHit(fmt.Sprint("k", i))
			}
			for _, err := range queueBehind(t, h, g, reqs) {
				assert.NoError(t, err)
			}
			runs := multiRuns(conn.commands())
			if cluster {
				assert.Empty(t, runs, "a Redis Cluster refuses one script on keys of several slots")
				return
			}
			require.Len(t, runs, 2)
			assert.Contains(t, runs[0], fmt.Sprintf(" %d Hammer:Redis:k0:1 ", maxMultiKeys))
			assert.Contains(t, runs[1], " 6 Hammer:Redis:k64:1 ")
		})
	}
}
