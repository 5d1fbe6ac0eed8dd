package server

import (
	"errors"
	"math"
	"strings"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/protocol"
)

// Hot-key coalescing: when several hits on one bucket are queued together,
// the pipeline sends them as one count_hit of their summed increment, so
// Redis runs one script instead of many. Each caller still gets the count
// it would have had in queue order: the total minus the increments queued
// after its own. The bucket's created is the first hit's now (HSETNX) and
// its updated the last hit's, as if the hits had run one by one.
//
// A key that is also read (GetBucket) in the same pipeline is not coalesced,
// so the read sees exactly the hits queued before it.

// plan groups the calls of f: f.lead[i] is the index of the first call of
// i's group (i itself when alone), f.next[i] the next call of the group, -1
// at its end, and f.sum[i] the group's summed increment when i leads it.
// Without coalesce every call is its own group. Hammer 7's fix-window hits
// and incs on one key group the same way (fixKeyOf), their key read by no
// get or set of the flight.
func (cn *conn) plan(f *flight, coalesce bool) {
	calls := f.calls
	n := len(calls)
	f.lead, f.next, f.sum = resize(f.lead, n), resize(f.next, n), resize(f.sum, n)
	for i := range n {
		f.lead[i], f.next[i] = int32(i), -1
	}
	if !coalesce || n < 2 {
		return
	}
	if cn.last == nil {
		cn.last = make(map[protocol.BucketKey]int32)
		cn.lastFix = make(map[fixKey]int32)
	}
	clear(cn.last)
	clear(cn.lastFix)
	for _, c := range calls {
		switch r := c.req.(type) {
		case *protocol.GetBucket:
			cn.last[r.Key] = -1 // read here: not coalesced
		case *protocol.Get, *protocol.Set:
			if fk := windowKey(r); fk.prefix != "" {
				cn.lastFix[fk] = -1 // read or replaced here: not coalesced
			}
		}
	}
	for i, c := range calls {
		if c.asking {
			continue // an ASKING call goes alone
		}
		h, isHit := c.req.(*protocol.CountHit)
		fk := fixKeyOf(c.req)
		var j int32
		var seen bool
		switch {
		case isHit:
			j, seen = cn.last[h.Key]
		case fk.prefix != "":
			j, seen = cn.lastFix[fk]
		default:
			continue // a read, or not a fix window: alone
		}
		inc := increment(c)
		switch {
		case seen && j < 0:
			continue
		case seen && sameSign(f.sum[f.lead[j]], inc) && !addOverflows(f.sum[f.lead[j]], inc):
			f.next[j] = int32(i)
			f.lead[i] = f.lead[j]
			f.sum[f.lead[i]] += inc
		default: // a new group; see sameSign and addOverflows
			f.sum[i] = inc
		}
		if isHit {
			cn.last[h.Key] = int32(i)
		} else {
			cn.lastFix[fk] = int32(i)
		}
	}
}

// fixKey names a fix window's key without building it: the prefix, the id
// and the window. Its prefix is "" for any other call (a policy's prefix
// never is).
type fixKey struct {
	prefix, id string
	window     int64
}

// fixKeyOf returns the key of a fix-window hit or inc, the calls that
// coalesce; fixKey{} for any other.
func fixKeyOf(req protocol.Request) fixKey {
	switch req.(type) {
	case *protocol.Hit, *protocol.Inc:
		return windowKey(req)
	}
	return fixKey{}
}

// windowKey returns the key of a Hammer 7 call of a fix window, fixKey{}
// for another algorithm.
func windowKey(req protocol.Request) fixKey {
	p, id, now, _, _ := call7(req)
	if p.Algorithm != protocol.FixWindow {
		return fixKey{}
	}
	w, _ := p.Window(now)
	return fixKey{p.Prefix, id, w}
}

// increment returns what a coalesced call adds: a count_hit's increment, a
// fix-window hit's cost or inc's n.
func increment(c *call) int64 {
	switch r := c.req.(type) {
	case *protocol.CountHit:
		return r.Increment
	case *protocol.Hit:
		return r.Cost
	case *protocol.Inc:
		return r.N
	}
	return 0
}

// sameSign reports whether b may join a group whose sum is a: only
// increments of one sign are summed, so the running count moves one way and
// overflows along the way only if the sum does, which the group then reports
// by running its hits one by one.
func sameSign(a, b int64) bool { return (a >= 0 && b >= 0) || (a <= 0 && b <= 0) }

func addOverflows(a, b int64) bool {
	return (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b)
}

// groupNotRun reports whether a coalesced group's error says that its
// script wrote nothing, and the error as Redis would have given it: NOSCRIPT
// (the script did not run) or a refusal the script made before its first
// write, which it marks with notRunCode.
func groupNotRun(err error) (bool, error) {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return false, err
	}
	if why, ok := strings.CutPrefix(string(rerr), notRunCode+" "); ok {
		return true, redis.Error(why)
	}
	return isNoScript(err), err
}

func isReadOnly(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(string(rerr), "READONLY")
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// sendGroup writes the group of f that starts at call k: the call itself
// when alone, else one coalesced count_hit.
func (cn *conn) sendGroup(f *flight, k int) error {
	if f.next[k] < 0 {
		return cn.send(f.calls[k], f.evalSource)
	}
	if isHammer7(f.calls[k].req) { // a fix window: one INCRBY of the sum
		return cn.send7(f.calls[k], f.sum[k], false)
	}
	first := f.calls[k].req.(*protocol.CountHit)
	cmd, script := "EVALSHA", coalescedSHA
	if cn.evalCoalesced {
		cmd, script = "EVAL", coalescedSource
		cn.evalCoalesced = false // cached again by this EVAL
	}
	cn.args = append(cn.args[:0], script, 1, cn.key(first.Key), cn.nowArg(first.Now), f.lastNow(k), f.sum[k], cn.ttlArg)
	return cn.rc.Send(cmd, cn.args...)
}

// lastNow returns the now of the last hit of the group led by call k: the
// bucket's updated, as if the hits had run one by one.
func (f *flight) lastNow(k int) int64 {
	last := int32(k)
	for i := f.next[k]; i >= 0; i = f.next[i] {
		last = i
	}
	return f.calls[last].req.(*protocol.CountHit).Now
}

// answerGroup answers every call of the group of f that starts at call k
// from the coalesced reply, the count after all of them, or with its error.
// A fix-window hit is then judged on its own count.
func (cn *conn) answerGroup(f *flight, k int, reply any, err error) {
	total := int64(0)
	if err == nil {
		total, err = decodeCount(reply)
	}
	after := f.sum[k] // increments not yet accounted for, this call's included
	for i := int32(k); i >= 0; i = f.next[i] {
		c := f.calls[i]
		if err != nil {
			c.fail(callErr(cn.rc, c.req, err))
			continue
		}
		after -= increment(c)
		if h, ok := c.req.(*protocol.Hit); ok {
			c.answerHit(judgeFix(h, total-after))
			continue
		}
		c.answer(total-after, nil, nil)
	}
}
