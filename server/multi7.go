package server

import (
	"fmt"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/protocol"
)

// Hammer 7's multi-key runs: on a single server, Hammer 7's calls of one
// flight go out as one run of Multi7Lua (script7.go), up to maxMultiKeys
// groups per run, whatever their algorithms and keys: the script runs them
// in order, each as its own script would, so that a key may come back (hot
// keys of any algorithm) and a get sees the hits queued before it. order
// (multi.go) puts them after count_hit's runs, from f.multi7Start; a
// coalesced fix-window group is one element, of its summed increment.
// Like count_hit's runs, none goes out on a Redis Cluster, where one
// script's keys must share a slot, and ASKING calls go alone.

// sendMulti7 writes the Hammer 7 run of f's calls [start, end): every group
// led there, its key, then its algorithm, operation and numbers. The keys
// are written into one buffer first, since redigo encodes them only when
// Send is called.
func (cn *conn) sendMulti7(f *flight, start, end int) error {
	cn.multiBuf, cn.multiOff = cn.multiBuf[:0], cn.multiOff[:0]
	for k := start; k < end; k++ {
		if f.lead[k] == int32(k) {
			p, id, now, _, _ := call7(f.calls[k].req)
			cn.multiBuf = p.AppendKey(cn.multiBuf, id, now)
			cn.multiOff = append(cn.multiOff, len(cn.multiBuf))
		}
	}
	cmd, script := "EVALSHA", multi7.sha
	if cn.evalMulti7 {
		cmd, script = "EVAL", multi7.source
		cn.evalMulti7 = false // cached again by this EVAL
	}
	cn.args = append(cn.args[:0], script, len(cn.multiOff))
	from := 0
	for _, to := range cn.multiOff {
		cn.args = append(cn.args, cn.multiBuf[from:to:to])
		from = to
	}
	cn.args = append(cn.args, cn.scriptClock())
	for k := start; k < end; k++ {
		if f.lead[k] != int32(k) {
			continue
		}
		p, _, now, op, n := call7(f.calls[k].req)
		if f.next[k] >= 0 {
			op, n = "hit", f.sum[k] // a coalesced fix-window group
		}
		a, b, c := cn.nums7(p, now, n)
		cn.args = append(cn.args, int(p.Algorithm), op, a, b, c)
	}
	return cn.rc.Send(cmd, cn.args...)
}

// landMulti7 answers the groups of f's calls [start, end) from their run's
// reply, or keeps them to be sent again when nothing ran (NOSCRIPT). It
// runs on the reader. An element's error answers its calls: it may have
// come after a write, and they are never sent again.
func (cn *conn) landMulti7(f *flight, start, end int, reply any, err error) {
	if err != nil {
		if isNoScript(err) {
			f.lostMulti7 = true
			f.singly = append(f.singly, f.calls[start:end]...)
			return
		}
		cn.failRange(f, start, end, err) // READONLY included: callErr tells
		return
	}
	elems, ok := cn.runElems(f, start, end, reply, "Hammer 7")
	if !ok {
		return
	}
	i := 0
	for k := start; k < end; k++ {
		if f.lead[k] != int32(k) {
			continue
		}
		e := elems[i]
		i++
		var eerr error
		if rerr, isErr := e.(redis.Error); isErr {
			e, eerr = nil, rerr
		}
		if f.next[k] < 0 {
			cn.finish(f.calls[k], e, eerr)
		} else {
			cn.answerGroup(f, k, e, eerr)
		}
	}
}

// call7 returns what a Hammer 7 request names: its policy, id and now, the
// operation its script runs and its number (cost, increment or count).
func call7(req protocol.Request) (p protocol.Policy, id string, now int64, op string, n int64) {
	switch r := req.(type) {
	case *protocol.Hit:
		return r.Policy, r.ID, r.Now, "hit", r.Cost
	case *protocol.Inc:
		op := "inc"
		if r.Policy.Algorithm == protocol.FixWindow {
			op = "hit" // fix_window's script makes inc a hit without a limit
		}
		return r.Policy, r.ID, r.Now, op, r.N
	case *protocol.Set:
		return r.Policy, r.ID, r.Now, "set", r.Count
	case *protocol.Get:
		return r.Policy, r.ID, r.Now, "get", 0
	}
	panic(fmt.Sprintf("hammerredis: %T is not a Hammer 7 request", req))
}

// nums7 returns the three numbers of a call of policy p, as its script
// takes them: a fix window's increment and end (and 0), a sliding window's
// seconds, limit and count, a bucket's capacity, rate and cost.
func (cn *conn) nums7(p protocol.Policy, now, n int64) (a, b, c any) {
	switch p.Algorithm {
	case protocol.FixWindow:
		_, end := p.Window(now)
		return cn.box(n), cn.box(end), zeroArg
	case protocol.SlidingWindow:
		return cn.box(p.WindowSeconds()), cn.box(p.Limit), cn.box(n)
	default:
		return cn.box(p.Limit), cn.box(p.Rate), cn.box(n)
	}
}

var zeroArg any = 0

// box returns v in an interface, reusing a recent box of the same value: a
// limiter's numbers repeat from call to call, and boxing an int64 past 255
// allocates. It runs on the writer.
func (cn *conn) box(v int64) any {
	i := uint64(v) % uint64(len(cn.boxes))
	if b := &cn.boxes[i]; b.a != nil && b.v == v {
		return b.a
	}
	a := any(v)
	cn.boxes[i] = boxed{v, a}
	return a
}

// boxed is one entry of conn.box's cache.
type boxed struct {
	v int64
	a any
}
