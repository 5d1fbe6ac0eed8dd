package redistest

import (
	"bufio"
	"context"
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
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// MasterName is the name the sentinels of a SentinelGroup monitor their
// master under.
const MasterName = "mymaster"

// Sentinel settings of every group: a master is subjectively down after
// DownAfter without replies, and a failover may take up to failoverTimeout.
const (
	DownAfter       = time.Second
	failoverTimeout = 5 * time.Second
	quorum          = 2
	sentinelCount   = 3
)

// pollEvery is the pause of the harness's polls, for states that Redis
// announces by no event a client can wait on (a replica's link, the
// sentinels' view of each other and of the master).
const pollEvery = 20 * time.Millisecond

// SentinelGroup is a master, one replica of it and three sentinels that
// monitor it as MasterName with quorum 2, all private redis-server processes
// on loopback ports. After a failover, Master and Replica still return the
// processes started as such: ask the sentinels (CurrentMaster) who leads.
// It never touches the system's Redis (6379) nor its sentinel (26379).
type SentinelGroup struct {
	master, replica *Server
	sentinels       []*Sentinel
	opts            SentinelOptions
}

// Sentinel is one redis-server running in sentinel mode.
type Sentinel struct {
	// Port is the loopback TCP port.
	Port int

	dir string

	running // the process: Log, Pid, Kill, Signal
}

// SentinelOptions configure a group. The zero value is a group without
// passwords.
type SentinelOptions struct {
	// Password, when set, is required by the master and the replica
	// (requirepass), which use it with each other (masterauth) and which
	// the sentinels use with them (sentinel auth-pass); the sentinels
	// themselves need none. Dial the servers with redis.DialPassword.
	Password string
}

// StartSentinelGroup starts a master, a replica and three sentinels, and
// returns once the replica is in sync and every sentinel sees the replica
// and the two other sentinels, so that a failover can start at once.
func StartSentinelGroup(opts SentinelOptions) (_ *SentinelGroup, err error) {
	g := &SentinelGroup{opts: opts}
	defer func() {
		if err != nil {
			g.Stop()
		}
	}()
	var auth []string
	if opts.Password != "" {
		auth = []string{"--requirepass", opts.Password, "--masterauth", opts.Password}
	}
	if g.master, err = Start(Options{Args: auth}); err != nil {
		return nil, err
	}
	replicaArgs := append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(g.master.Port)}, auth...)
	if g.replica, err = Start(Options{Args: replicaArgs}); err != nil {
		return nil, err
	}
	for range sentinelCount {
		s, err := startSentinel(g.master.Port, opts.Password)
		if err != nil {
			return nil, err
		}
		g.sentinels = append(g.sentinels, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := poll(ctx, "the replica's link to its master is up", func() (bool, error) {
		return replicaLinkUp(g.replica, g.dialOpts()...)
	}); err != nil {
		return nil, err
	}
	for _, s := range g.sentinels {
		if err := poll(ctx, "sentinel "+s.Addr()+" sees the replica and the other sentinels", func() (bool, error) {
			return s.sees(g.replica.Addr(), sentinelCount-1)
		}); err != nil {
			return nil, fmt.Errorf("%w\n%s", err, s.Log())
		}
	}
	return g, nil
}

// NewSentinelGroup starts a group for the test and stops it when the test
// ends. It fails the test, with InstallHint, when redis-server is missing.
func NewSentinelGroup(t testing.TB, opts ...SentinelOptions) *SentinelGroup {
	t.Helper()
	return forTest(t, StartSentinelGroup, opts)
}

// Master returns the server started as the master.
func (g *SentinelGroup) Master() *Server { return g.master }

// Replica returns the server started as the replica.
func (g *SentinelGroup) Replica() *Server { return g.replica }

// Sentinels returns the sentinels, in the order of SentinelAddrs.
func (g *SentinelGroup) Sentinels() []*Sentinel { return g.sentinels }

// MasterName returns the name the sentinels monitor the master under.
func (g *SentinelGroup) MasterName() string { return MasterName }

// SentinelAddrs returns the sentinels' "127.0.0.1:<port>" addresses.
func (g *SentinelGroup) SentinelAddrs() []string {
	addrs := make([]string, len(g.sentinels))
	for i, s := range g.sentinels {
		addrs[i] = s.Addr()
	}
	return addrs
}

// CurrentMaster returns the master's address as every sentinel reports it
// (SENTINEL GET-MASTER-ADDR-BY-NAME), or an error if they disagree or one
// cannot answer.
func (g *SentinelGroup) CurrentMaster() (string, error) {
	var addr string
	for i, s := range g.sentinels {
		a, err := s.MasterAddr()
		if err != nil {
			return "", err
		}
		if i > 0 && a != addr {
			return "", fmt.Errorf("redistest: sentinels disagree on the master: %s says %s, %s says %s",
				g.sentinels[0].Addr(), addr, s.Addr(), a)
		}
		addr = a
	}
	return addr, nil
}

// Failover forces a failover with SENTINEL FAILOVER on the first sentinel:
// it promotes the replica without waiting for the master to be down, nor for
// the other sentinels to agree. Follow it with WaitFailover.
func (g *SentinelGroup) Failover() error {
	c, err := g.sentinels[0].Dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Do("SENTINEL", "FAILOVER", MasterName); err != nil {
		return fmt.Errorf("redistest: SENTINEL FAILOVER %s: %w", MasterName, err)
	}
	return nil
}

// WaitFailover waits until every sentinel reports the same master, other
// than old, and returns its address. It polls: sentinels publish
// +switch-master only on a pub/sub channel of each, and a poll of all three
// is as quick and simpler.
func (g *SentinelGroup) WaitFailover(ctx context.Context, old string) (string, error) {
	var addr string
	err := poll(ctx, "the sentinels report a master other than "+old, func() (bool, error) {
		a, err := g.CurrentMaster()
		if err != nil {
			return false, nil // one is still behind, or busy failing over
		}
		addr = a
		return a != old, nil
	})
	if err != nil {
		var logs strings.Builder
		for _, s := range g.sentinels {
			fmt.Fprintf(&logs, "--- sentinel %s:\n%s", s.Addr(), s.Log())
		}
		return "", fmt.Errorf("%w\n%s", err, logs.String())
	}
	return addr, nil
}

// WaitReplicated waits until the replica has acknowledged every write the
// master has received so far: it writes a key of its own on the master and
// waits for one replica to acknowledge it (WAIT), which, the replication
// stream being ordered, acknowledges every earlier write too.
func (g *SentinelGroup) WaitReplicated(ctx context.Context) error {
	c, err := g.master.Dial(g.dialOpts()...)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Do("INCR", "redistest:replication-mark"); err != nil {
		return err
	}
	wait := startTimeout
	if d, ok := ctx.Deadline(); ok {
		wait = max(time.Until(d), time.Millisecond)
	}
	n, err := redis.Int(c.Do("WAIT", 1, wait.Milliseconds()))
	if err != nil {
		return err
	}
	if n < 1 {
		return fmt.Errorf("redistest: the replica did not acknowledge the master's writes within %v", wait)
	}
	return nil
}

// dialOpts are the options to dial the master or the replica with.
func (g *SentinelGroup) dialOpts() []redis.DialOption {
	if g.opts.Password == "" {
		return nil
	}
	return []redis.DialOption{redis.DialPassword(g.opts.Password)}
}

// Stop kills every process of the group and removes their directories. It
// is idempotent.
func (g *SentinelGroup) Stop() {
	for _, s := range g.sentinels {
		s.Stop()
	}
	for _, s := range []*Server{g.replica, g.master} {
		if s != nil {
			s.Stop()
		}
	}
}

// startSentinel runs a sentinel monitoring 127.0.0.1:masterPort and waits
// until it says so in its log.
// It uses password, if any, with the servers it monitors.
func startSentinel(masterPort int, password string) (*Sentinel, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New(InstallHint)
	}
	dir, err := os.MkdirTemp("", "redistest-sentinel")
	if err != nil {
		return nil, err
	}
	s := &Sentinel{dir: dir}
	// As in Start: a free port can be taken before the sentinel binds it.
	for attempt := 0; attempt < 5; attempt++ {
		if s.Port, err = freePort(); err != nil {
			break
		}
		if err = s.start(bin, masterPort, password); err == nil || !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func (s *Sentinel) start(bin string, masterPort int, password string) error {
	// A sentinel rewrites its config file: it must be writable, and a new
	// one for every attempt.
	conf := filepath.Join(s.dir, "sentinel.conf")
	text := fmt.Sprintf(`port %d
bind 127.0.0.1
dir %q
daemonize no
logfile ""
loglevel notice
sentinel monitor %s 127.0.0.1 %d %d
sentinel down-after-milliseconds %[3]s %[6]d
sentinel failover-timeout %[3]s %[7]d
sentinel parallel-syncs %[3]s 1
`, s.Port, s.dir, MasterName, masterPort, quorum, DownAfter.Milliseconds(), failoverTimeout.Milliseconds())
	if password != "" {
		text += fmt.Sprintf("sentinel auth-pass %s %q\n", MasterName, password)
	}
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return err
	}
	p, err := launch(bin, []string{conf, "--sentinel"}, []byte("+monitor master "+MasterName+" "), "sentinel")
	if err != nil {
		return err
	}
	s.set(p)
	return nil
}

// Addr returns "127.0.0.1:<port>".
func (s *Sentinel) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Dial opens a connection to the sentinel.
func (s *Sentinel) Dial() (redis.Conn, error) {
	return redis.Dial("tcp", s.Addr(), redis.DialConnectTimeout(5*time.Second),
		redis.DialReadTimeout(10*time.Second), redis.DialWriteTimeout(10*time.Second))
}

// MasterAddr returns the master's "host:port" as this sentinel reports it.
func (s *Sentinel) MasterAddr() (string, error) {
	c, err := s.Dial()
	if err != nil {
		return "", err
	}
	defer c.Close()
	hp, err := redis.Strings(c.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MasterName))
	if err != nil {
		return "", fmt.Errorf("redistest: sentinel %s: SENTINEL GET-MASTER-ADDR-BY-NAME: %w", s.Addr(), err)
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("redistest: sentinel %s: no master named %s: %q", s.Addr(), MasterName, hp)
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}

// sees reports whether the sentinel lists replica as a healthy replica and
// knows at least others other sentinels.
func (s *Sentinel) sees(replica string, others int) (bool, error) {
	c, err := s.Dial()
	if err != nil {
		return false, err
	}
	defer c.Close()
	m, err := redis.StringMap(c.Do("SENTINEL", "MASTER", MasterName))
	if err != nil {
		return false, err
	}
	if n, _ := strconv.Atoi(m["num-other-sentinels"]); n < others {
		return false, nil
	}
	replicas, err := redis.Values(c.Do("SENTINEL", "REPLICAS", MasterName))
	if err != nil {
		return false, err
	}
	for _, r := range replicas {
		f, err := redis.StringMap(r, nil)
		if err != nil {
			return false, err
		}
		if net.JoinHostPort(f["ip"], f["port"]) == replica && f["flags"] == "slave" &&
			f["master-link-status"] == "ok" {
			return true, nil
		}
	}
	return false, nil
}

// Stop kills the sentinel and removes its directory. It is idempotent.
func (s *Sentinel) Stop() {
	s.Kill()
	os.RemoveAll(s.dir)
}

// replicaLinkUp reports whether s is a replica whose link to its master is
// up (INFO replication: master_link_status:up).
func replicaLinkUp(s *Server, opts ...redis.DialOption) (bool, error) {
	c, err := s.Dial(opts...)
	if err != nil {
		return false, err
	}
	defer c.Close()
	info, err := redis.String(c.Do("INFO", "replication"))
	if err != nil {
		return false, err
	}
	return strings.Contains(info, "master_link_status:up"), nil
}

// poll calls ok every pollEvery until it returns true or an error, or ctx
// ends; what describes the awaited state in the error.
func poll(ctx context.Context, what string, ok func() (bool, error)) error {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		done, err := ok()
		if err != nil {
			return fmt.Errorf("redistest: waiting until %s: %w", what, err)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redistest: waiting until %s: %w", what, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// FakeSentinel is a loopback TCP listener that poses as a sentinel, for the
// faults real sentinels cannot be made to show: one that accepts
// connections and never answers (NewFrozenSentinel), and one that names a
// master of its choosing (NewLyingSentinel). It speaks just enough RESP for
// a client of sentinels: AUTH, PING, SENTINEL get-master-addr-by-name and
// SUBSCRIBE (confirmed, then silent).
type FakeSentinel struct {
	l      net.Listener
	master string // "" never answers
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	asked  int           // get-master-addr-by-name answered; guarded by mu
	askedC chan struct{} // closed and replaced at each answer; guarded by mu
}

// NewFrozenSentinel starts a fake sentinel that accepts connections and
// never answers, as a sentinel stopped by SIGSTOP or a full accept queue
// would. It stops when the test ends.
func NewFrozenSentinel(t testing.TB) *FakeSentinel {
	t.Helper()
	return newFakeSentinel(t, "")
}

// NewLyingSentinel starts a fake sentinel that names master ("host:port")
// as MasterName's master, as a sentinel that has not caught up with a
// failover does. It stops when the test ends.
func NewLyingSentinel(t testing.TB, master string) *FakeSentinel {
	t.Helper()
	return newFakeSentinel(t, master)
}

func newFakeSentinel(t testing.TB, master string) *FakeSentinel {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: fake sentinel: %v", err)
	}
	f := &FakeSentinel{l: l, master: master, conns: map[net.Conn]struct{}{}, askedC: make(chan struct{})}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.Close)
	return f
}

// Addr returns "127.0.0.1:<port>".
func (f *FakeSentinel) Addr() string { return f.l.Addr().String() }

// Asked returns how many times f has named the master so far.
func (f *FakeSentinel) Asked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked
}

// WaitAsked waits until f has named the master n times in all, or fails
// the test after ten seconds.
func (f *FakeSentinel) WaitAsked(t testing.TB, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		asked, changed := f.asked, f.askedC
		f.mu.Unlock()
		if asked >= n {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("redistest: fake sentinel asked %d times, want %d", asked, n)
		}
	}
}

// Close stops listening, closes every connection and waits for their
// goroutines. It is idempotent.
func (f *FakeSentinel) Close() {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.l.Close()
	f.wg.Wait()
}

func (f *FakeSentinel) accept() {
	defer f.wg.Done()
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			c.Close()
			return
		}
		f.conns[c] = struct{}{}
		f.wg.Add(1)
		f.mu.Unlock()
		go f.serve(c)
	}
}

// serve answers the commands read from c, or reads them and never answers.
func (f *FakeSentinel) serve(c net.Conn) {
	defer f.wg.Done()
	defer func() {
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
		c.Close()
	}()
	r := bufio.NewReader(c)
	subscribed := 0
	for {
		args, err := readCommand(r)
		if err != nil {
			return
		}
		if f.master == "" {
			continue // frozen: read, never answer
		}
		var reply string
		switch cmd := strings.ToUpper(args[0]); {
		case cmd == "AUTH":
			reply = "+OK\r\n"
		case cmd == "PING" && subscribed > 0:
			reply = "*2\r\n" + bulk("pong") + bulk("")
		case cmd == "PING":
			reply = "+PONG\r\n"
		case cmd == "SENTINEL" && len(args) == 3 && strings.EqualFold(args[1], "get-master-addr-by-name"):
			host, port, _ := net.SplitHostPort(f.master)
			if args[2] != MasterName {
				reply = "*-1\r\n"
			} else {
				reply = "*2\r\n" + bulk(host) + bulk(port)
			}
			f.mu.Lock()
			f.asked++
			close(f.askedC)
			f.askedC = make(chan struct{})
			f.mu.Unlock()
		case cmd == "SUBSCRIBE":
			for _, ch := range args[1:] {
				subscribed++
				reply += fmt.Sprintf("*3\r\n%s%s:%d\r\n", bulk("subscribe"), bulk(ch), subscribed)
			}
		default:
			reply = "-ERR unknown command '" + args[0] + "' (fake sentinel)\r\n"
		}
		if _, err := c.Write([]byte(reply)); err != nil {
			return
		}
	}
}

func bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

// readCommand reads one command, an array of bulk strings, from r.
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "*")))
	if err != nil || !strings.HasPrefix(line, "*") || n < 1 {
		return nil, fmt.Errorf("redistest: fake sentinel: not a command: %q", line)
	}
	args := make([]string, n)
	for i := range args {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "$")))
		if err != nil || size < 0 {
			return nil, fmt.Errorf("redistest: fake sentinel: not a bulk string: %q", line)
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		args[i] = string(buf[:size])
	}
	return args, nil
}
