// Package redistest runs private, throwaway redis-server processes for tests
// and demos: each on a kernel-chosen loopback port and a unix socket in its
// own temporary directory, with no persistence unless asked for
// (Options.AppendOnly), killed when the test ends.
// It never touches the system Redis on 127.0.0.1:6379.
//
// Readiness is awaited by reading the server's log for "Ready to accept
// connections", not by polling.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// InstallHint says how to get redis-server when it is missing.
const InstallHint = "redis-server is not on PATH: install it with `sudo apt-get install redis-server` " +
	"(Debian/Ubuntu) or `brew install redis` (macOS), or run `make test`, which installs it when it can"

// startTimeout bounds how long a server may take to say it is ready.
const startTimeout = 15 * time.Second

// Options configure a server. The zero value is a plain server.
type Options struct {
	// Args are extra redis-server arguments, such as "--requirepass", "s3cret".
	Args []string
	// Port is the TCP port; 0 picks a free one.
	Port int
	// AppendOnly turns on the append-only file with appendfsync always:
	// every write is on disk before Redis replies to it, so whatever a
	// client was told survives Kill, and Restart (which keeps the
	// directory) loads it again.
	AppendOnly bool
}

// Server is one running redis-server process.
type Server struct {
	// Port is the loopback TCP port.
	Port int
	// Socket is the unix socket path.
	Socket string

	dir  string
	opts Options

	running // the process: Log, Pid, Kill, Signal
}

// Start runs a new redis-server and waits until it accepts connections.
func Start(opts Options) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New(InstallHint)
	}
	// A short path: unix socket paths are limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "redistest")
	if err != nil {
		return nil, err
	}
	s := &Server{Socket: filepath.Join(dir, "redis.sock"), dir: dir, opts: opts, Port: opts.Port}
	// A free port can be taken by someone else before redis binds it: retry.
	for attempt := 0; ; attempt++ {
		if opts.Port == 0 {
			if s.Port, err = freePort(); err != nil {
				break
			}
		}
		if err = s.start(bin); err == nil || opts.Port != 0 || attempt == 4 ||
			!strings.Contains(err.Error(), "in use") {
			break
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// New starts a server for the test and stops it when the test ends. It fails
// the test, with InstallHint, when redis-server is missing.
func New(t testing.TB, opts ...Options) *Server {
	t.Helper()
	return forTest(t, Start, opts)
}

// forTest starts a harness with start and the first of opts (or their zero
// value), fails the test when it cannot, and stops it when the test ends.
func forTest[O any, H interface{ Stop() }](t testing.TB, start func(O) (H, error), opts []O) H {
	t.Helper()
	var o O
	if len(opts) > 0 {
		o = opts[0]
	}
	h, err := start(o)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(h.Stop)
	return h
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start(bin string) error {
	args := []string{
		"--port", strconv.Itoa(s.Port),
		"--bind", "127.0.0.1",
		"--unixsocket", s.Socket,
		"--unixsocketperm", "700",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", "",
		"--loglevel", "notice",
	}
	if s.opts.AppendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	}
	args = append(args, s.opts.Args...)
	p, err := launch(bin, args, []byte("Ready to accept connections"), "redis-server")
	if err != nil {
		return err
	}
	s.set(p)
	return nil
}

// process is a started redis-server (or sentinel) and the reader of its log.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the log reader has finished
	log  *tailBuffer
}

// launch starts bin with args and waits until its log holds ready, reading
// the log rather than polling. what names the process in errors.
func launch(bin string, args []string, ready []byte, what string) (process, error) {
	cmd := exec.Command(bin, args...)
	// Kill the process if the test binary dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return process{}, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return process{}, fmt.Errorf("redistest: starting %s: %w", what, err)
	}
	p := process{cmd: cmd, done: make(chan struct{}), log: &tailBuffer{}}
	isReady := make(chan struct{})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			p.log.Write(append(sc.Bytes(), '\n'))
			if !signalled && bytes.Contains(sc.Bytes(), ready) {
				signalled = true
				close(isReady)
			}
		}
		io.Copy(io.Discard, out)
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-isReady:
		return p, nil
	case <-p.done:
		cmd.Wait()
		return process{}, fmt.Errorf("redistest: %s exited before it was ready:\n%s", what, p.log.String())
	case <-timer.C:
		cmd.Process.Kill()
		cmd.Wait()
		<-p.done
		return process{}, fmt.Errorf("redistest: %s not ready after %v:\n%s", what, startTimeout, p.log.String())
	}
}

// Addr returns "127.0.0.1:<port>".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// URL returns "redis://127.0.0.1:<port>".
func (s *Server) URL() string { return "redis://" + s.Addr() }

// Restart starts the server again on the same port, socket and directory,
// after Kill; with Options.AppendOnly it reloads the data it had.
func (s *Server) Restart() error {
	s.Kill()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return errors.New(InstallHint)
	}
	return s.start(bin)
}

// Stop kills the server and removes its directory. It is idempotent.
func (s *Server) Stop() {
	s.Kill()
	os.RemoveAll(s.dir)
}

// Dial opens a plain connection to the server over TCP, for inspecting and
// changing data from a test.
func (s *Server) Dial(opts ...redis.DialOption) (redis.Conn, error) {
	opts = append([]redis.DialOption{redis.DialConnectTimeout(5 * time.Second),
		redis.DialReadTimeout(10 * time.Second), redis.DialWriteTimeout(10 * time.Second)}, opts...)
	return redis.Dial("tcp", s.Addr(), opts...)
}

// Conn is Dial for tests: it fails the test on error and closes the
// connection when the test ends.
func (s *Server) Conn(t testing.TB, opts ...redis.DialOption) redis.Conn {
	t.Helper()
	c, err := s.Dial(opts...)
	if err != nil {
		t.Fatalf("redistest: dialing %s: %v", s.Addr(), err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tailBuffer keeps the last 64 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 64 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > tailMax {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-tailMax:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
