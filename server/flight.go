package server

// Pipelining. The writer (the server goroutine) writes calls as flights, each
// in one go, without waiting for replies: a call queued while few others are
// in the air goes out at once, and while many are, the calls that queue go
// out together once a reply has come back (conn.mayWrite). The reader
// (reader.go) reads the replies in order; each answers its call (or its
// coalesced group). DeleteBuckets does not go through the pipeline: it runs
// on a connection of its own (delete.go).

// flight is one pipelined write of calls, waiting for its replies. The
// writer fills and writes it, then hands it to the reader.
type flight struct {
	calls      []*call
	lead, next []int32 // groups: see plan
	sum        []int64
	evalSource bool // count_hit as EVAL with the source (after NOSCRIPT)
	// due is the index of the first group whose reply has not been read:
	// the calls of groups led before it are answered (or wait in noScript
	// or singly), the others are not. The connection never touches an
	// answered call again: its caller may already have reused it.
	due int

	// Calls to send again once the flight has landed, rare: NOSCRIPT
	// replies (again with EVAL), coalesced groups that wrote nothing (one by
	// one). lostScript: Redis lost the coalesced script.
	noScript, singly []*call
	lostScript       bool
	// runs: the calls that go out in multi-key runs, count_hit's before
	// multi7Start, Hammer 7's from there to checkStart and checks from
	// there (multi.go, multi7.go, multicheck.go); lostMulti, lostMulti7,
	// lostMultiCheck: Redis lost the multi-key script of a kind.
	runs                                  []span
	multi7Start, checkStart               int
	lostMulti, lostMulti7, lostMultiCheck bool
}

// launch writes calls as one flight, flushes them and hands the flight to
// the reader. On a write error it answers them (written: outcome unknown;
// not written: ErrClosed) and leaves the broken connection to serve. It runs
// on the writer.
func (cn *conn) launch(calls []*call, evalSource, coalesce bool) {
	if len(calls) == 0 {
		return
	}
	f := cn.newFlight()
	f.calls = append(f.calls, calls...)
	f.evalSource = evalSource
	coalesce = coalesce && !evalSource && !cn.srv.cfg.DisableCoalescing
	m := 0
	if coalesce && !cn.srv.cfg.Cluster && len(f.calls) > 1 {
		m = cn.order(f)
	}
	cn.plan(f, coalesce)
	f.chunk(m)
	// In index order, as the reader reads the replies.
	for k := 0; k < len(f.calls); {
		if end := f.runAt(k); end >= 0 {
			if err := cn.sendRun(f, k, end); err != nil {
				cn.failWriting(f, end, err)
				return
			}
			k = end
			continue
		}
		if f.lead[k] == int32(k) { // else sent with its group's first call
			if err := cn.sendGroup(f, k); err != nil {
				cn.failWriting(f, k+1, err)
				return
			}
		}
		k++
	}
	if err := cn.rc.Flush(); err != nil {
		cn.failSent(f.calls, err)
		cn.freeFlight(f)
		return
	}
	cn.addInAir(len(f.calls))
	cn.sent <- f
}

// failWriting answers the calls of f after a write error: the groups led
// before bound may have left the buffer, the last of them in part; the rest
// were never written.
func (cn *conn) failWriting(f *flight, bound int, err error) {
	for i, c := range f.calls {
		if int(f.lead[i]) < bound {
			c.fail(callErr(cn.rc, c.req, err))
		} else {
			failUnsent(f.calls[i : i+1])
		}
	}
	cn.freeFlight(f)
}

// groupSize returns how many calls the group led by call k holds.
func (f *flight) groupSize(k int) int {
	n := 0
	for i := int32(k); i >= 0; i = f.next[i] {
		n++
	}
	return n
}

// eachUnanswered calls fn for every call of f not answered yet.
func (f *flight) eachUnanswered(fn func(*call)) {
	for i, c := range f.calls {
		if int(f.lead[i]) >= f.due {
			fn(c)
		}
	}
	for _, c := range f.noScript {
		fn(c)
	}
	for _, c := range f.singly {
		fn(c)
	}
}

// newFlight returns a landed flight to reuse, or a new one. Either goroutine
// may call it.
func (cn *conn) newFlight() *flight {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if n := len(cn.spare); n > 0 {
		f := cn.spare[n-1]
		cn.spare = cn.spare[:n-1]
		return f
	}
	return &flight{}
}

// freeFlight clears f, dropping its references to calls, and keeps it for
// reuse. Either goroutine may call it, for a flight it holds.
func (cn *conn) freeFlight(f *flight) {
	clear(f.calls)
	f.calls, f.due, f.evalSource, f.noScript, f.singly, f.lostScript = f.calls[:0], 0, false, nil, nil, false
	f.runs, f.multi7Start, f.checkStart = f.runs[:0], 0, 0
	f.lostMulti, f.lostMulti7, f.lostMultiCheck = false, false, false
	cn.mu.Lock()
	cn.spare = append(cn.spare, f)
	cn.mu.Unlock()
}
