package redistest

import (
	"net"
	"sync"
	"testing"
)

// Silent is a TCP listener on a loopback port that accepts connections and
// never answers, as a frozen Redis, sentinel or cluster node does to a
// client: the connection is up, every command waits forever.
type Silent struct {
	ln       net.Listener
	accepted chan struct{} // a token per accepted connection
	received chan struct{} // a token per connection that sent something
	mu       sync.Mutex
	conns    []net.Conn
	acceptor sync.WaitGroup // the accept loop
	readers  sync.WaitGroup // a reader per connection
}

// NewSilent starts a Silent listener, closed with its connections at the end
// of the test.
func NewSilent(t testing.TB) *Silent {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	s := &Silent{ln: ln, accepted: make(chan struct{}, 1024), received: make(chan struct{}, 1024)}
	s.acceptor.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

func (s *Silent) accept() {
	defer s.acceptor.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, conn)
		s.mu.Unlock()
		select {
		case s.accepted <- struct{}{}:
		default:
		}
		s.readers.Add(1)
		go s.read(conn)
	}
}

// read swallows what the client sends, and tells when it first sends.
func (s *Silent) read(conn net.Conn) {
	defer s.readers.Done()
	buf := make([]byte, 4096)
	first := true
	for {
		if _, err := conn.Read(buf); err != nil {
			return
		}
		if first {
			first = false
			select {
			case s.received <- struct{}{}:
			default:
			}
		}
	}
}

// Addr is the listener's "host:port".
func (s *Silent) Addr() string { return s.ln.Addr().String() }

// URL is a redis:// URL of the listener.
func (s *Silent) URL() string { return "redis://" + s.Addr() }

// Accepted receives a token for each connection accepted.
func (s *Silent) Accepted() <-chan struct{} { return s.accepted }

// Received receives a token for each connection on which the client has sent
// something: a command, or a TLS ClientHello.
func (s *Silent) Received() <-chan struct{} { return s.received }

// Close stops listening and closes the accepted connections. It is
// idempotent.
func (s *Silent) Close() {
	s.ln.Close()
	s.acceptor.Wait()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
	s.mu.Unlock()
	s.readers.Wait()
}
