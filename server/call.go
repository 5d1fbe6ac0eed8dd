package server

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hammer-go/hammerredis/protocol"
)

// A call moves through these states. The server takes a queued call before
// it sends anything to Redis; a caller that gives up abandons it. Whichever
// happens first wins, so a call the caller was told was never sent cannot
// reach Redis later, and a taken call is always answered.
const (
	callQueued int32 = iota
	callTaken
	callAbandoned
	callAnswered
)

// call is one request on its way through the request channel, and its
// reply. Calls are pooled: a call goes back to the pool only once its caller
// has read the answer, when neither the server nor the queue refers to it.
type call struct {
	// req points at one of the requests below: a pointer in an interface
	// costs no allocation, and the server's type switch sees one closed
	// set.
	req  protocol.Request
	hit  protocol.CountHit
	get  protocol.GetBucket
	hit7 protocol.Hit
	inc7 protocol.Inc
	set7 protocol.Set
	get7 protocol.Get
	// check is a Check's request, its limits copied into limits (the
	// caller may reuse its own once Check returns, while a call that timed
	// out may still be sent); keys holds the limits' keys, each ending at
	// keyEnds (check.go).
	check   protocol.Check
	limits  []protocol.CheckLimit
	keys    []byte
	keyEnds []int

	asking bool // send ASKING first (a Redis Cluster ASK redirect)
	state  atomic.Int32
	done   chan struct{} // buffered by one: answering never blocks
	timer  *time.Timer   // the call timeout, stopped when idle

	// The reply, written by the server before it signals done.
	count   int64
	bucket  *protocol.BucketInfo
	err     error
	allowed bool  // Hit's
	retry   int64 // Hit's RetryAfterMs
	// decisions are a Check's.
	decisions []protocol.HitReply
	// received is set by the caller once it has read done: only then is
	// the call free of the server and the queue.
	received bool
}

var callPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &call{done: make(chan struct{}, 1), timer: t}
}}

// getCall returns a fresh call from the pool.
func getCall() *call {
	c := callPool.Get().(*call)
	c.state.Store(callQueued)
	return c
}

// release returns the call to the pool if its caller has read the answer;
// otherwise the queue or the server may still refer to it, and it is left
// to the garbage collector.
func (c *call) release() {
	if !c.received {
		return
	}
	c.req, c.hit, c.get = nil, protocol.CountHit{}, protocol.GetBucket{}
	c.hit7, c.inc7, c.set7, c.get7 = protocol.Hit{}, protocol.Inc{}, protocol.Set{}, protocol.Get{}
	c.check, c.decisions = protocol.Check{}, nil
	clear(c.limits) // no ids kept alive by the pool
	c.limits = c.limits[:0]
	if cap(c.keys) > maxPooledKeys {
		c.keys = nil // a check of huge ids: not kept in the pool
	}
	c.count, c.bucket, c.err, c.allowed, c.retry = 0, nil, nil, false, 0
	c.received, c.asking = false, false
	callPool.Put(c)
}

// maxPooledKeys bounds the key buffer a pooled call keeps.
const maxPooledKeys = 4096

// take claims the call for execution; false means the caller has left.
func (c *call) take() bool { return c.state.CompareAndSwap(callQueued, callTaken) }

// abandon withdraws a call that has not been taken; false means the server
// has it and will answer.
func (c *call) abandon() bool { return c.state.CompareAndSwap(callQueued, callAbandoned) }

// answer replies to a taken call, once; later answers are dropped. The
// caller reads the reply fields only after done, so writing them after the
// state change is safe.
func (c *call) answer(count int64, bucket *protocol.BucketInfo, err error) {
	if c.state.CompareAndSwap(callTaken, callAnswered) {
		c.count, c.bucket, c.err = count, bucket, err
		c.done <- struct{}{}
	}
}

// answerHit answers a taken Hit, once.
func (c *call) answerHit(r protocol.HitReply) {
	if c.state.CompareAndSwap(callTaken, callAnswered) {
		c.count, c.allowed, c.retry = r.Count, r.Allowed, r.RetryAfterMs
		c.done <- struct{}{}
	}
}

// answerCheck answers a taken Check, once.
func (c *call) answerCheck(d []protocol.HitReply) {
	if c.state.CompareAndSwap(callTaken, callAnswered) {
		c.decisions = d
		c.done <- struct{}{}
	}
}

// fail answers the call with err.
func (c *call) fail(err error) { c.answer(0, nil, err) }
