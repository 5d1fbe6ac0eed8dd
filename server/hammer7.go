package server

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/hammer-go/hammerredis/protocol"
)

// Hammer 7's calls (protocol.Hit, Inc, Set, Get) go through the pipeline as
// count_hit does: one script run each (script7.go), or a GET for a fix
// window's count. The callers' methods run on the callers' goroutines; send7
// and the decoders on the writer and the reader.

// Hit runs one hit of a Hammer 7 limiter; asking sends ASKING first (a
// Redis Cluster ASK redirect).
func (s *Server) Hit(ctx context.Context, r protocol.Hit, asking bool) (protocol.HitReply, error) {
	c := getCall()
	c.asking = asking
	c.hit7 = r
	c.req = &c.hit7
	err := s.call(ctx, c, s.cfg.CallTimeout)
	var h protocol.HitReply
	if c.received && err == nil {
		h = protocol.HitReply{Allowed: c.allowed, Count: c.count, RetryAfterMs: c.retry}
	}
	c.release()
	return h, err
}

// Inc adds r.N to a Hammer 7 window's count and returns it.
func (s *Server) Inc(ctx context.Context, r protocol.Inc, asking bool) (int64, error) {
	c := getCall()
	c.inc7 = r
	c.req = &c.inc7
	return s.countCall(ctx, c, asking)
}

// Set sets a Hammer 7 window's count and returns it.
func (s *Server) Set(ctx context.Context, r protocol.Set, asking bool) (int64, error) {
	c := getCall()
	c.set7 = r
	c.req = &c.set7
	return s.countCall(ctx, c, asking)
}

// Get reads a Hammer 7 window's count or bucket's level.
func (s *Server) Get(ctx context.Context, r protocol.Get, asking bool) (int64, error) {
	c := getCall()
	c.get7 = r
	c.req = &c.get7
	return s.countCall(ctx, c, asking)
}

// countCall runs c, whose reply is a count, and releases it.
func (s *Server) countCall(ctx context.Context, c *call, asking bool) (int64, error) {
	c.asking = asking
	err := s.call(ctx, c, s.cfg.CallTimeout)
	var n int64
	if c.received {
		n = c.count
	}
	c.release()
	return n, err
}

// isHammer7 reports whether req is one of Hammer 7's calls.
func isHammer7(req protocol.Request) bool {
	switch req.(type) {
	case *protocol.Hit, *protocol.Inc, *protocol.Set, *protocol.Get:
		return true
	}
	return false
}

// send7 writes a Hammer 7 call alone: its algorithm's script with its
// operation and numbers (nums7), or GET for a fix window's count. n, when
// not negative, replaces the call's own number (a coalesced group's sum).
func (cn *conn) send7(c *call, n int64, evalSource bool) error {
	p, id, now, op, own := call7(c.req)
	if n < 0 {
		n = own
	} else {
		op = "hit"
	}
	cn.keyBuf = p.AppendKey(cn.keyBuf[:0], id, now)
	if p.Algorithm == protocol.FixWindow && op == "get" {
		return cn.rc.Send("GET", cn.keyBuf)
	}
	sc := scripts7[p.Algorithm]
	cmd, script := "EVALSHA", sc.sha
	if evalSource {
		cmd, script = "EVAL", sc.source
	}
	a, b, x := cn.nums7(p, now, n)
	cn.args = append(cn.args[:0], script, 1, cn.keyBuf, op, a, b)
	if p.Algorithm != protocol.FixWindow {
		cn.args = append(cn.args, x, cn.scriptClock())
	}
	return cn.rc.Send(cmd, cn.args...)
}

// scriptClock is the clock argument of the clocked scripts: "" for Redis
// TIME, or the test's clock as "<s>:<µs>".
func (cn *conn) scriptClock() string {
	f := cn.srv.cfg.ScriptClock
	if f == nil {
		return ""
	}
	t := f()
	return strconv.FormatInt(t.Unix(), 10) + ":" + strconv.Itoa(t.Nanosecond()/1000)
}

// decodeHit decodes the reply of a hit: a fix window's count, which the
// limit then judges, or the other scripts' count (allowed) or {count, retry
// ms} (denied).
func decodeHit(r *protocol.Hit, reply any) (protocol.HitReply, error) {
	p := r.Policy
	if p.Algorithm == protocol.FixWindow {
		n, err := decodeCount7("hit", reply)
		if err != nil {
			return protocol.HitReply{}, err
		}
		return judgeFix(r, n), nil
	}
	if n, ok := reply.(int64); ok {
		return protocol.HitReply{Allowed: true, Count: n}, nil
	}
	vals, ok := reply.([]any)
	if !ok || len(vals) != 2 {
		return protocol.HitReply{}, fmt.Errorf("%w: %s hit replied %T of %d elements, want an integer or 2 integers", protocol.ErrBadReply, p.Algorithm, reply, lenOf(reply))
	}
	var n [2]int64
	for i, v := range vals {
		x, ok := v.(int64)
		if !ok {
			return protocol.HitReply{}, fmt.Errorf("%w: %s hit replied %T in element %d, want an integer", protocol.ErrBadReply, p.Algorithm, v, i+1)
		}
		n[i] = x
	}
	if n[1] < 1 && n[1] != protocol.Never {
		return protocol.HitReply{}, fmt.Errorf("%w: %s hit replied a deny with a wait of %d ms", protocol.ErrBadReply, p.Algorithm, n[1])
	}
	return protocol.HitReply{Count: n[0], RetryAfterMs: n[1]}, nil
}

// judgeFix decides a fix-window hit from the window's count after it:
// allowed while within the limit, else denied until the window ends, or for
// good when its cost alone exceeds the limit.
func judgeFix(r *protocol.Hit, count int64) protocol.HitReply {
	p := r.Policy
	h := protocol.HitReply{Allowed: count <= p.Limit, Count: count}
	switch {
	case h.Allowed:
	case r.Cost > p.Limit:
		h.RetryAfterMs = protocol.Never
	default:
		_, end := p.Window(r.Now)
		h.RetryAfterMs = end - r.Now
	}
	return h
}

// decodeCount7 decodes a count: an integer, a string holding one (a fix
// window's GET), or nil (no key: 0).
func decodeCount7(op string, reply any) (int64, error) {
	switch v := reply.(type) {
	case nil:
		if op == "get" {
			return 0, nil
		}
	case int64:
		return v, nil
	case []byte:
		return parseInt(v, "count")
	}
	return 0, fmt.Errorf("%w: %s replied %T, want an integer", protocol.ErrBadReply, op, reply)
}

// minVersion7 is the oldest Redis that runs Hammer 7's scripts.
const minVersion7 = 7

// tooOld7 returns, for the redis_version a server reported, why it cannot
// run Hammer 7's calls; "" when it can, or when its version is unknown (a
// user who may not run INFO), in which case Redis's own error will tell.
func tooOld7(version string) string {
	major, _, _ := strings.Cut(version, ".")
	n, err := strconv.Atoi(major)
	if err != nil || n >= minVersion7 {
		return ""
	}
	return "Hammer 7's algorithms need Redis 7.0 or later (PEXPIREAT NX); this server runs " + version
}

// versionOf returns redis_version from an INFO reply, "" if absent.
func versionOf(info string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, "redis_version:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
