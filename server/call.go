package server

import (
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

// call is one request on its way through the request channel.
type call struct {
	req      protocol.Request
	deadline time.Time // when the caller stops waiting
	state    atomic.Int32
	reply    chan result // buffered by one: answering never blocks
}

type result struct {
	rep protocol.Reply
	err error
}

func newCall(req protocol.Request, deadline time.Time) *call {
	return &call{req: req, deadline: deadline, reply: make(chan result, 1)}
}

// take claims the call for execution; false means the caller has left.
func (c *call) take() bool { return c.state.CompareAndSwap(callQueued, callTaken) }

// abandon withdraws a call that has not been taken; false means the server
// has it and will answer.
func (c *call) abandon() bool { return c.state.CompareAndSwap(callQueued, callAbandoned) }

// gone reports whether the caller has stopped waiting for a taken call.
func (c *call) gone(now time.Time) bool { return !c.deadline.IsZero() && now.After(c.deadline) }

// answer replies to a taken call, once; later answers are dropped.
func (c *call) answer(rep protocol.Reply, err error) {
	if c.state.CompareAndSwap(callTaken, callAnswered) {
		c.reply <- result{rep, err}
	}
}
