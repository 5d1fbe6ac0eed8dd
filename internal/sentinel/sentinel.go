// Package sentinel follows the master of a Redis Sentinel group for the
// servers of one backend: a Watcher subscribes to the sentinels' failover
// events and asks them on a timer, and its Dialers dial the master it knows.
// It receives resolved settings: every default is applied by the caller.
package sentinel

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/hammer-go/hammerredis/protocol"
)

// Config is a resolved sentinel configuration: every field is set.
type Config struct {
	// Addrs are the sentinels' "host:port" addresses.
	Addrs []string
	// MasterName is the name the sentinels monitor the master under.
	MasterName string
	// Username and Password authenticate to the sentinels ("" for none).
	Username, Password string
	// Timeout bounds every exchange with one sentinel, and a ROLE check.
	Timeout time.Duration
	// MasterDialOptions dial the master (and the replicas being promoted).
	MasterDialOptions []redis.DialOption
	// PromotionWait is how long a dialer waits for a replica that a
	// failover is promoting.
	PromotionWait time.Duration
	// PollEvery is how often the sentinels are asked; > 0.
	PollEvery time.Duration
	// Logger receives the watcher's events.
	Logger *slog.Logger
}

// Redialer is a server that a Dialer dials for: the watcher makes it redial
// when the master changes.
type Redialer interface {
	Redial(reason string)
}

// Timing of the sentinel watcher.
const (
	// pubsubPing is how often a subscription to a sentinel is PINGed; a
	// sentinel that does not answer within pubsubPing plus the sentinel
	// timeout is taken as frozen and its subscription redialed.
	pubsubPing = time.Second
	// resubscribeAfter is the pause before redialing a lost subscription.
	resubscribeAfter = time.Second
	// promotionPoll paces the ROLE checks of a replica that a failover is
	// promoting.
	promotionPoll = 5 * time.Millisecond
)

// The sentinel events the watcher subscribes to. A failover's leader
// publishes +failover-state-send-slaveof-noone one tick of its timer (50 to
// 100 ms) before it promotes the replica; every sentinel publishes
// +switch-master once it has the new configuration.
const (
	evSwitchMaster = "+switch-master"
	evPromoting    = "+failover-state-send-slaveof-noone"
	evAbort        = "-failover-abort-slave-timeout"
)

// Watcher follows the master the sentinels name for every server of one
// backend. It is a suture service of the backend's tree: it subscribes to
// the sentinels' failover events and asks them every Config.PollEvery, and
// when the master changes it makes each server that dialed another one
// redial (Redialer). Its dialers dial the master it knows, and ask the
// sentinels themselves when it knows none or that one is not the master.
// No exchange with a sentinel ever runs on a server goroutine's call path.
//
// During a failover, from the leader's announcement that it promotes a
// replica until the sentinels name that replica, the old master is fenced:
// nothing dials it, and the dialers wait for the replica to become master,
// so that no hit goes to a master that is about to lose it.
type Watcher struct {
	cfg           Config
	sentinelOpts  []redis.DialOption
	masterOpts    []redis.DialOption
	promotionWait time.Duration // how long a dialer waits for a promotion
	pollEvery     time.Duration
	logger        *slog.Logger
	pollNow       chan struct{} // asks for a poll now; buffered by one

	mu       sync.Mutex
	master   string    // the master to dial; "" until one is known
	fenced   string    // while a failover moves away from it: the old master
	fencedAt time.Time // when the fence was set
	gen      uint64    // counts the changes of master and fence
	dialers  []*Dialer
}

// Dialer dials for one server (its Dial is the server's Config.Dial). It
// is safe for concurrent use.
type Dialer struct {
	w   *Watcher
	srv Redialer // set once the server exists; guarded by w.mu
	// dialed holds the masters dialed since the server was last told to
	// redial; guarded by w.mu.
	dialed map[string]bool
}

// NewWatcher returns a watcher for c, whose fields are all set.
func NewWatcher(c Config) *Watcher {
	w := &Watcher{cfg: c, masterOpts: c.MasterDialOptions, promotionWait: c.PromotionWait,
		pollEvery: c.PollEvery, logger: c.Logger, pollNow: make(chan struct{}, 1)}
	w.cfg.Addrs = slices.Clone(c.Addrs)
	// The contexts of each exchange bound it; the timeouts bound what a
	// context cannot, such as a PING's write on a subscription.
	w.sentinelOpts = []redis.DialOption{
		redis.DialConnectTimeout(w.cfg.Timeout), redis.DialReadTimeout(w.cfg.Timeout),
		redis.DialWriteTimeout(w.cfg.Timeout),
	}
	if c.Password != "" {
		w.sentinelOpts = append(w.sentinelOpts, redis.DialPassword(c.Password))
		if c.Username != "" {
			w.sentinelOpts = append(w.sentinelOpts, redis.DialUsername(c.Username))
		}
	}
	return w
}

// Dialer returns a new dialer for one server; Bind it to the server once it
// exists.
func (w *Watcher) Dialer() *Dialer {
	d := &Dialer{w: w, dialed: map[string]bool{}}
	w.mu.Lock()
	w.dialers = append(w.dialers, d)
	w.mu.Unlock()
	return d
}

// Bind tells d the server it dials for, which it makes redial when the
// master changes.
func (d *Dialer) Bind(srv Redialer) {
	d.w.mu.Lock()
	d.srv = srv
	d.w.mu.Unlock()
}

// String names the watcher in supervisor logs.
func (w *Watcher) String() string {
	return fmt.Sprintf("hammerredis sentinel watcher (%s)", w.cfg.MasterName)
}

// Serve subscribes to every sentinel and polls them until ctx is done.
func (w *Watcher) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, s := range w.cfg.Addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.subscribe(ctx, s)
		}()
	}
	t := time.NewTicker(w.pollEvery)
	defer t.Stop()
	for ctx.Err() == nil {
		w.poll(ctx)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-w.pollNow:
		}
	}
	wg.Wait()
	return ctx.Err()
}

// kickPoll asks Serve to poll the sentinels now.
func (w *Watcher) kickPoll() {
	select {
	case w.pollNow <- struct{}{}:
	default:
	}
}

// poll asks every sentinel and follows the master that a majority of those
// that answered name, once that server answers ROLE as the master.
func (w *Watcher) poll(ctx context.Context) {
	w.mu.Lock()
	gen := w.gen // an event during the poll wins over its answers
	w.mu.Unlock()
	answers := w.ask(ctx)
	votes, answered := tally(answers)
	if answered == 0 {
		return
	}
	best := rank(votes, w.cfg.Addrs, answers)[0]
	if 2*votes[best] <= answered {
		return // no majority: a failover is under way, or a sentinel lags
	}
	w.mu.Lock()
	fenced, known, since := w.fenced, w.master, time.Since(w.fencedAt)
	w.mu.Unlock()
	if fenced != "" && best == fenced {
		// The sentinels name the old master until the failover ends. It
		// failed only if the replica it promotes is still not the master.
		if since < w.promotionWait || w.isMaster(ctx, known) {
			return
		}
	}
	if best != known && best != fenced && !w.isMaster(ctx, best) {
		// Sentinels that lag, or were misconfigured, name a replica: the
		// dialers tried it and moved on, and following it would drop
		// every connection on each poll. A failover names its replica
		// only once it is promoted.
		return
	}
	w.mu.Lock()
	var servers []Redialer
	if w.gen == gen {
		servers = w.followLocked(best, "a majority of the sentinels name it", "", nil)
	}
	w.mu.Unlock()
	redial(servers, best, "a majority of the sentinels name it")
}

// isMaster reports whether addr answers ROLE with master, within the
// sentinel timeout.
func (w *Watcher) isMaster(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	conn, err := redis.DialContext(ctx, "tcp", addr, w.masterOpts...)
	if err != nil {
		return false
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	return checkMaster(conn) == nil
}

// follow makes addr the master and fences old ("" for none), and makes
// every server that dialed another master redial.
func (w *Watcher) follow(addr, why, fence string) {
	w.mu.Lock()
	servers := w.followLocked(addr, why, fence, nil)
	w.mu.Unlock()
	redial(servers, addr, why)
}

// followLocked is follow with w.mu held; it returns the servers to redial,
// except the one self dials for.
func (w *Watcher) followLocked(addr, why, fence string, self *Dialer) []Redialer {
	if w.master == addr && w.fenced == fence {
		return nil
	}
	if fence != "" && w.fenced != fence {
		w.fencedAt = time.Now()
	}
	old := w.master
	w.master, w.fenced = addr, fence
	w.gen++
	if old == addr {
		return nil
	}
	w.logger.Info("hammerredis: following a new master", "master", w.cfg.MasterName,
		"from", old, "to", addr, "why", why)
	var servers []Redialer
	for _, d := range w.dialers {
		if d == self || d.srv == nil {
			continue
		}
		for a := range d.dialed {
			if a != addr {
				clear(d.dialed)
				servers = append(servers, d.srv)
				break
			}
		}
	}
	return servers
}

func redial(servers []Redialer, addr, why string) {
	for _, s := range servers {
		s.Redial(fmt.Sprintf("the master moved to %s: %s", addr, why))
	}
}

// subscribe keeps a subscription to sentinel's failover events until ctx
// is done, redialing it after it breaks.
func (w *Watcher) subscribe(ctx context.Context, sentinel string) {
	healthy := true
	for {
		err := w.subscribeOnce(ctx, sentinel, func() { healthy = true })
		if ctx.Err() != nil {
			return
		}
		if healthy {
			// Once per loss: a sentinel that stays down is not logged
			// every second.
			w.logger.Warn("hammerredis: lost the subscription to a sentinel; retrying",
				"master", w.cfg.MasterName, "sentinel", sentinel, "error", err)
			healthy = false
		}
		d := resubscribeAfter - time.Duration(rand.Int64N(int64(resubscribeAfter)/5))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// subscribeOnce subscribes to sentinel's failover events and handles them
// until the connection breaks, the sentinel stops answering PINGs, or ctx
// is done. It calls subscribed once the subscription is set up.
func (w *Watcher) subscribeOnce(ctx context.Context, sentinel string, subscribed func()) error {
	dctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	conn, err := redis.DialContext(dctx, "tcp", sentinel, w.sentinelOpts...)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	psc := redis.PubSubConn{Conn: conn}
	channels := []any{evSwitchMaster, evPromoting, evAbort}
	if err := psc.Subscribe(channels...); err != nil {
		return err
	}
	for range channels {
		switch v := psc.ReceiveWithTimeout(w.cfg.Timeout).(type) {
		case redis.Subscription:
		case error:
			return fmt.Errorf("SUBSCRIBE: %w", v)
		default:
			return fmt.Errorf("%w: SUBSCRIBE replied %T", protocol.ErrBadReply, v)
		}
	}
	subscribed()
	w.kickPoll() // events may have gone by while unsubscribed

	// PINGs prove the sentinel alive: its reply, or any message, is due
	// within pubsubPing plus the timeout.
	pctx, pcancel := context.WithCancel(ctx)
	var pinger sync.WaitGroup
	pinger.Add(1)
	go func() {
		defer pinger.Done()
		t := time.NewTicker(pubsubPing)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
				if psc.Ping("") != nil {
					return
				}
			}
		}
	}()
	defer pinger.Wait()
	defer pcancel()
	for {
		switch v := psc.ReceiveWithTimeout(pubsubPing + w.cfg.Timeout).(type) {
		case redis.Message:
			w.event(sentinel, v.Channel, string(v.Data))
		case error:
			return v
		}
	}
}

// event handles a message of sentinel on channel.
func (w *Watcher) event(sentinel, channel, data string) {
	f := strings.Fields(data)
	switch channel {
	case evSwitchMaster:
		// <name> <old ip> <old port> <new ip> <new port>
		if len(f) == 5 && f[0] == w.cfg.MasterName {
			w.follow(net.JoinHostPort(f[3], f[4]), "sentinel "+sentinel+" announced "+evSwitchMaster, "")
		}
	case evPromoting:
		// slave <ip:port> <ip> <port> @ <name> <master ip> <master port>
		if len(f) == 8 && f[4] == "@" && f[5] == w.cfg.MasterName {
			from, to := net.JoinHostPort(f[6], f[7]), net.JoinHostPort(f[2], f[3])
			w.mu.Lock()
			known := w.master
			w.mu.Unlock()
			if known == "" || known == from {
				w.follow(to, "sentinel "+sentinel+" is promoting it ("+evPromoting+")", from)
			}
		}
	case evAbort:
		// master <name> <ip> <port>
		if len(f) == 4 && f[1] == w.cfg.MasterName {
			old := net.JoinHostPort(f[2], f[3])
			w.mu.Lock()
			fenced := w.fenced
			w.mu.Unlock()
			if fenced == old {
				w.follow(old, "sentinel "+sentinel+" aborted the failover ("+evAbort+")", "")
			}
		}
	}
}

// Dial dials the master the watcher knows and checks that it is the master;
// when it knows none, or that one is not the master, it asks the sentinels
// and tries the masters they name, the most named first.
func (d *Dialer) Dial(ctx context.Context) (redis.Conn, error) {
	w := d.w
	w.mu.Lock()
	master, moving := w.master, w.fenced != ""
	w.mu.Unlock()
	var errs []error
	if master != "" {
		var wait time.Duration
		if moving {
			wait = w.promotionWait // the sentinels are promoting it
		}
		conn, err := w.dialMaster(ctx, master, wait)
		if err == nil {
			return d.keep(conn, master, false)
		}
		if ctx.Err() != nil {
			return nil, err
		}
		errs = append(errs, err)
	}
	candidates, err := w.candidates(ctx)
	if err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	for _, a := range candidates {
		if a == master {
			continue // just tried
		}
		conn, err := w.dialMaster(ctx, a, 0)
		if err == nil {
			return d.keep(conn, a, true)
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("master %q: the sentinels name no master but the one a failover is leaving", w.cfg.MasterName)
	}
	return nil, errors.Join(errs...)
}

// keep returns conn, dialed to addr, unless the watcher follows another
// master by now. With adopt, addr becomes the master the watcher follows.
func (d *Dialer) keep(conn redis.Conn, addr string, adopt bool) (redis.Conn, error) {
	w := d.w
	w.mu.Lock()
	var servers []Redialer
	if adopt && addr != w.fenced {
		servers = w.followLocked(addr, "it is the master the sentinels name", "", d)
	}
	ok := w.master == addr
	if ok {
		// Recorded under the lock that follow takes: a master change after
		// this makes the server redial, and one before it fails the check.
		d.dialed[addr] = true
	}
	now := w.master
	w.mu.Unlock()
	redial(servers, addr, "it is the master the sentinels name")
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("master %q: the sentinels moved it from %s to %s during the dial", w.cfg.MasterName, addr, now)
	}
	return conn, nil
}

// errNotMaster is checkMaster's error for a server whose ROLE is not master.
var errNotMaster = errors.New("not the master")

// dialMaster dials addr and checks that it is the master; for up to wait,
// it waits for a replica that is being promoted.
func (w *Watcher) dialMaster(ctx context.Context, addr string, wait time.Duration) (redis.Conn, error) {
	deadline := time.Now().Add(wait)
	for {
		conn, err := redis.DialContext(ctx, "tcp", addr, w.masterOpts...)
		for err == nil {
			// Stop (ctx) interrupts a master that accepts and never answers.
			stop := context.AfterFunc(ctx, func() { conn.Close() })
			err = checkMaster(conn)
			if !stop() && err == nil {
				err = ctx.Err()
			}
			if err == nil {
				return conn, nil
			}
			if !errors.Is(err, errNotMaster) || time.Now().After(deadline) {
				break
			}
			if err = sleepCtx(ctx, promotionPoll); err != nil {
				break
			}
		}
		if conn != nil {
			conn.Close()
		}
		// The promotion kills the replica's clients: dial again.
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			return nil, fmt.Errorf("master %q at %s: %w", w.cfg.MasterName, addr, err)
		}
		if err := sleepCtx(ctx, promotionPoll); err != nil {
			return nil, fmt.Errorf("master %q at %s: %w", w.cfg.MasterName, addr, err)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// sentinelAnswer is one sentinel's answer to get-master-addr-by-name.
type sentinelAnswer struct {
	sentinel, addr string
	err            error
}

// ask asks every sentinel at once, each within the sentinel timeout, and
// returns their answers; it returns early once a majority of all the
// sentinels agree.
func (w *Watcher) ask(ctx context.Context) []sentinelAnswer {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	ch := make(chan sentinelAnswer, len(w.cfg.Addrs))
	for _, s := range w.cfg.Addrs {
		go func() {
			addr, err := askSentinel(ctx, s, w.cfg.MasterName, w.sentinelOpts)
			ch <- sentinelAnswer{sentinel: s, addr: addr, err: err}
		}()
	}
	var answers []sentinelAnswer
	votes := map[string]int{}
	for range w.cfg.Addrs {
		a := <-ch
		answers = append(answers, a)
		if a.err == nil {
			votes[a.addr]++
			if 2*votes[a.addr] > len(w.cfg.Addrs) {
				break
			}
		}
	}
	return answers
}

// candidates asks the sentinels and returns the masters they name, the
// most named first, without the master a failover is leaving.
func (w *Watcher) candidates(ctx context.Context) ([]string, error) {
	answers := w.ask(ctx)
	votes, answered := tally(answers)
	if answered == 0 {
		var errs []error
		for _, a := range answers {
			errs = append(errs, fmt.Errorf("sentinel %s: %w", a.sentinel, a.err))
		}
		return nil, fmt.Errorf("no sentinel named the master %q: %w", w.cfg.MasterName, errors.Join(errs...))
	}
	w.mu.Lock()
	fenced := w.fenced
	w.mu.Unlock()
	return slices.DeleteFunc(rank(votes, w.cfg.Addrs, answers), func(a string) bool { return a == fenced }), nil
}

// tally counts the sentinels that name each master, and those that
// answered.
func tally(answers []sentinelAnswer) (votes map[string]int, answered int) {
	votes = map[string]int{}
	for _, a := range answers {
		if a.err == nil {
			votes[a.addr]++
			answered++
		}
	}
	return votes, answered
}

// rank returns the named masters, the most named first; on a tie, the one
// named by the sentinel listed first in addrs.
func rank(votes map[string]int, addrs []string, answers []sentinelAnswer) []string {
	first := map[string]int{}
	for _, a := range answers {
		if a.err == nil {
			i := slices.Index(addrs, a.sentinel)
			if j, ok := first[a.addr]; !ok || i < j {
				first[a.addr] = i
			}
		}
	}
	names := make([]string, 0, len(votes))
	for a := range votes {
		names = append(names, a)
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(votes[b], votes[a]), cmp.Compare(first[a], first[b]))
	})
	return names
}

// askSentinel asks one sentinel for the master's address, within ctx.
func askSentinel(ctx context.Context, sentinel, name string, opts []redis.DialOption) (string, error) {
	conn, err := redis.DialContext(ctx, "tcp", sentinel, opts...)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	reply, err := redis.Strings(redis.DoContext(conn, ctx, "SENTINEL", "get-master-addr-by-name", name))
	switch {
	case errors.Is(err, redis.ErrNil):
		return "", fmt.Errorf("it monitors no master named %q", name)
	case err != nil:
		return "", err
	case len(reply) != 2:
		return "", fmt.Errorf("%w: SENTINEL get-master-addr-by-name replied %d values", protocol.ErrBadReply, len(reply))
	}
	return net.JoinHostPort(reply[0], reply[1]), nil
}

// checkMaster fails unless ROLE says master. A user who may not run ROLE is
// trusted to have been sent to the master.
func checkMaster(conn redis.Conn) error {
	reply, err := redis.Values(conn.Do("ROLE"))
	var rerr redis.Error
	switch {
	case errors.As(err, &rerr):
		return nil
	case err != nil:
		return err
	case len(reply) == 0:
		return fmt.Errorf("%w: empty ROLE reply", protocol.ErrBadReply)
	}
	if role, _ := redis.String(reply[0], nil); !strings.EqualFold(role, "master") {
		return fmt.Errorf("%w: it is a %s (a failover is under way)", errNotMaster, role)
	}
	return nil
}
