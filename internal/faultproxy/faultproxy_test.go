package faultproxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"go.uber.org/goleak"

	"github.com/hammer-go/hammerredis/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLong bounds waits for events that normally take milliseconds.
const waitLong = 10 * time.Second

// echo runs a TCP echo server until the test ends and returns its address.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func newProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), waitLong)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads len(msg) bytes back within timeout.
func roundTrip(c net.Conn, msg string, timeout time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	n, err := io.ReadFull(c, buf)
	return string(buf[:n]), err
}

// readErr reads c until an error (within waitLong) and returns what it read
// and the error.
func readErr(c net.Conn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(waitLong))
	var got bytes.Buffer
	buf := make([]byte, 64)
	for {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			return got.Bytes(), err
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestForwards(t *testing.T) {
	p := newProxy(t, echo(t))
	c := dial(t, p)
	for _, msg := range []string{"hello", "world", string(bytes.Repeat([]byte("x"), 3*bufSize))} {
		if got, err := roundTrip(c, msg, waitLong); err != nil || got != msg {
			t.Fatalf("roundTrip(%.10q...) = %.10q..., %v; want it echoed", msg, got, err)
		}
	}
	if got := p.Accepted(); got != 1 {
		t.Errorf("Accepted() = %d, want 1", got)
	}
	if got := p.Conns(); got != 1 {
		t.Errorf("Conns() = %d, want 1", got)
	}
}

func TestCutClosesEveryConnection(t *testing.T) {
	p := newProxy(t, echo(t))
	a, b := dial(t, p), dial(t, p)
	for _, c := range []net.Conn{a, b} {
		if _, err := roundTrip(c, "up", waitLong); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.Cut(); n != 2 {
		t.Errorf("Cut() = %d, want 2 connections cut", n)
	}
	for i, c := range []net.Conn{a, b} {
		if got, err := readErr(c); len(got) != 0 || !errors.Is(err, io.EOF) {
			t.Errorf("conn %d after Cut: read %q, %v; want EOF", i, got, err)
		}
	}
	if got := p.Conns(); got != 0 {
		t.Errorf("Conns() after Cut = %d, want 0", got)
	}
	// New connections work.
	if got, err := roundTrip(dial(t, p), "again", waitLong); err != nil || got != "again" {
		t.Errorf("after Cut: roundTrip = %q, %v", got, err)
	}
}

func TestBlackholeHoldsTrafficUntilLifted(t *testing.T) {
	p := newProxy(t, echo(t))
	old := dial(t, p)
	if _, err := roundTrip(old, "before", waitLong); err != nil {
		t.Fatal(err)
	}
	p.SetBlackhole(true)
	fresh := dial(t, p) // accepted while the blackhole is on
	for name, c := range map[string]net.Conn{"existing": old, "new": fresh} {
		if got, err := roundTrip(c, "lost?", 100*time.Millisecond); !isTimeout(err) {
			t.Errorf("%s conn in the blackhole: roundTrip = %q, %v; want a timeout", name, got, err)
		}
	}
	if got := p.Conns(); got != 2 {
		t.Errorf("Conns() in the blackhole = %d, want 2: connections stay open", got)
	}
	p.SetBlackhole(false)
	for name, c := range map[string]net.Conn{"existing": old, "new": fresh} {
		c.SetReadDeadline(time.Now().Add(waitLong))
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "lost?" {
			t.Errorf("%s conn after the blackhole: read %q, %v; want the held data", name, buf, err)
		}
	}
}

func TestLatencyDelaysEachDirection(t *testing.T) {
	p := newProxy(t, echo(t))
	c := dial(t, p)
	const d = 100 * time.Millisecond
	p.SetLatency(d)
	begin := time.Now()
	if _, err := roundTrip(c, "slow", waitLong); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took < 2*d {
		t.Errorf("round trip with latency %v took %v, want at least %v", d, took, 2*d)
	}

	// Healing releases the chunks held.
	p.SetLatency(time.Hour)
	errc := make(chan error, 1)
	go func() {
		_, err := roundTrip(c, "held", waitLong)
		errc <- err
	}()
	select {
	case err := <-errc:
		t.Fatalf("round trip returned during an hour of latency: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	p.Heal()
	if err := <-errc; err != nil {
		t.Errorf("after Heal: %v", err)
	}
}

func TestResetNextReplyCutsMidReply(t *testing.T) {
	p := newProxy(t, echo(t))
	c := dial(t, p)
	const msg = "0123456789abcdef"
	if _, err := roundTrip(c, msg, waitLong); err != nil {
		t.Fatal(err)
	}
	done := p.ResetNextReply()
	if again := p.ResetNextReply(); again != done {
		t.Error("arming twice returned another channel")
	}
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	got, err := readErr(c)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read after the reset: %v, want ECONNRESET", err)
	}
	if len(got) >= len(msg) || !bytes.HasPrefix([]byte(msg), got) {
		t.Errorf("read %q before the reset, want a strict prefix of %q", got, msg)
	}
	select {
	case <-done:
	case <-time.After(waitLong):
		t.Fatal("the reset was never reported")
	}
	// Only one reply is reset.
	if got, err := roundTrip(dial(t, p), msg, waitLong); err != nil || got != msg {
		t.Errorf("next connection: roundTrip = %q, %v", got, err)
	}
}

func TestTargetDownClosesTheClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	p := newProxy(t, addr)
	c := dial(t, p)
	if got, err := readErr(c); len(got) != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("read through a proxy to a closed port: %q, %v; want EOF", got, err)
	}
}

func TestCloseEndsEveryGoroutine(t *testing.T) {
	target := echo(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	// One connection in each state: idle, holding data in the blackhole,
	// holding data for the latency.
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	if _, err := roundTrip(conns[0], "idle", waitLong); err != nil {
		t.Fatal(err)
	}
	p.SetBlackhole(true)
	io.WriteString(conns[1], "held")
	p.SetBlackhole(false)
	p.SetLatency(time.Hour)
	io.WriteString(conns[2], "delayed")

	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for i, c := range conns {
		if _, err := readErr(c); isTimeout(err) {
			t.Errorf("conn %d still open after Close", i)
		}
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Error("the proxy still accepts after Close")
	}
}

// TestRedisThroughTheProxy runs redigo through the proxy against a private
// redis-server, as the backend's fault tests do.
func TestRedisThroughTheProxy(t *testing.T) {
	srv := redistest.New(t)
	p := newProxy(t, srv.Addr())
	c, err := redis.Dial("tcp", p.Addr(), redis.DialReadTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Do("SET", "k", "0123456789"); err != nil {
		t.Fatal(err)
	}

	p.SetBlackhole(true)
	if _, err := c.Do("GET", "k"); !isTimeout(err) {
		t.Errorf("GET in the blackhole: %v, want a read timeout", err)
	}
	// Drop the GET held in the blackhole, so that its reply does not take
	// the reset armed below.
	if n := p.Cut(); n != 1 {
		t.Errorf("Cut() = %d, want 1", n)
	}
	p.SetBlackhole(false)

	c2, err := redis.Dial("tcp", p.Addr(), redis.DialReadTimeout(waitLong))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	done := p.ResetNextReply()
	if got, err := redis.String(c2.Do("GET", "k")); err == nil || c2.Err() == nil {
		t.Errorf("GET reset mid-reply = %q, %v; want a broken connection", got, err)
	}
	<-done

	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c3, err := redis.DialContext(ctx, "tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if got, err := redis.String(c3.Do("GET", "k")); err != nil || got != "0123456789" {
		t.Errorf("GET on a new connection = %q, %v", got, err)
	}
}
