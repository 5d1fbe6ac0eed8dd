package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/thejerf/suture/v4"
	"go.uber.org/goleak"

	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeServer fails its first n Serves, then serves until cancelled.
type fakeServer struct {
	fails  int32
	serves atomic.Int32
	panics bool
}

func (f *fakeServer) String() string { return "fake" }

func (f *fakeServer) Serve(ctx context.Context) error {
	n := f.serves.Add(1)
	if n <= f.fails {
		if f.panics {
			panic(fmt.Sprintf("boom %d", n))
		}
		return fmt.Errorf("connection lost %d", n)
	}
	<-ctx.Done()
	return fmt.Errorf("%w: %w", protocol.ErrStopped, ctx.Err())
}

func TestRestartsAreLoggedAndStoppedServersNotRestarted(t *testing.T) {
	rec := logtest.New()
	sup := New("test", Spec{Logger: rec.Logger()})
	srv := &fakeServer{fails: 2}
	sup.Add(Service(srv, rec.Logger()))
	r := Run(sup)
	rec.WaitCount(t, "hammerredis: service ended", 2, 10*time.Second)
	assert.Contains(t, rec.String(), "connection lost 2")
	assert.Contains(t, rec.String(), "restarting=true")
	r.Stop()
	r.Stop() // idempotent
	assert.Equal(t, int32(3), srv.serves.Load())
}

func TestPanicsAreLoggedThenRestarted(t *testing.T) {
	rec := logtest.New()
	sup := New("test", Spec{Logger: rec.Logger()})
	srv := &fakeServer{fails: 1, panics: true}
	sup.Add(Service(srv, rec.Logger()))
	r := Run(sup)
	defer r.Stop()
	rec.WaitCount(t, "hammerredis: service panicked", 1, 10*time.Second)
	rec.WaitCount(t, "hammerredis: server panicked; its supervisor restarts it", 1, 10*time.Second)
	assert.Contains(t, rec.String(), "boom 1")
	assert.Contains(t, rec.String(), "stack=", "the supervisor logs the stack")
}

func TestStoppedServerTellsSutureNotToRestart(t *testing.T) {
	stopped := stubServer{err: fmt.Errorf("%w: context canceled", protocol.ErrStopped)}
	err := Service(stopped, nil).Serve(context.Background())
	assert.ErrorIs(t, err, suture.ErrDoNotRestart)
	assert.ErrorIs(t, err, protocol.ErrStopped)

	lost := stubServer{err: errors.New("EOF")}
	err = Service(lost, nil).Serve(context.Background())
	assert.NotErrorIs(t, err, suture.ErrDoNotRestart)
	assert.Equal(t, "stub", fmt.Sprint(Service(lost, nil)))
}

type stubServer struct{ err error }

func (s stubServer) Serve(context.Context) error { return s.err }
func (s stubServer) String() string              { return "stub" }

func TestEventHookLogsEveryEvent(t *testing.T) {
	rec := logtest.New()
	hook := EventHook(rec.Logger())
	hook(suture.EventBackoff{SupervisorName: "s"})
	hook(suture.EventResume{SupervisorName: "s"})
	hook(suture.EventStopTimeout{SupervisorName: "s", ServiceName: "x"})
	for _, want := range []string{"pausing restarts", "resuming restarts", "did not stop in time"} {
		assert.Equal(t, 1, rec.Count(want), "%q in:\n%s", want, rec)
	}
}

func TestThrashingPausesBrieflyNotForSutureDefault15s(t *testing.T) {
	rec := logtest.New()
	sup := New("test", Spec{Logger: rec.Logger()})
	srv := &fakeServer{fails: 7} // past the threshold of 5
	sup.Add(Service(srv, rec.Logger()))
	r := Run(sup)
	defer r.Stop()
	rec.WaitCount(t, "pausing restarts", 1, 10*time.Second)
	// With suture's default FailureBackoff this would take 15s.
	rec.WaitCount(t, "resuming restarts", 1, 5*time.Second)
}
