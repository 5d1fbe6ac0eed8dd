package hammerprom_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The end-to-end test runs its own private redis-server (internal/redistest
// belongs to the main module): on a free loopback port, never the system
// Redis on 127.0.0.1:6379, with no persistence, killed when the test ends.

const redisInstallHint = "redis-server is not on PATH: install it with `sudo apt-get install redis-server` " +
	"(Debian/Ubuntu) or `brew install redis` (macOS), or run `make test` at the repository root, " +
	"which installs it when it can"

// redisStartTimeout bounds how long a server may take to say it is ready.
const redisStartTimeout = 15 * time.Second

// startRedis starts a redis-server for the test, waits until it accepts
// connections and returns its URL. The test's cleanup kills it.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(redisInstallHint)
	}
	// A free port can be taken by someone else before redis binds it: retry.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		err = runRedis(t, bin, port)
		if err == nil {
			return "redis://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		}
		if attempt == 4 || !strings.Contains(err.Error(), "in use") {
			t.Fatal(err)
		}
	}
}

// freePort returns a loopback port that was free a moment ago; never 6379.
func freePort() (int, error) {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port != 6379 {
			return port, nil
		}
	}
}

// runRedis starts redis-server on port and waits for "Ready to accept
// connections" in its log. On success the test's cleanup kills it.
func runRedis(t *testing.T, bin string, port int) error {
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", t.TempDir(),
		"--logfile", "",
		"--loglevel", "notice",
	)
	cmd.SysProcAttr = procAttr()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	var (
		mu  sync.Mutex
		log bytes.Buffer
	)
	logText := func() string {
		mu.Lock()
		defer mu.Unlock()
		return log.String()
	}
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			mu.Lock()
			if log.Len() < 64<<10 {
				log.Write(append(sc.Bytes(), '\n'))
			}
			mu.Unlock()
			if !signalled && bytes.Contains(sc.Bytes(), []byte("Ready to accept connections")) {
				signalled = true
				close(ready)
			}
		}
		io.Copy(io.Discard, out)
	}()
	timer := time.NewTimer(redisStartTimeout)
	defer timer.Stop()
	select {
	case <-ready:
	case <-done:
		cmd.Wait()
		return errors.New("redis-server exited before it was ready:\n" + logText())
	case <-timer.C:
		cmd.Process.Kill()
		<-done
		cmd.Wait()
		return fmt.Errorf("redis-server not ready after %v:\n%s", redisStartTimeout, logText())
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		cmd.Wait()
	})
	return nil
}
