package hammerredis

import (
	"context"

	"github.com/hammer-go/hammerredis/protocol"
	"github.com/hammer-go/hammerredis/server"
)

// CheckLua is the Lua source of the check script: every limit of one
// check decided, then written unless all-or-nothing forbids it. Check runs
// it for a check alone (per slot on a Redis Cluster); on a single server
// the checks queued together run as one multi-check script instead, each
// as this one would. It is exported, like
// CountHitLua, for tools that must do the same Redis work as the backend;
// its arguments are listed in server/scriptcheck.go.
const CheckLua = server.CheckLua

// Check decides one request against several limits at once, Hammer 6
// windows and Hammer 7 hits, by the rules of protocol.Check: each limit as
// its own call (CountHitN of the Hammer 6 bucket Now/ScaleMs, or Hit)
// would decide it, every limit charged whatever the others decide, or with
// AllOrNothing none charged when a limit that is not Shadow denies. Being
// limited is a decision, not an error. package hammer's Checker is its
// user API.
//
// On one server, a pool or a Sentinel master, a check is decided on one
// snapshot, inside one script run: its own (server.CheckLua), or, with the
// other checks queued with it, one run of the multi-check script that
// decides them one after the other (server.MultiCheckLua). It needs Redis 7.0 or
// later, as Hammer 7's calls do: before, it fails unsent with
// ErrUnsupported, Hammer 6 limits alone included. Limits that would write
// one key as two types are refused with ErrInvalid. The call's failures are
// those of the other calls: a check whose outcome is unknown (ErrTimeout,
// ErrDisconnected) is never sent again, and may have counted.
//
// On a Redis Cluster, a check whose keys share one slot runs as one script
// on its master. With AllOrNothing they must: a check whose keys span
// slots is refused with ErrInvalid (give the ids one hash tag, such as
// "{api-key-42}"; HashTagKeys makes each Hammer 6 id its own tag, so its
// limits' ids must then be equal). Without AllOrNothing such a check is
// split into one check per slot, run at once on their masters (one round
// trip each), and their decisions merged in order; when one of them fails
// Check returns its error, and the others may have counted.
func (b *Backend) Check(ctx context.Context, r protocol.Check) (protocol.CheckReply, error) {
	return b.router.Check(ctx, r)
}

// Check runs the check on the server of its first limit's id: every
// server of a pool talks to the same Redis, which runs the check as one
// script whichever server sends it.
func (p pool) Check(ctx context.Context, r protocol.Check) (protocol.CheckReply, error) {
	id := ""
	if len(r.Limits) > 0 {
		id = r.Limits[0].ID
	}
	return p.route(id).Check(ctx, r, false)
}
