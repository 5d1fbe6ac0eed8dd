package server

import (
	"fmt"

	"github.com/hammer-go/hammerredis/protocol"
)

// The reader goroutine: one per connection, started by conn.serve. It reads
// the replies of the flights the writer hands it, in order, and answers
// their calls. It never writes, so calls that queue while it waits for
// replies go out meanwhile (flight.go).

// read runs the reader until the writer closes sent. Once the connection
// breaks it answers every flight it is handed with the error: those calls
// were written, so their outcome is unknown.
func (cn *conn) read() {
	defer close(cn.readEnd)
	for f := range cn.sent {
		if cn.readErr == nil {
			cn.receive(f)
		}
		if cn.readErr != nil {
			f.eachUnanswered(func(c *call) { c.fail(callErr(cn.rc, c.req, cn.readErr)) })
			cn.freeFlight(f)
			continue
		}
		if len(f.noScript) > 0 || len(f.singly) > 0 {
			cn.mu.Lock()
			cn.again = append(cn.again, f)
			cn.mu.Unlock()
			signal(cn.resend)
			continue
		}
		cn.freeFlight(f)
	}
}

// receive reads the replies of f and answers their calls, or records why
// the connection broke. A panic here breaks the connection, and the writer
// panics with it in Serve, where the supervisor sees it.
func (cn *conn) receive(f *flight) {
	defer func() {
		if r := recover(); r != nil {
			cn.panicked = r
			cn.broke(fmt.Errorf("%w: panic while reading replies: %v", protocol.ErrDisconnected, r))
		}
	}()
	for f.due < len(f.calls) {
		k := f.due
		if f.lead[k] != int32(k) && f.runAt(k) < 0 {
			f.due++
			continue // a member: answered with its group
		}
		if f.calls[k].asking {
			// ASKING's own +OK; an error reply to it leaves the call's
			// reply to tell (a MOVED or ASK again).
			if _, err := cn.rc.Receive(); err != nil && cn.rc.Err() != nil {
				cn.broke(err)
				return
			}
		}
		reply, err := cn.rc.Receive()
		if err != nil && cn.rc.Err() != nil {
			cn.broke(err)
			return
		}
		// The calls leave the air before their callers hear of it:
		// answered, or kept for a re-send that counts them again when it
		// is written.
		if end := f.runAt(k); end >= 0 {
			cn.leftTheAir(end - k)
			cn.landRun(f, k, end, reply, err)
			f.due = end
		} else {
			cn.leftTheAir(f.groupSize(k))
			cn.land(f, k, reply, err)
			f.due++
		}
		if err != nil && cn.rc.Err() != nil {
			cn.broke(cn.rc.Err()) // closed by callErr: a READONLY reply
			return
		}
	}
}

// leftTheAir records that a reply for n calls was read, and wakes the
// writer if it waits for one.
func (cn *conn) leftTheAir(n int) {
	cn.addInAir(-n)
	cn.readAt.Store(int64(clock()))
	cn.replies.Add(1)
	signal(cn.poke)
}

// broke records that the connection broke and tells the writer, which
// closes it.
func (cn *conn) broke(err error) {
	if cn.readErr != nil {
		return
	}
	cn.readErr = err
	close(cn.dead)
}

// signal wakes the goroutine waiting on ch, if any, without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
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
			f.lostScript = true
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
