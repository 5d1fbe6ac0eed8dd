package server

import (
	"fmt"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/protocol"
)

// Multi-check runs: on a single server, the checks of one flight go out as
// one run of MultiCheckLua (scriptcheck.go), up to maxMultiKeys checks per
// run, instead of one run of the check script each. The script runs them in
// queue order, each as the check script would run it alone, so that a later
// check sees the earlier's writes and keys may repeat; one check's error
// does not stop the others. order (multi.go) puts them after Hammer 7's
// runs, from f.checkStart, each check a group of its own. Like the other
// runs, none goes out on a Redis Cluster, where one script's keys must
// share a slot; ASKING calls and checks on a bucket the flight reads go
// alone.

// sendMultiCheck writes the run of f's checks [start, end): every check's
// keys (built by its caller), the clock and the TTL, then for each check
// its number of limits, its mode, Now and its limits' arguments.
func (cn *conn) sendMultiCheck(f *flight, start, end int) error {
	cmd, script := "EVALSHA", multiCheck.sha
	if cn.evalMultiCheck {
		cmd, script = "EVAL", multiCheck.source
		cn.evalMultiCheck = false // cached again by this EVAL
	}
	keys := 0
	for _, c := range f.calls[start:end] {
		keys += len(c.check.Limits)
	}
	cn.args = append(cn.args[:0], script, keys)
	for _, c := range f.calls[start:end] {
		cn.args = c.appendKeys(cn.args)
	}
	cn.args = append(cn.args, cn.scriptClock(), cn.ttlArg)
	for _, c := range f.calls[start:end] {
		r := &c.check
		cn.args = append(cn.args, len(r.Limits), checkMode(r), cn.nowArg(r.Now))
		cn.args = cn.appendLimits(cn.args, r)
	}
	return cn.rc.Send(cmd, cn.args...)
}

// landMultiCheck answers the checks of f's calls [start, end) from their
// run's reply, or keeps them to be sent again one by one when nothing ran
// (NOSCRIPT). It runs on the reader. The reply is one flat array, each
// check's part in turn (MultiCheckLua): its 2n integers, or its error. An
// error answers its check alone: it may have come after a write, and the
// check is never sent again.
func (cn *conn) landMultiCheck(f *flight, start, end int, reply any, err error) {
	if err != nil {
		if isNoScript(err) {
			f.lostMultiCheck = true
			f.singly = append(f.singly, f.calls[start:end]...)
			return
		}
		cn.failRange(f, start, end, err) // READONLY included: callErr tells
		return
	}
	elems, _ := reply.([]any)
	if want := checkParts(f.calls[start:end], elems); want != len(elems) {
		cn.failRange(f, start, end, fmt.Errorf("%w: the multi-key check script replied %T of %d elements, want %d",
			protocol.ErrBadReply, reply, lenOf(reply), want))
		return
	}
	for _, c := range f.calls[start:end] {
		if rerr, isErr := elems[0].(redis.Error); isErr {
			c.fail(callErr(cn.rc, c.req, rerr))
			elems = elems[1:]
			continue
		}
		n := 2 * len(c.check.Limits)
		d, err := decodeFlat(&c.check, elems[:n])
		elems = elems[n:]
		if err != nil {
			c.fail(callErr(cn.rc, c.req, err))
			continue
		}
		c.answerCheck(d)
	}
}

// checkParts returns how many elements a multi-check run's reply, elems,
// holds when it has one part per check of calls: an error, or two
// integers per limit. It walks elems as far as they go, and counts the
// rest as decisions.
func checkParts(calls []*call, elems []any) int {
	k := 0
	for _, c := range calls {
		if k < len(elems) {
			if _, isErr := elems[k].(redis.Error); isErr {
				k++
				continue
			}
		}
		k += 2 * len(c.check.Limits)
	}
	return k
}
