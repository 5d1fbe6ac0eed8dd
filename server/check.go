package server

import (
	"bytes"
	"context"
	"fmt"

	"github.com/hammer-go/hammerredis/protocol"
)

// A protocol.Check goes through the pipeline as one call: one run of the
// check script (scriptcheck.go), or its part of a run of the multi-check
// script with the other checks of its flight (multicheck.go); never
// coalesced, sent again after NOSCRIPT like the other scripts, never after
// its outcome is unknown. Its keys are built on the
// caller's goroutine (validate), so that a check whose limits would write
// one key as two types is refused before it is queued, and the writer only
// copies them.

// Check decides every limit of r in one script run; asking sends ASKING
// first (a Redis Cluster ASK redirect). On a Redis Cluster every key of r
// must be in one slot (the router splits a check that is not). It needs
// Redis 7.0, as Hammer 7's calls do: on an older server it fails unsent
// with protocol.ErrUnsupported.
func (s *Server) Check(ctx context.Context, r protocol.Check, asking bool) (protocol.CheckReply, error) {
	c := getCall()
	c.asking = asking
	c.limits = append(c.limits[:0], r.Limits...)
	c.check = r
	c.check.Limits = c.limits
	c.req = &c.check
	err := s.call(ctx, c, s.cfg.CallTimeout)
	var rep protocol.CheckReply
	if c.received && err == nil {
		rep.Decisions = c.decisions
	}
	c.release()
	return rep, err
}

// validate checks c's request before it is queued; for a check it also
// builds the keys, which validateCheck needs and sendCheck sends.
func (s *Server) validate(c *call) error {
	if err := c.req.Validate(); err != nil {
		return err
	}
	if r, ok := c.req.(*protocol.Check); ok {
		return c.checkKeys(s.layout(), r)
	}
	return nil
}

// checkKeys writes the keys of r's limits into c.keys, ending at
// c.keyEnds, and refuses two limits that would write one key as different
// types (a Hammer 7 prefix that overlaps the Hammer 6 layout, or ids with
// colons): their calls one by one would fail with WRONGTYPE, or mix their
// data in one hash.
func (c *call) checkKeys(layout protocol.Layout, r *protocol.Check) error {
	c.keys, c.keyEnds = c.keys[:0], c.keyEnds[:0]
	for _, l := range r.Limits {
		c.keys = AppendCheckKey(c.keys, layout, r.Now, l)
		c.keyEnds = append(c.keyEnds, len(c.keys))
	}
	for i := range r.Limits {
		for j := range i {
			if storage(r.Limits[i]) != storage(r.Limits[j]) && bytes.Equal(c.key(i), c.key(j)) {
				return fmt.Errorf("%w: check: limits %d and %d name one key, %q, as different types", protocol.ErrInvalid, j, i, c.key(i))
			}
		}
	}
	return nil
}

// key returns the key of a check's limit i, once checkKeys has built them.
func (c *call) key(i int) []byte {
	from := 0
	if i > 0 {
		from = c.keyEnds[i-1]
	}
	return c.keys[from:c.keyEnds[i]:c.keyEnds[i]]
}

// storage names what a limit keeps in its key: a Hammer 6 hash, a fix
// window's string, a sliding window's sorted set, or a bucket's hash
// (leaky and token buckets keep the same fields).
func storage(l protocol.CheckLimit) int {
	switch {
	case l.Hammer6:
		return 0
	case l.Policy.Algorithm == protocol.TokenBucket:
		return int(protocol.LeakyBucket)
	default:
		return int(l.Policy.Algorithm)
	}
}

// CheckKey returns the Redis key of a check's limit l at nowMs: for a
// Hammer 6 limit the layout's key of its id's bucket nowMs/ScaleMs, else
// its policy's key (protocol.Policy.Key). A Redis Cluster router routes a
// check by the slots of these keys.
func CheckKey(layout protocol.Layout, nowMs int64, l protocol.CheckLimit) string {
	return string(AppendCheckKey(nil, layout, nowMs, l))
}

// AppendCheckKey appends CheckKey's key to dst.
func AppendCheckKey(dst []byte, layout protocol.Layout, nowMs int64, l protocol.CheckLimit) []byte {
	if l.Hammer6 {
		b, _ := l.Bucket6(nowMs)
		return layout.AppendKey(dst, protocol.BucketKey{Bucket: b, ID: l.ID})
	}
	return l.Policy.AppendKey(dst, l.ID, nowMs)
}

// sendCheck writes a check: one run of the check script with its keys,
// mode, clock, Now, TTL and five arguments per limit (CheckLua).
func (cn *conn) sendCheck(c *call, evalSource bool) error {
	r := &c.check
	cmd, script := "EVALSHA", checkScript.sha
	if evalSource {
		cmd, script = "EVAL", checkScript.source
	}
	cn.args = append(cn.args[:0], script, len(r.Limits))
	cn.args = c.appendKeys(cn.args)
	cn.args = append(cn.args, checkMode(r), cn.scriptClock(), cn.nowArg(r.Now), cn.ttlArg)
	cn.args = cn.appendLimits(cn.args, r)
	return cn.rc.Send(cmd, cn.args...)
}

// appendKeys appends the keys of c's check to args.
func (c *call) appendKeys(args []any) []any {
	for i := range c.check.Limits {
		args = append(args, c.key(i))
	}
	return args
}

// checkMode is a check's mode argument: "all" (AllOrNothing) or "each".
func checkMode(r *protocol.Check) any {
	if r.AllOrNothing {
		return modeAll
	}
	return modeEach
}

// The arguments of every check, boxed once: a string boxed as it is
// appended to the arguments allocates.
var (
	modeAll, modeEach   any = "all", "each"
	shadowYes, shadowNo any = "1", "0"
)

// appendLimits appends the five arguments of each limit of r to args: its
// kind, "1" when shadow else "0", its cost and two numbers (CheckLua).
func (cn *conn) appendLimits(args []any, r *protocol.Check) []any {
	for _, l := range r.Limits {
		p := l.Policy
		kind, a, b := int(p.Algorithm), cn.box(p.Limit), any(nil)
		switch {
		case l.Hammer6:
			_, toNext := l.Bucket6(r.Now)
			kind, b = 0, cn.box(toNext)
		case p.Algorithm == protocol.FixWindow:
			_, end := p.Window(r.Now)
			b = cn.box(end)
		case p.Algorithm == protocol.SlidingWindow:
			b = cn.box(p.WindowSeconds())
		default:
			b = cn.box(p.Rate)
		}
		shadow := shadowNo
		if l.Shadow {
			shadow = shadowYes
		}
		args = append(args, kind, shadow, cn.box(l.Cost), a, b)
	}
	return args
}

// decodeCheck decodes the check script's reply: one {count, retry ms} per
// limit of r, retry 0 when allowed, -1 (never) or at least 1 when denied.
func decodeCheck(r *protocol.Check, reply any) ([]protocol.HitReply, error) {
	elems, ok := reply.([]any)
	if !ok || len(elems) != len(r.Limits) {
		return nil, fmt.Errorf("%w: check replied %T of %d elements, want %d", protocol.ErrBadReply, reply, lenOf(reply), len(r.Limits))
	}
	out := make([]protocol.HitReply, len(elems))
	for i, e := range elems {
		pair, ok := e.([]any)
		if !ok || len(pair) != 2 {
			return nil, fmt.Errorf("%w: check replied %T of %d elements for limit %d, want 2 integers", protocol.ErrBadReply, e, lenOf(e), i)
		}
		var err error
		if out[i], err = decision(pair[0], pair[1], i); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeFlat decodes a check's part of a multi-check run's reply: its
// limits' count and retry ms, flattened (MultiCheckLua).
func decodeFlat(r *protocol.Check, elems []any) ([]protocol.HitReply, error) {
	if len(elems) != 2*len(r.Limits) {
		return nil, fmt.Errorf("%w: check replied %d integers, want %d", protocol.ErrBadReply, len(elems), 2*len(r.Limits))
	}
	out := make([]protocol.HitReply, len(r.Limits))
	for i := range out {
		var err error
		if out[i], err = decision(elems[2*i], elems[2*i+1], i); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decision decodes limit i's count and retry ms.
func decision(count, retry any, i int) (protocol.HitReply, error) {
	n, ok1 := count.(int64)
	ms, ok2 := retry.(int64)
	switch {
	case !ok1 || !ok2:
		return protocol.HitReply{}, fmt.Errorf("%w: check replied %T and %T for limit %d, want 2 integers", protocol.ErrBadReply, count, retry, i)
	case ms < 0 && ms != protocol.Never:
		return protocol.HitReply{}, fmt.Errorf("%w: check replied a deny with a wait of %d ms for limit %d", protocol.ErrBadReply, ms, i)
	}
	return protocol.HitReply{Allowed: ms == 0, Count: n, RetryAfterMs: ms}, nil
}
