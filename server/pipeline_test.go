package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis/protocol"
)

// gate makes the fake connection hold the reply of the first count_hit
// until released, so that calls queue up behind it.
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

// queueBehind starts one call that blocks in the server, then n more that
// queue behind it, and returns their results in call order once released.
func queueBehind(t *testing.T, h *harness, g *gate, reqs []protocol.Request) []error {
	t.Helper()
	first := make(chan error, 1)
	go func() {
		_, err := h.s.Do(context.Background(), countHit("first"))
		first <- err
	}()
	<-g.entered
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = h.s.Do(context.Background(), r)
		}()
		h.waitQueued(t, i+1) // keep queue order = call order
	}
	close(g.release)
	require.NoError(t, <-first)
	wg.Wait()
	return errs
}

func TestQueuedCallsShareOneFlush(t *testing.T) {
	for _, tt := range []struct {
		maxPipeline, wantFlushes int
	}{{0, 2}, {4, 4}, {1, 11}} {
		t.Run(fmt.Sprint("MaxPipeline=", tt.maxPipeline), func(t *testing.T) {
			g := newGate()
			conn := &fakeConn{do: func(cmd string, args ...any) (any, error) {
				if strings.Contains(fmt.Sprint(args...), "first") {
					g.hold()
				}
				return okDo(cmd, args...)
			}}
			h := run(t, Config{MaxPipeline: tt.maxPipeline}, conn)
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
			assert.Equal(t, tt.wantFlushes, conn.flushes, "one flush for the first call, then batches of up to MaxPipeline")
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
		case strings.Contains(a, "first"):
			g.hold()
		case strings.Contains(a, ":q2:"):
			return nil, conn.breakWith(io.ErrUnexpectedEOF)
		case strings.Contains(a, ":q1:"):
			return nil, redis.Error("WRONGTYPE Operation against a key holding the wrong kind of value")
		}
		return okDo(cmd, args...)
	}
	h := run(t, Config{}, conn)
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
	if c.n--; c.n < 0 {
		return c.breakWith(io.ErrClosedPipe)
	}
	return c.fakeConn.Send(cmd, args...)
}

func TestCallsNeverWrittenGetErrClosed(t *testing.T) {
	g := newGate()
	fc := &fakeConn{do: func(cmd string, args ...any) (any, error) {
		if strings.Contains(fmt.Sprint(args...), "first") {
			g.hold()
		}
		return okDo(cmd, args...)
	}}
	conn := &sendFailConn{fakeConn: fc, n: 2} // first and q0 are written, q1 fails
	h := run(t, Config{Dial: func(context.Context) (redis.Conn, error) { return conn, nil }})
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
			g.hold()
			return int64(1), nil
		}
		if cmd == "EVALSHA" && (strings.Contains(a, ":q0:") || strings.Contains(a, ":q2:")) && !flushed {
			return nil, redis.Error("NOSCRIPT No matching script. Please use EVAL.")
		}
		return int64(7), nil
	}
	h := run(t, Config{}, conn)
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

func TestDeleteBucketsSplitsTheBatchAndKeepsOrder(t *testing.T) {
	g := newGate()
	conn := &fakeConn{}
	conn.do = func(cmd string, args ...any) (any, error) {
		switch {
		case strings.Contains(fmt.Sprint(args...), "first"):
			g.hold()
		case cmd == "SCAN":
			return []any{[]byte("0"), []any{[]byte("Hammer:Redis:d:1")}}, nil
		case cmd == "DEL":
			return int64(1), nil
		case cmd == "HMGET":
			return []any{nil, nil, nil}, nil
		}
		return okDo(cmd, args...)
	}
	h := run(t, Config{}, conn)
	h.connected(t)
	reqs := []protocol.Request{countHit("a"), protocol.GetBucket{Key: protocol.BucketKey{ID: "b"}},
		protocol.DeleteBuckets{ID: "d"}, countHit("c")}
	for _, err := range queueBehind(t, h, g, reqs) {
		assert.NoError(t, err)
	}
	var order []string
	for _, c := range conn.commands() {
		order = append(order, strings.Fields(c)[0])
	}
	assert.Equal(t, []string{"PING", "EVALSHA", "EVALSHA", "HMGET", "SCAN", "DEL", "EVALSHA"}, order)
}

func TestAllCallersLeftNothingSent(t *testing.T) {
	g := newGate()
	conn := &fakeConn{do: func(cmd string, args ...any) (any, error) {
		if strings.Contains(fmt.Sprint(args...), "first") {
			g.hold()
		}
		return okDo(cmd, args...)
	}}
	h := run(t, Config{}, conn)
	h.connected(t)
	first := make(chan error, 1)
	go func() {
		_, err := h.s.Do(context.Background(), countHit("first"))
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
			_, err := h.s.Do(ctx, countHit(fmt.Sprint("gone", i)))
			assert.ErrorIs(t, err, protocol.ErrTimeout)
		}()
	}
	wg.Wait()
	close(g.release)
	require.NoError(t, <-first)
	_, err := h.s.Do(context.Background(), countHit("after"))
	require.NoError(t, err)
	for _, c := range conn.commands() {
		assert.NotContains(t, c, "gone")
	}
	assert.False(t, errors.Is(err, protocol.ErrClosed))
}
