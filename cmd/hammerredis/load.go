package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/hammer"
)

// The many-clients step: loadClients goroutines share one limit of loadLimit
// requests per loadWindow, each sending a request every loadPace.
const (
	idLoad      = "api:shared"
	loadClients = 8
	loadLimit   = 20
	loadWindow  = time.Second
	loadPace    = 25 * time.Millisecond
	// loadGrace is how long after a window's end its line waits for the
	// calls still in flight.
	loadGrace = 100 * time.Millisecond
)

// tally counts the outcomes of the calls of one window.
type tally struct {
	allowed, denied, closed, disconnected, other atomic.Int64
}

// counts is a plain copy of a tally.
type counts struct{ allowed, denied, closed, disconnected, other int64 }

func (t *tally) load() counts {
	return counts{t.allowed.Load(), t.denied.Load(), t.closed.Load(), t.disconnected.Load(), t.other.Load()}
}

func (c *counts) add(d counts) {
	c.allowed += d.allowed
	c.denied += d.denied
	c.closed += d.closed
	c.disconnected += d.disconnected
	c.other += d.other
}

func (c counts) errors() int64 { return c.closed + c.disconnected + c.other }

// loadRun is one run of the many-clients step.
type loadRun struct {
	start   time.Time // the first window's start, on a window boundary
	first   int64     // the first window's number: start / loadWindow
	windows []tally

	killed    atomic.Int64 // when the connection was killed, in Unix ns; 0 before
	recovered atomic.Int64 // when a call started after the kill first succeeded
}

// record counts the outcome of a call started at t0 in its window: the
// window the limiter counted in (Result.Reset is its end), or for an error
// the window of t0.
func (l *loadRun) record(t0 time.Time, r hammer.Result, err error) {
	w := t0.UnixMilli() / loadWindow.Milliseconds()
	if err == nil {
		w = r.Reset.UnixMilli()/loadWindow.Milliseconds() - 1
	}
	i := w - l.first
	if i < 0 || i >= int64(len(l.windows)) {
		return // started just as the run ended
	}
	t := &l.windows[i]
	switch {
	case err == nil && r.Allowed:
		t.allowed.Add(1)
	case err == nil:
		t.denied.Add(1)
	case errors.Is(err, hammerredis.ErrClosed):
		t.closed.Add(1)
	case errors.Is(err, hammerredis.ErrDisconnected):
		t.disconnected.Add(1)
	default:
		t.other.Add(1)
	}
	if k := l.killed.Load(); err == nil && k != 0 && t0.UnixNano() > k {
		l.recovered.CompareAndSwap(0, time.Now().UnixNano())
	}
}

// client sends a request every loadPace, from its first at until end.
func (l *loadRun) client(ctx context.Context, lim *hammer.Limiter, first, end time.Time) {
	next := first
	for {
		if sleepUntil(ctx, next) != nil {
			return
		}
		t0 := time.Now()
		if !t0.Before(end) {
			return
		}
		r, err := lim.CheckRate(ctx, idLoad, loadWindow, loadLimit)
		if ctx.Err() != nil {
			return
		}
		l.record(t0, r, err)
		// A client that fell behind does not catch up in a burst.
		if next = next.Add(loadPace); next.Before(time.Now()) {
			next = time.Now()
		}
	}
}

// manyClients lets loadClients clients share one limit while the backend's
// connection is killed halfway, printing each window as it ends.
func (s *session) manyClients(ctx context.Context) error {
	if s.duration <= 0 {
		return nil
	}
	s.heading("Many clients, one limit")
	n := int((s.duration + loadWindow - 1) / loadWindow)
	s.say("%d clients share the limit %q: %d requests per %v window (hammer.Limiter.CheckRate),",
		loadClients, idLoad, loadLimit, loadWindow)
	s.say("each sending a request every %v, for %d window(s). Windows start on whole seconds", loadPace, n)
	s.say("(bucket = now_ms / %d); a line per window, once it is over:", loadWindow.Milliseconds())

	nowMs, winMs := nowMs(), loadWindow.Milliseconds()
	l := &loadRun{first: nowMs/winMs + 1, windows: make([]tally, n)}
	l.start = time.UnixMilli(l.first * winMs)
	end := l.start.Add(time.Duration(n) * loadWindow)

	lim := hammer.New(s.b)
	clientCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for c := range loadClients {
		// Stagger the clients over one pace.
		first := l.start.Add(time.Duration(c) * loadPace / loadClients)
		wg.Go(func() { l.client(clientCtx, lim, first, end) })
	}

	// Kill the connection in the middle of the run, inside a window.
	killAt := l.start.Add(time.Duration(n) * loadWindow / 2)
	if n%2 == 0 {
		killAt = killAt.Add(loadWindow / 4)
	}
	killTried, announced := false, false
	var total counts
	for i := range n {
		lineAt := l.start.Add(time.Duration(i+1)*loadWindow + loadGrace)
		if !killTried && killAt.Before(lineAt) {
			if err := sleepUntil(ctx, killAt); err != nil {
				return err
			}
			killTried = true
			if err := s.killDuringLoad(l); err != nil {
				return err
			}
		}
		if err := sleepUntil(ctx, lineAt); err != nil {
			return err
		}
		c := l.windows[i].load()
		total.add(c)
		s.say("  %s  allowed %3d  denied %4d  ErrClosed %3d  ErrDisconnected %2d%s   total: %d allowed, %d denied, %d errors",
			l.start.Add(time.Duration(i)*loadWindow).Format("15:04:05"), c.allowed, c.denied, c.closed, c.disconnected,
			otherErrors(c.other), total.allowed, total.denied, total.errors())
		if rec, k := l.recovered.Load(), l.killed.Load(); !announced && rec != 0 {
			announced = true
			s.say("  ! calls succeed again, %v after the kill", roundMs(time.Duration(rec-k)))
		}
	}
	cancel()
	wg.Wait()

	// The final counts include calls that ended after their window's line.
	total = counts{}
	for i := range l.windows {
		c := l.windows[i].load()
		if c.allowed > loadLimit {
			return fmt.Errorf("window %d allowed %d requests, more than the limit %d", i+1, c.allowed, loadLimit)
		}
		total.add(c)
	}
	s.say("In all: %d allowed (at most %d per window), %d denied, %d ErrClosed, %d ErrDisconnected%s.",
		total.allowed, loadLimit, total.denied, total.closed, total.disconnected, otherErrors(total.other))
	s.say("No window allowed more than %d, however many clients asked: the count lives in Redis,", loadLimit)
	s.say("where every instance of a service would share it. Denied hits count too, as in Hammer.")
	if l.killed.Load() != 0 {
		if !announced {
			s.say("The connection was not back by the end of the run.")
		}
		s.say("The kill cost %d call(s):", total.errors())
		if total.disconnected > 0 {
			s.say("  %d ErrDisconnected: found the connection dead after being sent; each may have counted.",
				total.disconnected)
		}
		if total.closed > 0 {
			s.say("  %d ErrClosed: made while the backend redialed; not sent, so safe to retry.", total.closed)
		}
		s.say("The window's count survived the kill: it is in Redis, not in the connection.")
	}
	return nil
}

// killDuringLoad kills the backend's connection, as the reconnect step does.
func (s *session) killDuringLoad(l *loadRun) error {
	id, err := clientID(s.admin, s.client)
	if err == nil {
		err = killClient(s.admin, id)
	}
	if errors.As(err, new(redis.Error)) {
		s.say("  ! not killing the connection: %v", err)
		return nil
	}
	if err != nil {
		return err
	}
	now := time.Now()
	l.killed.Store(now.UnixNano())
	s.say("  ! %s killed the backend's connection (CLIENT KILL ID %d)", clock(now.UnixMilli()), id)
	return nil
}

func otherErrors(n int64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("  other errors %d", n)
}

// stats shows the backend's counters.
func (s *session) stats(context.Context) error {
	s.heading("The backend's counters")
	st := s.b.Stats()
	s.say("b.Stats() counts every call since hammerredis.Start, all the steps above included:")
	s.say("  calls        %d: CountHit %d, GetBucket %d, DeleteBuckets %d",
		st.Calls.Total(), st.Calls.CountHit, st.Calls.GetBucket, st.Calls.DeleteBuckets)
	var kinds []string
	e := st.Errors
	for _, k := range []struct {
		name string
		n    uint64
	}{
		{"ErrClosed", e.Closed}, {"ErrDisconnected", e.Disconnected}, {"ErrTimeout", e.Timeout},
		{"canceled", e.Canceled}, {"ErrStopped", e.Stopped}, {"ErrInvalid", e.Invalid},
		{"ErrRedis", e.Redis}, {"ErrBadReply", e.BadReply}, {"other", e.Other},
	} {
		if k.n > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", k.name, k.n))
		}
	}
	if len(kinds) == 0 {
		kinds = []string{"none"}
	}
	s.say("  errors       %d: %s", e.Total(), strings.Join(kinds, ", "))
	s.say("  connections  %d made, %d lost (restarts), %d failed dial(s); %d of %d queue slots in use",
		st.Connects, st.Restarts, st.DialFailures, st.QueueDepth, st.QueueCapacity)
	s.say("  latency      p50 <= %v, p99 <= %v, mean %v",
		st.Latency.Quantile(0.5), st.Latency.Quantile(0.99), roundMs(st.Latency.Mean()))
	s.say("The histogram has power-of-two buckets: a quantile is its bucket's upper bound, at most")
	s.say("twice the true value. Errors count as calls too.")
	return nil
}

// sleepUntil waits until t or until ctx is done.
func sleepUntil(ctx context.Context, t time.Time) error {
	return sleep(ctx, time.Until(t))
}
