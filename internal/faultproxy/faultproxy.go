// Package faultproxy is a TCP proxy for tests that sits between a client and
// a server on the loopback interface and injects network faults on command:
// it cuts every connection, blackholes traffic (connections stay open but
// nothing gets through), delays every chunk it forwards, or resets a
// connection in the middle of a reply.
//
// Each connection costs two goroutines, one per direction, plus one that
// accepts; Close ends them all and waits for them.
package faultproxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// dialTimeout bounds the proxy's dial to its target.
const dialTimeout = 5 * time.Second

// bufSize is the largest chunk forwarded by one write.
const bufSize = 32 << 10

// Proxy forwards the connections it accepts to a target address. Its methods
// are safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup // the accept loop and every link's goroutines

	mu        sync.Mutex
	links     map[*link]struct{}
	blackhole bool
	latency   time.Duration
	changed   chan struct{} // closed and replaced when a setting changes
	reset     chan struct{} // armed by ResetNextReply; closed once done
	accepted  int
	closed    bool
}

// link is one proxied connection: the accepted client side and the dialed
// server side.
type link struct {
	p      *Proxy
	client net.Conn
	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	once   sync.Once

	mu     sync.Mutex
	server net.Conn // nil until dialed
}

// New listens on a kernel-chosen loopback port and forwards every
// connection it accepts to target ("host:port").
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, links: map[*link]struct{}{}, changed: make(chan struct{})}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr returns the proxy's listening address, "127.0.0.1:<port>".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Accepted returns how many connections the proxy has accepted so far.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Conns returns how many connections are open now.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// Cut closes every current connection, both the client's and the server's
// side, dropping whatever data the proxy holds for them, and returns how
// many it closed. New connections are accepted as before.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.close(false)
	}
	return len(links)
}

// SetBlackhole turns the blackhole on or off. While it is on, new and
// existing connections stay open, new ones are accepted, but nothing is
// forwarded in either direction: the proxy holds what it has read, and the
// kernel buffers the rest. Turning it off forwards what was held, as a
// healed network partition would.
func (p *Proxy) SetBlackhole(on bool) {
	p.set(func() { p.blackhole = on })
}

// SetLatency delays each chunk, in each direction, by d after the proxy
// read it, so a round trip takes at least 2d. Chunks of one direction keep
// their order and are delayed one after the other. Zero turns it off,
// releasing the chunks being held.
func (p *Proxy) SetLatency(d time.Duration) {
	p.set(func() { p.latency = d })
}

// Heal turns the blackhole and the latency off.
func (p *Proxy) Heal() {
	p.set(func() { p.blackhole, p.latency = false, 0 })
}

func (p *Proxy) set(f func()) {
	p.mu.Lock()
	f()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// ResetNextReply arms a reset: the next chunk from the server to a client,
// on any connection, is forwarded only in part (its first half), then the
// client's side is reset (an RST, not a FIN) and the server's side closed.
// The returned channel is closed once that has happened. Arming it again
// before then returns the same channel.
func (p *Proxy) ResetNextReply() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reset == nil {
		p.reset = make(chan struct{})
	}
	return p.reset
}

// takeReset disarms the reset and returns its channel, or nil when none is
// armed.
func (p *Proxy) takeReset() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := p.reset
	p.reset = nil
	return ch
}

// Close stops accepting, closes every connection and waits until all the
// proxy's goroutines have returned. It is idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	already := p.closed
	p.closed = true
	p.mu.Unlock()
	var err error
	if !already {
		err = p.ln.Close()
	}
	p.Cut()
	p.wg.Wait()
	return err
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(time.Millisecond) // a transient error such as ECONNABORTED or EMFILE
			continue
		}
		l := &link{p: p, client: c}
		l.ctx, l.cancel = context.WithCancel(context.Background())
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.accepted++
		p.links[l] = struct{}{}
		p.wg.Add(2) // the link's two pumps; this goroutine's count keeps Wait from returning meanwhile
		p.mu.Unlock()
		go l.run()
	}
}

// run dials the target and forwards client to server on this goroutine,
// server to client on another. Both were counted in the proxy's WaitGroup.
func (l *link) run() {
	defer l.p.wg.Done()
	ctx, cancel := context.WithTimeout(l.ctx, dialTimeout)
	var d net.Dialer
	server, err := d.DialContext(ctx, "tcp", l.p.target)
	cancel()
	if err == nil {
		l.mu.Lock()
		if l.ctx.Err() == nil {
			l.server = server
		} else { // cut while dialing
			server.Close()
			err = l.ctx.Err()
		}
		l.mu.Unlock()
	}
	if err != nil {
		l.p.wg.Done() // the server-to-client pump never starts
		l.close(false)
		return
	}
	go func() {
		defer l.p.wg.Done()
		l.pump(server, l.client, true)
	}()
	l.pump(l.client, server, false)
}

// pump forwards src to dst chunk by chunk, each once the gate lets it
// through, until either side fails or the link is closed; then it closes
// the link. toClient marks the server-to-client direction, where an armed
// reset strikes.
func (l *link) pump(src, dst net.Conn, toClient bool) {
	defer l.close(false)
	buf := make([]byte, bufSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !l.gate(time.Now()) {
				return
			}
			if toClient {
				if done := l.p.takeReset(); done != nil {
					dst.Write(buf[:n/2]) // best effort: the reset follows anyway
					l.close(true)
					close(done)
					return
				}
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// gate waits until a chunk read at read may be forwarded: no blackhole, and
// the latency has passed since read. It returns false when the link is
// closed first.
func (l *link) gate(read time.Time) bool {
	for {
		p := l.p
		p.mu.Lock()
		blackhole, latency, changed := p.blackhole, p.latency, p.changed
		p.mu.Unlock()
		var timer *time.Timer
		var due <-chan time.Time
		if !blackhole {
			wait := time.Until(read.Add(latency))
			if wait <= 0 {
				return true
			}
			timer = time.NewTimer(wait)
			due = timer.C
		}
		select {
		case <-due:
			return true
		case <-changed: // look again
		case <-l.ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
		if l.ctx.Err() != nil {
			return false
		}
	}
}

// close closes both sides of the link, once, and forgets it. With rst the
// client's side is reset rather than closed gracefully.
func (l *link) close(rst bool) {
	l.once.Do(func() {
		l.cancel()
		if tc, ok := l.client.(*net.TCPConn); ok && rst {
			tc.SetLinger(0)
		}
		l.client.Close()
		l.mu.Lock()
		if l.server != nil {
			l.server.Close()
		}
		l.mu.Unlock()
		l.p.mu.Lock()
		delete(l.p.links, l)
		l.p.mu.Unlock()
	})
}
