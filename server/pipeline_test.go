package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis/protocol"
)

// gate makes the fake connection hold the writer as it sends the first
// count_hit, until released, so that calls queue up behind it.
type gate struct {
	entered, release chan struct{}
	once             sync.Once
}

func newGate() *gate { return &gate{entered: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) hold() {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
}

// holdFirst returns a fakeConn.beforeSend that holds g (the gate gate
// returns, when given) while the call of id "first" is being sent.
func holdFirst(g func() *gate) func(string, ...any) {
	return func(_ string, args ...any) {
		if strings.Contains(fmt.Sprint(args...), ":first:") {
			g().hold()
		}
	}
}

// is returns g, for holdFirst.
func is(g *gate) func() *gate { return func() *gate { return g } }

// oneByOne has a test's server send every call as its own command, for
// tests of what happens to each command of a pipeline (multi.go has those
// of a multi-key run).
func oneByOne(c *Config) { c.DisableCoalescing = true }

// queueBehind starts one call that blocks in the server, then n more that
// queue behind it, and returns their results in call order once released.
func queueBehind(t *testing.T, h *harness, g *gate, reqs []protocol.Request) []error {
	t.Helper()
	_, errs := queueBehindCounts(t, h, g, reqs)
	return errs
}

// queueBehindCounts is queueBehind, returning the counts of the hits too (0
// for other calls).
func queueBehindCounts(t *testing.T, h *harness, g *gate, reqs []protocol.Request) ([]int64, []error) {
	t.Helper()
	first := make(chan error, 1)
	go func() {
		_, err := h.s.do(context.Background(), countHit("first"))
		first <- err
	}()
	<-g.entered
	counts, errs := make([]int64, len(reqs)), make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rep protocol.Reply
			rep, errs[i] = h.s.do(context.Background(), r)
			switch c := rep.(type) {
			case protocol.CountHitReply:
				counts[i] = c.Count
			case protocol.HitReply:
				counts[i] = c.Count
			case protocol.CountReply:
				counts[i] = c.Count
			}
		}()
		h.waitQueued(t, i+1) // keep queue order = call order
	}
	close(g.release)
	require.NoError(t, <-first)
	wg.Wait()
	return counts, errs
}

func TestQueuedCallsShareFlushesUpToMaxPipeline(t *testing.T) {
	for _, tt := range []struct {
		maxPipeline, maxFlushes, maxInAir int
	}{{256, 2, 11}, {4, 11, 4}, {1, 11, 1}} {
		t.Run(fmt.Sprint("MaxPipeline=", tt.maxPipeline), func(t *testing.T) {
			g := newGate()
			conn := &fakeConn{do: okDo}
			conn.beforeSend = holdFirst(is(g))
			h := run(t, func(c *Config) {
				c.MaxPipeline = tt.maxPipeline
				c.DisableCoalescing = true // a command per call, to check their order
			}, conn)
			h.connected(t)
			reqs := make([]protocol.Request, 10)
			for i := range reqs {
				reqs[i] = countHit(fmt.Sprint("q", i))
			}
			for _, err := range queueBehind(t, h, g, reqs) {
				assert.NoError(t, err)
			}
			conn.mu.Lock()
			defer conn.mu.Unlock()
			assert.LessOrEqual(t, conn.flushes, tt.maxFlushes, "calls queued together share writes")
			assert.LessOrEqual(t, conn.maxPending, tt.maxInAir, "at most MaxPipeline calls in the air")
			for i := range 10 {
				assert.Contains(t, conn.cmds[1+1+i], fmt.Sprintf(":q%d:", i), "sent in queue order")
			}
		})
	}
}

func TestBrokenConnectionMidBatch(t *testing.T) {
	g := newGate()
	conn := &fakeConn{}
	conn.do = func(cmd string, args ...any) (any, error) {
		a := fmt.Sprint(args...)
		switch {
		case strings.Contains(a, ":q2:"):
			return nil, conn.breakWith(io.ErrUnexpectedEOF)
		case strings.Contains(a, ":q1:"):
			return nil, redis.Error("WRONGTYPE Operation against a key holding the wrong kind of value")
		}
		return okDo(cmd, args...)
	}
	conn.beforeSend = holdFirst(is(g))
	h := run(t, oneByOne, conn)
	h.connected(t)
	reqs := make([]protocol.Request, 5)
	for i := range reqs {
		reqs[i] = countHit(fmt.Sprint("q", i))
	}
	errs := queueBehind(t, h, g, reqs)
	assert.NoError(t, errs[0])
	assert.ErrorIs(t, errs[1], protocol.ErrRedis, "an error reply stays with its call")
	for i := 2; i < 5; i++ {
		assert.ErrorIs(t, errs[i], protocol.ErrDisconnected, "call %d was written before the connection broke", i)
	}
	assert.ErrorIs(t, <-h.errc, io.ErrUnexpectedEOF)
}

// sendFailConn fails Send after n commands, as a write to a dead socket does.
type sendFailConn struct {
	*fakeConn
	n int
}

func (c *sendFailConn) Send(cmd string, args ...any) error {
	if cmd == "SCRIPT" {
		return c.fakeConn.Send(cmd, args...) // at connection start
	}
	if c.n--; c.n < 0 {
		return c.breakWith(io.ErrClosedPipe)
	}
	return c.fakeConn.Send(cmd, args...)
}

func TestCallsNeverWrittenGetErrClosed(t *testing.T) {
	g := newGate()
	fc := &fakeConn{do: okDo, beforeSend: holdFirst(is(g))}
	conn := &sendFailConn{fakeConn: fc, n: 2} // first and q0 are written, q1 fails
	h := run(t, func(c *Config) {
		c.Dial = dialConn(conn)
		oneByOne(c)
	})
	h.connected(t)
	reqs := make([]protocol.Request, 4)
	for i := range reqs {
		reqs[i] = countHit(fmt.Sprint("q", i))
	}
	errs := queueBehind(t, h, g, reqs)
	assert.ErrorIs(t, errs[0], protocol.ErrDisconnected, "written, then the connection broke: unknown")
	assert.ErrorIs(t, errs[1], protocol.ErrDisconnected, "the Send that failed may have written part")
	assert.ErrorIs(t, errs[2], protocol.ErrClosed, "never written: safe to retry")
	assert.ErrorIs(t, errs[3], protocol.ErrClosed)
	<-h.errc
}

func TestNoScriptInsideAPipelineIsRetriedWithEval(t *testing.T) {
	g := newGate()
	flushed := false
	conn := &fakeConn{}
	conn.do = func(cmd string, args ...any) (any, error) {
		a := fmt.Sprint(args...)
		if strings.Contains(a, "first") {
			return int64(1), nil
		}
		if cmd == "EVALSHA" && (strings.Contains(a, ":q0:") || strings.Contains(a, ":q2:")) && !flushed {
			return nil, redis.Error("NOSCRIPT No matching script. Please use EVAL.")
		}
		return int64(7), nil
	}
	conn.beforeSend = holdFirst(is(g))
	h := run(t, oneByOne, conn)
	h.connected(t)
	reqs := []protocol.Request{countHit("q0"), countHit("q1"), countHit("q2")}
	for _, err := range queueBehind(t, h, g, reqs) {
		assert.NoError(t, err)
	}
	cmds := conn.commands()
	var evals []string
	for _, c := range cmds {
		if strings.HasPrefix(c, "EVAL ") {
			evals = append(evals, c)
		}
	}
	require.Len(t, evals, 2, "%q", cmds)
	assert.Contains(t, evals[0], ":q0:")
	assert.Contains(t, evals[1], ":q2:")
}

func TestDeleteBucketsRunsOnAConnectionOfItsOwn(t *testing.T) {
	g := newGate()
	pipelined := &fakeConn{do: okDo, beforeSend: holdFirst(is(g))}
	own := &fakeConn{do: func(cmd string, args ...any) (any, error) {
		switch cmd {
		case "SCAN":
			return []any{[]byte("0"), []any{[]byte("Hammer:Redis:d:1")}}, nil
		case "DEL":
			return int64(1), nil
		}
		return nil, fmt.Errorf("unexpected %s", cmd)
	}}
	h := run(t, nil, pipelined, own)
	h.connected(t)
	first := make(chan error, 1)
	go func() {
		_, err := h.s.do(context.Background(), countHit("first"))
		first <- err
	}()
	<-g.entered // the pipelined connection is stuck on a write
	n, err := h.s.DeleteBuckets(context.Background(), "d")
	require.NoError(t, err, "the delete does not wait behind the pipeline")
	assert.Equal(t, int64(1), n)
	assert.Equal(t, []string{"SCAN 0 MATCH Hammer:Redis:d:* COUNT 1000", "DEL Hammer:Redis:d:1"}, own.commands())
	assert.True(t, own.closed, "the delete's connection is closed after it")
	close(g.release)
	require.NoError(t, <-first)
	for _, c := range pipelined.commands() {
		assert.NotContains(t, c, "SCAN")
	}
}

func TestAllCallersLeftNothingSent(t *testing.T) {
	g := newGate()
	conn := &fakeConn{do: okDo, beforeSend: holdFirst(is(g))}
	h := run(t, nil, conn)
	h.connected(t)
	first := make(chan error, 1)
	go func() {
		_, err := h.s.do(context.Background(), countHit("first"))
		first <- err
	}()
	<-g.entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.s.do(ctx, countHit(fmt.Sprint("gone", i)))
			assert.ErrorIs(t, err, protocol.ErrTimeout)
		}()
	}
	wg.Wait()
	close(g.release)
	require.NoError(t, <-first)
	_, err := h.s.do(context.Background(), countHit("after"))
	require.NoError(t, err)
	for _, c := range conn.commands() {
		assert.NotContains(t, c, "gone")
	}
	assert.False(t, errors.Is(err, protocol.ErrClosed))
}

func TestHotKeyHitsAreCoalesced(t *testing.T) {
	g := newGate()
	var mu sync.Mutex
	count := int64(0)
	conn := &fakeConn{}
	conn.do = func(cmd string, args ...any) (any, error) {
		if cmd == "PING" {
			return "PONG", nil
		}
		if strings.Contains(fmt.Sprint(args...), "first") {
			return int64(1), nil
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case cmd == "HMGET":
			return []any{nil, nil, nil}, nil
		case args[0] == coalescedSHA:
			count += args[5].(int64)
		default:
			count += args[4].(int64)
		}
		return count, nil
	}
	conn.beforeSend = holdFirst(is(g))
	h := run(t, nil, conn)
	h.connected(t)
	hot := func(inc int64) protocol.Request {
		return protocol.CountHit{Key: protocol.BucketKey{Bucket: 1, ID: "hot"}, Now: 100 + inc, Increment: inc}
	}
	// A read of another bucket in between: a lone hit there would join the
	// hot bucket's group in a multi-key run (TestHitsOnDistinctKeysShareOneRun).
	other := protocol.GetBucket{Key: protocol.BucketKey{Bucket: 1, ID: "other"}}
	reqs := []protocol.Request{hot(1), hot(2), other, hot(3), hot(4), hot(5)}
	counts, errs := queueBehindCounts(t, h, g, reqs)
	for _, err := range errs {
		require.NoError(t, err)
	}

	cmds := conn.commands()
	require.Len(t, cmds, 4, "PING, first, one coalesced hot and other: %q", cmds)
	assert.Contains(t, cmds[2], fmt.Sprint(coalescedSHA))
	assert.Contains(t, cmds[2], "Hammer:Redis:hot:1 101 105 15 61", "first now, last now, sum, TTL")
	// The hot hits ran first in the pipeline: after them the count is 15.
	assert.Equal(t, []int64{1, 3, 0, 6, 10, 15}, counts, "each caller's count in queue order")
}

func TestCoalescingSkipsKeysReadInTheSameBatch(t *testing.T) {
	g := newGate()
	conn := &fakeConn{}
	conn.beforeSend = holdFirst(is(g))
	conn.do = func(cmd string, args ...any) (any, error) {
		if cmd == "HMGET" {
			return []any{nil, nil, nil}, nil
		}
		return okDo(cmd, args...)
	}
	h := run(t, nil, conn)
	h.connected(t)
	k := protocol.BucketKey{Bucket: 1, ID: "k"}
	reqs := []protocol.Request{protocol.CountHit{Key: k, Increment: 1}, protocol.GetBucket{Key: k},
		protocol.CountHit{Key: k, Increment: 1}}
	for _, err := range queueBehind(t, h, g, reqs) {
		assert.NoError(t, err)
	}
	for _, c := range conn.commands() {
		assert.NotContains(t, c, fmt.Sprint(coalescedSHA))
	}
}

// coalescedGroup queues hits of increment 1, 2 and 3 on one key behind a
// held call, so that they go out as one coalesced group, whose script
// answers groupErr; a hit sent on its own then fails with singleErr when
// singleErr is given its increment. It returns the hits' errors and the
// connection.
func coalescedGroup(t *testing.T, groupErr error, singleErr func(increment int64) error) ([]error, *fakeConn) {
	t.Helper()
	g := newGate()
	conn := &fakeConn{}
	conn.do = func(cmd string, args ...any) (any, error) {
		if cmd == "PING" {
			return "PONG", nil
		}
		if strings.Contains(fmt.Sprint(args...), "first") {
			return int64(1), nil
		}
		if args[0] == coalescedSHA {
			return nil, groupErr
		}
		if err := singleErr(args[4].(int64)); err != nil {
			return nil, err
		}
		return int64(9), nil
	}
	conn.beforeSend = holdFirst(is(g))
	h := run(t, nil, conn)
	h.connected(t)
	k := protocol.BucketKey{Bucket: 1, ID: "k"}
	reqs := []protocol.Request{protocol.CountHit{Key: k, Increment: 1}, protocol.CountHit{Key: k, Increment: 2},
		protocol.CountHit{Key: k, Increment: 3}}
	return queueBehind(t, h, g, reqs), conn
}

func TestCoalescedErrorRunsTheHitsOneByOne(t *testing.T) {
	overflow := redis.Error("ERR increment or decrement would overflow")
	errs, _ := coalescedGroup(t,
		redis.Error(notRunCode+" "+string(overflow)), // refused before its first write: the script marks it
		func(increment int64) error {
			if increment == 2 {
				return overflow
			}
			return nil
		})
	assert.NoError(t, errs[0])
	assert.ErrorIs(t, errs[1], protocol.ErrRedis, "only the hit that overflows fails")
	assert.NoError(t, errs[2])
}

func TestCoalescedFailureAfterItsFirstWriteIsNeverResent(t *testing.T) {
	// HINCRBY ran; EXPIRE did not: the sum is counted.
	noperm := redis.Error("NOPERM User limited has no permissions to run the 'expire' command script: f_x, on @user_script:27.")
	errs, conn := coalescedGroup(t, noperm, func(int64) error { return nil })
	for _, err := range errs {
		assert.ErrorIs(t, err, protocol.ErrRedis)
		assert.ErrorContains(t, err, "NOPERM")
	}
	assert.Equal(t, 1, conn.sentWith(":k:"), "the group's hits went out once, coalesced, and never again")
}

func TestReSentCallsLeaveTheAirOnce(t *testing.T) {
	var mu sync.Mutex
	var g *gate
	nextGate := func() *gate {
		mu.Lock()
		defer mu.Unlock()
		g = newGate()
		return g
	}
	conn := &fakeConn{}
	conn.do = func(cmd string, args ...any) (any, error) {
		if cmd == "PING" {
			return "PONG", nil
		}
		if strings.Contains(fmt.Sprint(args...), "first") {
			return int64(1), nil
		}
		if args[0] == coalescedSHA {
			return nil, redis.Error(notRunCode + " WRONGTYPE Operation against a key holding the wrong kind of value")
		}
		return okDo(cmd, args...)
	}
	conn.beforeSend = holdFirst(func() *gate {
		mu.Lock()
		defer mu.Unlock()
		return g
	})
	const maxPipeline = 8
	h := run(t, func(c *Config) { c.MaxPipeline = maxPipeline }, conn)
	h.connected(t)
	k := protocol.BucketKey{Bucket: 1, ID: "k"}
	for round := range 10 { // 30 re-sends, well past MaxPipeline
		reqs := []protocol.Request{protocol.CountHit{Key: k, Increment: 1}, protocol.CountHit{Key: k, Increment: 1},
			protocol.CountHit{Key: k, Increment: 1}}
		for _, err := range queueBehind(t, h, nextGate(), reqs) {
			require.NoError(t, err)
		}
		require.Zero(t, h.s.Stats().InAir, "round %d: every call answered, none in the air", round)
	}

	// The pipeline still takes every queued call at once.
	conn.mu.Lock()
	flushes := conn.flushes
	conn.mu.Unlock()
	reqs := make([]protocol.Request, maxPipeline-1)
	for i := range reqs {
		reqs[i] = countHit(fmt.Sprint("q", i))
	}
	for _, err := range queueBehind(t, h, nextGate(), reqs) {
		require.NoError(t, err)
	}
	conn.mu.Lock()
	defer conn.mu.Unlock()
	assert.Equal(t, 2, conn.flushes-flushes, "first, then the queued calls as one flight")
}

func TestCoalescingCanBeDisabled(t *testing.T) {
	g := newGate()
	conn := &fakeConn{do: okDo, beforeSend: holdFirst(is(g))}
	h := run(t, func(c *Config) { c.DisableCoalescing = true }, conn)
	h.connected(t)
	reqs := []protocol.Request{countHit("k"), countHit("k"), countHit("k")}
	for _, err := range queueBehind(t, h, g, reqs) {
		assert.NoError(t, err)
	}
	assert.Len(t, conn.commands(), 5, "PING, first and three single hits")
}

func TestPlanDoesNotOverflowASum(t *testing.T) {
	cn := &conn{}
	k := protocol.BucketKey{ID: "k"}
	calls := []*call{{}, {}, {}}
	for i, inc := range []int64{math.MaxInt64, 1, 1} {
		calls[i].hit = protocol.CountHit{Key: k, Increment: inc}
		calls[i].req = &calls[i].hit
	}
	f := &flight{calls: calls}
	cn.plan(f, true)
	assert.Equal(t, []int32{0, 1, 1}, f.lead, "the second hit starts a new group rather than overflow the sum")
	assert.Equal(t, []int64{math.MaxInt64, 2}, f.sum[:2])
}

func TestNextFlightGoesOutWhileRepliesComeIn(t *testing.T) {
	g := newGate()
	held := newGate()
	var mu sync.Mutex
	moreSent, allSent := 0, make(chan struct{})
	conn := &fakeConn{}
	conn.beforeSend = holdFirst(is(g))
	conn.afterSend = func(cmd string, args ...any) { // once queued: counted in maxPending
		if strings.Contains(fmt.Sprint(args...), ":r") {
			mu.Lock()
			defer mu.Unlock()
			if moreSent++; moreSent == 6 {
				close(allSent)
			}
		}
	}
	conn.do = func(cmd string, args ...any) (any, error) {
		if strings.Contains(fmt.Sprint(args...), ":q0:") {
			held.hold() // the reader waits for q0's reply
		}
		return okDo(cmd, args...)
	}
	h := run(t, func(c *Config) {
		oneByOne(c)
		c.stallAfter = time.Hour // q0's reply is held as long as the test takes
	}, conn)
	h.connected(t)
	// Two q's and six r's: fewer in the air than eagerBelow, so that calls
	// go out at once.
	reqs := make([]protocol.Request, 2)
	for i := range reqs {
		reqs[i] = countHit(fmt.Sprint("q", i))
	}
	more := make(chan []error, 1)
	go func() {
		<-held.entered // the flight of q's is in the air
		reqs := make([]protocol.Request, 6)
		for i := range reqs {
			reqs[i] = countHit(fmt.Sprint("r", i))
		}
		errs := make([]error, len(reqs))
		var wg sync.WaitGroup
		for i, r := range reqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = h.s.do(context.Background(), r)
			}()
		}
		<-allSent // written while q0's reply is still awaited
		close(held.release)
		wg.Wait()
		more <- errs
	}()
	for _, err := range queueBehind(t, h, g, reqs) {
		assert.NoError(t, err)
	}
	for _, err := range <-more {
		assert.NoError(t, err)
	}
	conn.mu.Lock()
	defer conn.mu.Unlock()
	assert.Equal(t, len(reqs)-1+6, conn.maxPending, "the six went out while the q's after q0 were still in the air")
}

func TestCoalescedScriptMissingIsSentWithEval(t *testing.T) {
	var mu sync.Mutex
	cached := false // whether Redis has the coalesced script
	gates := []*gate{newGate(), newGate()}
	round := 0
	conn := &fakeConn{}
	conn.do = func(cmd string, args ...any) (any, error) {
		if cmd == "PING" {
			return "PONG", nil
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case cmd == "EVALSHA" && args[0] == coalescedSHA && !cached:
			return nil, redis.Error("NOSCRIPT No matching script. Please use EVAL.")
		case cmd == "EVAL" && args[0] == coalescedSource:
			cached = true
		}
		return int64(5), nil
	}
	conn.beforeSend = holdFirst(func() *gate {
		mu.Lock()
		defer mu.Unlock()
		return gates[round]
	})
	h := run(t, nil, conn)
	h.connected(t)
	hot := []protocol.Request{countHit("k"), countHit("k")}
	for _, err := range queueBehind(t, h, gates[0], hot) { // NOSCRIPT: one by one
		assert.NoError(t, err)
	}
	mu.Lock()
	assert.False(t, cached)
	round = 1
	mu.Unlock()
	for _, err := range queueBehind(t, h, gates[1], hot) { // now as EVAL, which caches it
		assert.NoError(t, err)
	}
	mu.Lock()
	defer mu.Unlock()
	assert.True(t, cached, "the coalesced script was sent with EVAL after its NOSCRIPT")
}

func TestReadOnlyReplicaMakesTheServerRedial(t *testing.T) {
	conn := &fakeConn{do: func(cmd string, _ ...any) (any, error) {
		if cmd == "PING" {
			return "PONG", nil
		}
		return nil, redis.Error("READONLY You can't write against a read only replica.")
	}}
	fresh := &fakeConn{do: okDo}
	h := run(t, nil, conn, fresh)
	h.connected(t)
	_, err := h.s.do(context.Background(), countHit("a"))
	assert.ErrorIs(t, err, protocol.ErrClosed, "READONLY: not run, safe to retry")
	assert.ErrorContains(t, err, "READONLY")
	assert.Error(t, <-h.errc, "Serve ended, for its supervisor to restart it")
	go func() { h.errc <- h.s.Serve(context.Background()) }() // the supervisor's restart
	require.NoError(t, h.s.WaitConnected(context.Background()))
	_, err = h.s.do(context.Background(), countHit("a"))
	assert.NoError(t, err, "served by the new connection")
}

func TestRedialReplacesTheServingConnection(t *testing.T) {
	old := &fakeConn{do: okDo}
	fresh := &fakeConn{do: okDo}
	h := run(t, nil, old, fresh)
	h.connected(t)
	h.s.Redial("the sentinels name 10.0.0.2:6379 now")
	err := <-h.errc
	assert.ErrorContains(t, err, "the sentinels name 10.0.0.2:6379 now")
	assert.Error(t, old.Err(), "the old connection is closed")
	go func() { h.errc <- h.s.Serve(context.Background()) }() // the supervisor's restart
	require.NoError(t, h.s.WaitConnected(context.Background()))
	_, err = h.s.do(context.Background(), countHit("a"))
	assert.NoError(t, err, "served by the new connection")
	select {
	case err := <-h.errc:
		t.Fatalf("a Redial made before the connection was dialed replaced it: %v", err)
	default:
	}
}

func TestCallsStayQueuedWhileRedisDoesNotAnswer(t *testing.T) {
	held := newGate()
	conn := &fakeConn{}
	conn.do = func(cmd string, args ...any) (any, error) {
		if strings.Contains(fmt.Sprint(args...), ":stuck:") {
			held.hold() // Redis does not answer
		}
		return okDo(cmd, args...)
	}
	// Stalled as soon as a call is in the air without a reply.
	h := run(t, func(c *Config) { c.stallAfter = time.Nanosecond }, conn)
	h.connected(t)
	stuck := make(chan error, 1)
	go func() {
		_, err := h.s.do(t.Context(), countHit("stuck"))
		stuck <- err
	}()
	<-held.entered

	ctx, cancel := context.WithCancel(t.Context())
	gone := make(chan error, 1)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, id := range []string{"q0", "gone", "q1"} {
		if id == "gone" {
			go func() {
				_, err := h.s.do(ctx, countHit(id))
				gone <- err
			}()
		} else {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i/2] = h.s.do(t.Context(), countHit(id))
			}()
		}
		h.waitQueued(t, i+1) // not taken: the writer waits for a reply
	}
	cancel()
	err := <-gone
	assert.ErrorIs(t, err, context.Canceled, "withdrawn from the queue: never sent")
	assert.NotErrorIs(t, err, protocol.ErrTimeout)
	close(held.release)
	require.NoError(t, <-stuck)
	wg.Wait()
	assert.NoError(t, errs[0])
	assert.NoError(t, errs[1])
	assert.Zero(t, conn.sentWith(":gone:"))
}

func TestManyInTheAirGatherUntilAReply(t *testing.T) {
	g := newGate()
	held := newGate()
	conn := &fakeConn{beforeSend: holdFirst(is(g))}
	conn.do = func(cmd string, args ...any) (any, error) {
		if strings.Contains(fmt.Sprint(args...), ":q0:") {
			held.hold()
		}
		return okDo(cmd, args...)
	}
	h := run(t, func(c *Config) {
		oneByOne(c)
		c.stallAfter = time.Hour // only the count in the air decides
	}, conn)
	h.connected(t)
	reqs := make([]protocol.Request, eagerBelow+2)
	for i := range reqs {
		reqs[i] = countHit(fmt.Sprint("q", i))
	}
	more := make(chan []error, 1)
	go func() {
		<-held.entered // eagerBelow+2 calls in the air
		// first's reply may have been read after the q's were written, which
		// lets one more call out: send one, and see where it went.
		errs := make([]error, 4)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[3] = h.s.do(t.Context(), countHit("pre"))
		}()
		for st := h.s.Stats(); st.QueueDepth == 0 && st.InAir != len(reqs)+1; st = h.s.Stats() {
			runtime.Gosched()
		}
		base := h.s.Stats().QueueDepth
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = h.s.do(t.Context(), countHit(fmt.Sprint("r", i)))
			}()
			h.waitQueued(t, base+i+1) // gathered in the queue, not written
		}
		conn.mu.Lock()
		flushes := conn.flushes
		conn.mu.Unlock()
		close(held.release)
		wg.Wait()
		conn.mu.Lock()
		assert.Equal(t, 1, conn.flushes-flushes, "the queued calls went out together once a reply was read")
		conn.mu.Unlock()
		more <- errs
	}()
	for _, err := range queueBehind(t, h, g, reqs) {
		assert.NoError(t, err)
	}
	for _, err := range <-more {
		assert.NoError(t, err)
	}
}
