// Package supervisor wires hammerredis servers into suture supervision trees.
//
// # Trees
//
// [New] builds a supervisor whose events (restarts, backoff, panics) are
// logged through slog. Every backend has one such tree of its own, the parent
// of its servers, built by hammerredis.New with FailureThreshold +Inf: suture
// never adds its thrash pause there, because the servers back off between
// dials by themselves and a pause on top would hold a recovery past their
// MaxBackoff. [Run] serves a tree in the background, as hammerredis.Start
// does; [Running.Stop] stops it and waits. hammerredis.StartLink instead adds
// the backend, and with it its tree, as a child of the caller's own tree:
// the backend's tree still restarts its servers, and the caller's Spec
// governs only the backend as a whole.
//
// # Services
//
// [Service] adapts a server to suture: a server that was stopped for good
// tells suture not to restart it, and a panic is logged before suture
// handles it.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hammer-go/hammerredis/protocol"
	"github.com/thejerf/suture/v4"
)

// Defaults of Spec, for its zero values.
const (
	DefaultFailureBackoff   = time.Second
	DefaultFailureThreshold = 5
)

// Spec configures a private supervisor. Zero values mean the defaults.
type Spec struct {
	// Logger receives the supervisor's events; default slog.Default().
	Logger *slog.Logger
	// FailureBackoff is how long suture pauses restarts after
	// FailureThreshold failures; default DefaultFailureBackoff (1s;
	// suture's own default is 15s).
	FailureBackoff time.Duration
	// FailureThreshold is suture's failure count that triggers the pause;
	// default DefaultFailureThreshold (5). math.Inf(1) never pauses: for
	// services that back off by themselves.
	FailureThreshold float64
}

// New returns a supervisor whose events are logged through spec.Logger.
func New(name string, spec Spec) *suture.Supervisor {
	if spec.Logger == nil {
		spec.Logger = slog.Default()
	}
	if spec.FailureBackoff <= 0 {
		spec.FailureBackoff = DefaultFailureBackoff
	}
	if spec.FailureThreshold <= 0 {
		spec.FailureThreshold = DefaultFailureThreshold
	}
	return suture.New(name, suture.Spec{
		EventHook:        EventHook(spec.Logger),
		FailureBackoff:   spec.FailureBackoff,
		FailureThreshold: spec.FailureThreshold,
		Timeout:          10 * time.Second,
	})
}

// EventHook returns a suture event hook that logs each event through logger:
// service terminations and restarts as warnings, panics and stop timeouts as
// errors, backoff and resume as info.
func EventHook(logger *slog.Logger) suture.EventHook {
	return func(e suture.Event) {
		switch ev := e.(type) {
		case suture.EventServiceTerminate:
			logger.Warn("hammerredis: service ended", "supervisor", ev.SupervisorName,
				"service", ev.ServiceName, "error", fmt.Sprint(ev.Err), "restarting", ev.Restarting,
				"failures", ev.CurrentFailures, "threshold", ev.FailureThreshold)
		case suture.EventServicePanic:
			logger.Error("hammerredis: service panicked", "supervisor", ev.SupervisorName,
				"service", ev.ServiceName, "panic", ev.PanicMsg, "restarting", ev.Restarting,
				"stack", ev.Stacktrace)
		case suture.EventBackoff:
			logger.Warn("hammerredis: too many failures, pausing restarts", "supervisor", ev.SupervisorName)
		case suture.EventResume:
			logger.Info("hammerredis: resuming restarts", "supervisor", ev.SupervisorName)
		case suture.EventStopTimeout:
			logger.Error("hammerredis: service did not stop in time", "supervisor", ev.SupervisorName,
				"service", ev.ServiceName)
		default:
			logger.Info("hammerredis: supervisor event", "event", e.String())
		}
	}
}

// Server is what Service needs of a hammerredis server.
type Server interface {
	Serve(ctx context.Context) error
	String() string
}

// Service adapts srv to suture.Service.
func Service(srv Server, logger *slog.Logger) suture.Service {
	if logger == nil {
		logger = slog.Default()
	}
	return service{srv, logger}
}

type service struct {
	srv    Server
	logger *slog.Logger
}

func (s service) String() string { return s.srv.String() }

// Serve runs the server. A server stopped for good returns
// suture.ErrDoNotRestart so that its supervisor forgets it. A panic is
// logged here, where the backend's own logger is known, and passed on to
// suture, which restarts the service.
func (s service) Serve(ctx context.Context) error {
	defer func() {
		if r := recover(); r != nil {
			s.logger.Error("hammerredis: server panicked; its supervisor restarts it",
				"service", s.srv.String(), "panic", fmt.Sprint(r))
			panic(r)
		}
	}()
	err := s.srv.Serve(ctx)
	if errors.Is(err, protocol.ErrStopped) {
		return fmt.Errorf("%w: %w", suture.ErrDoNotRestart, err)
	}
	return err
}

// Running is a supervisor served in the background by Run.
type Running struct {
	cancel context.CancelFunc
	errc   <-chan error
	once   sync.Once
}

// Run serves sup in the background until Stop.
func Run(sup *suture.Supervisor) *Running {
	ctx, cancel := context.WithCancel(context.Background())
	return &Running{cancel: cancel, errc: sup.ServeBackground(ctx)}
}

// Stop stops the supervisor and its services and waits until they are done.
// It is idempotent.
func (r *Running) Stop() {
	r.once.Do(func() {
		r.cancel()
		<-r.errc
	})
}
