package server

import (
	"fmt"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/protocol"
)

// Multi-key runs: on a single server, the hits of one flight on distinct
// buckets go out as one run of the multi-key script (script.go), up to
// maxMultiKeys buckets per run, instead of one count_hit each, so that Redis
// spends less per check where it is the bottleneck. Each bucket gets what
// its count_hit (or its coalesced group) would have written, and each caller
// its own count. Hits on a bucket that the flight also reads (GetBucket) are
// left out, as they are of coalescing, and so are ASKING calls; on a Redis
// Cluster, where one script's keys must share a slot, no flight is run so.
//
// order moves those calls to the front of the flight, keeping their order
// and that of the others; plan then groups them by key; chunk cuts the
// groups at the front into runs; the writer sends the runs first
// (sendMulti), and the reader reads each run's reply, one element per group
// (landMulti).

// order moves the calls of f that may run in a multi-key script to its
// front, in queue order: first count_hit's, then Hammer 7's (multi7.go),
// whose segment starts at f.multi7Start, then checks (multicheck.go), from
// f.checkStart. It returns where those segments end. Calls on distinct keys
// are independent, so their order between keys does not matter; the calls
// of one key keep theirs.
func (cn *conn) order(f *flight) int {
	read := cn.readKeys(f)
	cn.others = append(cn.others[:0], f.calls...)
	k, end := 0, 0
	for kind := runCountHit; kind <= runAlone; kind++ {
		switch kind {
		case runHammer7:
			f.multi7Start = k
		case runCheck:
			f.checkStart = k
		case runAlone:
			end = k
		}
		for _, c := range cn.others {
			if runKind(c, read) == kind {
				f.calls[k] = c
				k++
			}
		}
	}
	clear(cn.others)
	return end
}

// The kinds of calls, in the order order puts them: those of the three
// kinds of multi-key runs, then those that go alone.
const (
	runCountHit = iota
	runHammer7
	runCheck
	runAlone
)

// runKind returns the kind of multi-key run c may join, runAlone for none:
// an ASKING call goes alone, and so do a hit or a check on a bucket that the
// flight reads (read).
func runKind(c *call, read map[protocol.BucketKey]bool) int {
	if c.asking {
		return runAlone
	}
	switch r := c.req.(type) {
	case *protocol.CountHit:
		if !read[r.Key] {
			return runCountHit
		}
	case *protocol.Hit, *protocol.Inc, *protocol.Set, *protocol.Get:
		return runHammer7
	case *protocol.Check:
		if !readsBucket(r, read) {
			return runCheck
		}
	}
	return runAlone
}

// readsBucket reports whether a Hammer 6 limit of r counts in a bucket of
// read.
func readsBucket(r *protocol.Check, read map[protocol.BucketKey]bool) bool {
	if read == nil {
		return false
	}
	for _, l := range r.Limits {
		if b, _ := l.Bucket6(r.Now); l.Hammer6 && read[protocol.BucketKey{Bucket: b, ID: l.ID}] {
			return true
		}
	}
	return false
}

// readKeys returns the set of buckets f reads, nil when none: most flights
// read none, and a nil map reads as empty.
func (cn *conn) readKeys(f *flight) map[protocol.BucketKey]bool {
	var read map[protocol.BucketKey]bool
	for _, c := range f.calls {
		if g, ok := c.req.(*protocol.GetBucket); ok {
			if read == nil {
				if cn.readSet == nil {
					cn.readSet = make(map[protocol.BucketKey]bool)
				}
				clear(cn.readSet)
				read = cn.readSet
			}
			read[g.Key] = true
		}
	}
	return read
}

// span is a run's calls, [start, end) of its flight.
type span struct{ start, end int }

// chunk cuts the groups among the first m calls of f, once planned, into
// multi-key runs of at most maxMultiKeys groups: count_hit's before
// f.multi7Start, Hammer 7's from there to f.checkStart, and the checks'
// from there (each check a group of its own). Fewer than two groups of a
// kind make no run: one group goes out as before.
func (f *flight) chunk(m int) {
	f.runs = f.runs[:0]
	f.chunkRange(0, f.multi7Start)
	f.chunkRange(f.multi7Start, f.checkStart)
	f.chunkRange(f.checkStart, m)
}

func (f *flight) chunkRange(start, end int) {
	groups := 0
	for k := start; k < end; k++ {
		if f.lead[k] == int32(k) {
			groups++
		}
	}
	if groups < 2 {
		return
	}
	n := 0
	for k := start; k < end; k++ {
		if f.lead[k] != int32(k) {
			continue
		}
		if n == maxMultiKeys {
			f.runs = append(f.runs, span{start, k})
			start, n = k, 0
		}
		n++
	}
	f.runs = append(f.runs, span{start, end})
}

// runAt returns the end of the multi-key run of f that starts at call k, or
// -1 when none does.
func (f *flight) runAt(k int) int {
	for _, r := range f.runs {
		if r.start == k {
			return r.end
		}
	}
	return -1
}

// sendRun writes the multi-key run of f's calls [start, end), of
// count_hit's, Hammer 7's or the checks' script.
func (cn *conn) sendRun(f *flight, start, end int) error {
	switch {
	case start >= f.checkStart:
		return cn.sendMultiCheck(f, start, end)
	case start >= f.multi7Start:
		return cn.sendMulti7(f, start, end)
	}
	return cn.sendMulti(f, start, end)
}

// landRun answers the calls of f's multi-key run [start, end) from its
// reply (landMulti, landMulti7, landMultiCheck).
func (cn *conn) landRun(f *flight, start, end int, reply any, err error) {
	switch {
	case start >= f.checkStart:
		cn.landMultiCheck(f, start, end, reply, err)
	case start >= f.multi7Start:
		cn.landMulti7(f, start, end, reply, err)
	default:
		cn.landMulti(f, start, end, reply, err)
	}
}

// sendMulti writes the multi-key run of f's calls [start, end): every
// group led there, its key, first and last now and summed increment. The
// keys are written into one buffer first, since redigo encodes them only
// when Send is called.
func (cn *conn) sendMulti(f *flight, start, end int) error {
	layout := cn.srv.layout()
	cn.multiBuf, cn.multiOff = cn.multiBuf[:0], cn.multiOff[:0]
	for k := start; k < end; k++ {
		if f.lead[k] == int32(k) {
			cn.multiBuf = layout.AppendKey(cn.multiBuf, f.calls[k].req.(*protocol.CountHit).Key)
			cn.multiOff = append(cn.multiOff, len(cn.multiBuf))
		}
	}
	cmd, script := "EVALSHA", multiKeySHA
	if cn.evalMulti {
		cmd, script = "EVAL", multiKeySource
		cn.evalMulti = false // cached again by this EVAL
	}
	cn.args = append(cn.args[:0], script, len(cn.multiOff))
	from := 0
	for _, to := range cn.multiOff {
		cn.args = append(cn.args, cn.multiBuf[from:to:to])
		from = to
	}
	cn.args = append(cn.args, cn.ttlArg)
	for k := start; k < end; k++ {
		if f.lead[k] != int32(k) {
			continue
		}
		first := f.calls[k].req.(*protocol.CountHit)
		cn.args = append(cn.args, cn.nowArg(first.Now), cn.nowArg(f.lastNow(k)), f.sum[k])
	}
	return cn.rc.Send(cmd, cn.args...)
}

// landMulti answers the groups of f's calls [start, end) from their
// multi-key run's reply, or keeps them to be sent again when nothing ran. It
// runs on the reader.
func (cn *conn) landMulti(f *flight, start, end int, reply any, err error) {
	if err != nil {
		notRun, why := groupNotRun(err)
		switch {
		case notRun && isReadOnly(why):
			cn.failRange(f, start, end, why)
		case notRun:
			// The run wrote nothing (NOSCRIPT, a TTL refused): its calls
			// go again one by one.
			if isNoScript(why) {
				f.lostMulti = true
			}
			f.singly = append(f.singly, f.calls[start:end]...)
		default:
			// It may have written: its hits are never sent again.
			cn.failRange(f, start, end, err)
		}
		return
	}
	elems, ok := cn.runElems(f, start, end, reply, "count_hit")
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
		rerr, isErr := e.(redis.Error)
		if !isErr {
			cn.answerGroup(f, k, e, nil)
			continue
		}
		notRun, why := groupNotRun(rerr) // only for errors: it allocates
		switch {
		case notRun && f.next[k] < 0:
			// HINCRBY refused the lone hit: what its count_hit would say.
			cn.finish(f.calls[k], nil, why)
		case notRun:
			// Nothing written for this bucket: its hits go one by one,
			// each with its own outcome.
			for j := int32(k); j >= 0; j = f.next[j] {
				f.singly = append(f.singly, f.calls[j])
			}
		default:
			cn.answerGroup(f, k, nil, rerr)
		}
	}
}

// runElems returns the elements of a multi-key run's reply, one per group
// of f's calls [start, end); when the reply has another shape it fails the
// run's calls (never sent again: they may have run) and returns false.
func (cn *conn) runElems(f *flight, start, end int, reply any, script string) ([]any, bool) {
	elems, ok := reply.([]any)
	groups := 0
	for k := start; k < end; k++ {
		if f.lead[k] == int32(k) {
			groups++
		}
	}
	if !ok || len(elems) != groups {
		cn.failRange(f, start, end, fmt.Errorf("%w: the multi-key %s script replied %T of %d elements, want %d",
			protocol.ErrBadReply, script, reply, lenOf(reply), groups))
		return nil, false
	}
	return elems, true
}

// failRange answers every call of f's calls [start, end) with err.
func (cn *conn) failRange(f *flight, start, end int, err error) {
	for _, c := range f.calls[start:end] {
		c.fail(callErr(cn.rc, c.req, err))
	}
}
