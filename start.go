package hammerredis

import (
	"fmt"

	"github.com/hammer-go/hammerredis/supervisor"
	"github.com/thejerf/suture/v4"
)

// Start starts a backend under its own private supervisor, like Elixir's
// start/1: not linked to any tree of the caller's. It returns at once, even
// while Redis is unreachable. A call made before the first connection
// attempt has ended waits for it, within its context; after a failed
// attempt, calls fail with ErrClosed at once until the connection is up.
// Stop it with Stop.
func Start(opts Options) (*Backend, error) {
	b, err := New(opts)
	if err != nil {
		return nil, err
	}
	// The backend's own tree is the private supervisor.
	b.serving.Store(true)
	b.mu.Lock()
	b.running = supervisor.Run(b.tree)
	b.mu.Unlock()
	return b, nil
}

// StartLink starts a backend as a child of sup, like Elixir's start_link/1:
// it lives and dies with that tree. Its own supervisor, a child of sup,
// restarts a server whose connection breaks. If sup is not serving yet, the
// backend starts when it does. Stop removes it.
func StartLink(sup *suture.Supervisor, opts Options) (*Backend, error) {
	if sup == nil {
		return nil, fmt.Errorf("%w: StartLink needs a supervisor", ErrInvalid)
	}
	b, err := New(opts)
	if err != nil {
		return nil, err
	}
	token := sup.Add(b)
	b.mu.Lock()
	b.parent, b.token = sup, token
	b.mu.Unlock()
	return b, nil
}
