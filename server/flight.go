package server

// Pipelining. The server goroutine keeps writing while replies come back:
// calls queued while earlier ones are in the air go out as the next flight,
// written in one go, as soon as there are at least half as many of them as
// calls still in the air, so Redis always has the next commands waiting
// without a write for every call. Replies are read in order; each answers its
// call (or its coalesced group). DeleteBuckets does not go through the
// pipeline: it runs on a connection of its own (delete.go).

// flight is one pipelined write of calls, waiting for its replies.
type flight struct {
	calls      []*call
	lead, next []int32 // groups: see plan
	sum        []int64
	evalSource bool // count_hit as EVAL with the source (after NOSCRIPT)
	// due is the index of the first group whose reply has not been read:
	// the calls of groups led before it are answered (or wait in noScript
	// or singly), the others are not. The server never touches an answered
	// call again: its caller may already have reused it.
	due int

	// Calls to send again once the flight has landed, rare: NOSCRIPT
	// replies (again with EVAL), coalesced groups that failed (one by one).
	noScript, singly []*call
}

// airborne reports whether calls wait for replies.
func (cn *conn) airborne() bool { return len(cn.flights) > 0 }

// launch writes calls as one flight and flushes them. On a write error it
// answers them (written: outcome unknown; not written: ErrClosed) and
// leaves the broken connection to serve.
func (cn *conn) launch(calls []*call, evalSource, coalesce bool) {
	if len(calls) == 0 {
		return
	}
	f := cn.newFlight()
	f.calls = append(f.calls, calls...)
	f.evalSource = evalSource
	cn.plan(f, coalesce && !evalSource && !cn.srv.cfg.DisableCoalescing)
	for k := range f.calls {
		if f.lead[k] != int32(k) {
			continue // sent with its group's first call
		}
		if err := cn.sendGroup(f, k); err != nil {
			// Groups up to this one may have left the buffer, this one in
			// part; the rest were never written.
			for i, c := range f.calls {
				if f.lead[i] <= int32(k) {
					c.fail(callErr(cn.rc, c.req, err))
				} else {
					failUnsent(f.calls[i : i+1])
				}
			}
			cn.freeFlight(f)
			return
		}
	}
	if err := cn.rc.Flush(); err != nil {
		cn.failSent(f.calls, err)
		cn.freeFlight(f)
		return
	}
	cn.flights = append(cn.flights, f)
	cn.setInAir(cn.inAir + len(f.calls))
}

// setInAir sets the count of calls in the air, which MaxPipeline bounds,
// and publishes it for Stats.
func (cn *conn) setInAir(n int) {
	cn.inAir = n
	cn.srv.stats.inAir.Store(int64(n))
}

// receive reads replies of the oldest flight and answers their calls. It
// returns when the flight has landed, or early when enough calls have queued
// up to make the next flight worth writing, or when the connection broke.
func (cn *conn) receive() {
	f := cn.flights[0]
	for f.due < len(f.calls) {
		k := f.due
		if f.lead[k] != int32(k) {
			f.due++
			continue // a member: answered with its group
		}
		if f.calls[k].asking {
			// ASKING's own +OK; an error reply to it leaves the call's
			// reply to tell (a MOVED or ASK again).
			if _, err := cn.rc.Receive(); err != nil && cn.rc.Err() != nil {
				cn.failAirborne(err)
				return
			}
		}
		reply, err := cn.rc.Receive()
		if err != nil && cn.rc.Err() != nil {
			cn.failAirborne(err)
			return
		}
		// The group leaves the air, before its callers hear of it: answered,
		// or kept for a re-send that counts it again when it is written.
		cn.setInAir(cn.inAir - f.groupSize(k))
		cn.land(f, k, reply, err)
		f.due++
		if f.due < len(f.calls) {
			if n := min(len(cn.srv.requests), cn.srv.cfg.MaxPipeline-cn.inAir); n > 0 && n >= (cn.inAir+1)/2 {
				return // write the next flight while this one's replies come in
			}
		}
	}
	// Landed.
	copy(cn.flights, cn.flights[1:])
	cn.flights[len(cn.flights)-1] = nil
	cn.flights = cn.flights[:len(cn.flights)-1]
	noScript, singly := f.noScript, f.singly
	cn.freeFlight(f)
	cn.launch(noScript, true, false)
	cn.launch(singly, false, false)
}

// groupSize returns how many calls the group led by call k holds.
func (f *flight) groupSize(k int) int {
	n := 0
	for i := int32(k); i >= 0; i = f.next[i] {
		n++
	}
	return n
}

// land answers the group of f led by call k from its reply, or keeps its
// calls to be sent again when the reply says that nothing ran.
func (cn *conn) land(f *flight, k int, reply any, err error) {
	c := f.calls[k]
	if f.next[k] < 0 {
		if !f.evalSource && isNoScript(err) {
			// EVALSHA did not run: after a SCRIPT FLUSH or a failover to a
			// server that never saw the script. Sending it again is safe.
			f.noScript = append(f.noScript, c)
		} else {
			cn.finish(c, reply, err)
		}
		return
	}
	notRun, why := groupNotRun(err)
	switch {
	case notRun && isReadOnly(why):
		// A replica now: nothing ran, and nothing will on this connection.
		for i := int32(k); i >= 0; i = f.next[i] {
			f.calls[i].fail(callErr(cn.rc, f.calls[i].req, why))
		}
	case notRun:
		if isNoScript(why) {
			cn.evalCoalesced = true
		}
		// The coalesced script wrote nothing (NOSCRIPT, or it refused
		// before its first write: a key of another type, a sum that
		// overflows, a command the user may not run): run the group's
		// calls one by one, each with its own outcome.
		for i := int32(k); i >= 0; i = f.next[i] {
			f.singly = append(f.singly, f.calls[i])
		}
	default:
		// Answered, or failed after its first write: the sum may be
		// counted, so the hits are never sent again (answerGroup fails
		// them all with the error).
		cn.answerGroup(f, k, reply, err)
	}
}

// failAirborne answers every call in the air after the connection broke:
// they were written, so their outcome is unknown.
func (cn *conn) failAirborne(err error) {
	cn.setInAir(0)
	for _, f := range cn.flights {
		f.eachUnanswered(func(c *call) { c.fail(callErr(cn.rc, c.req, err)) })
		cn.freeFlight(f)
	}
	clear(cn.flights)
	cn.flights = cn.flights[:0]
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

func (cn *conn) newFlight() *flight {
	if n := len(cn.spare); n > 0 {
		f := cn.spare[n-1]
		cn.spare = cn.spare[:n-1]
		return f
	}
	return &flight{}
}

// freeFlight clears f, dropping its references to calls, and keeps it for
// reuse.
func (cn *conn) freeFlight(f *flight) {
	clear(f.calls)
	f.calls, f.due, f.evalSource, f.noScript, f.singly = f.calls[:0], 0, false, nil, nil
	cn.spare = append(cn.spare, f)
}
