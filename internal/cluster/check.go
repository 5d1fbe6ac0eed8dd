package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hammer-go/hammerredis/protocol"
	"github.com/hammer-go/hammerredis/server"
)

// opCheck names Check in the router's call counts.
var opCheck protocol.Request = &protocol.Check{}

// Check runs a check by its keys' slots (server.CheckKey): when they share
// one, as one script on its master, following MOVED and ASK as the other
// calls do. With AllOrNothing they must, as a script's keys must share a
// slot on a Redis Cluster: the check is refused otherwise. Without it the
// check is split into one check per slot, run at once (one round trip per
// master), whose decisions are merged in the limits' order; when one fails
// its error is returned, and the others may have counted. It counts once in
// the router's stats, however many checks it ran.
func (r *Router) Check(ctx context.Context, c protocol.Check) (protocol.CheckReply, error) {
	begin := time.Now()
	rep, err := r.check(ctx, c)
	r.calls.Record(opCheck, err, time.Since(begin))
	return rep, err
}

func (r *Router) check(ctx context.Context, c protocol.Check) (protocol.CheckReply, error) {
	if err := c.Validate(); err != nil {
		return protocol.CheckReply{}, err
	}
	keys := make([]string, len(c.Limits))
	slots := make([]int, len(c.Limits))
	var bySlot [][]int // the limits of each slot, by first appearance
	for i, l := range c.Limits {
		keys[i] = server.CheckKey(r.layout, c.Now, l)
		slots[i] = protocol.Slot(keys[i])
		g := 0
		for g < len(bySlot) && slots[bySlot[g][0]] != slots[i] {
			g++
		}
		if g == len(bySlot) {
			bySlot = append(bySlot, nil)
		}
		bySlot[g] = append(bySlot[g], i)
	}
	run := func(slot int, sub protocol.Check) (protocol.CheckReply, error) {
		return clusterTry(ctx, r, opCheck.Op(), slot, func(s *server.Server, asking bool) (protocol.CheckReply, error) {
			return s.Check(ctx, sub, asking)
		})
	}
	if len(bySlot) == 1 {
		return run(slots[0], c)
	}
	if c.AllOrNothing {
		j := bySlot[1][0]
		return protocol.CheckReply{}, fmt.Errorf("%w: check: with AllOrNothing on a Redis Cluster every key must be in one slot, "+
			"and limit 0's key %.80q (slot %d) and limit %d's key %.80q (slot %d) are not: give the ids one hash tag, "+
			`such as "{api-key-42}" (only what is between the braces is hashed)`,
			protocol.ErrInvalid, keys[0], slots[0], j, keys[j], slots[j])
	}
	replies := make([]protocol.CheckReply, len(bySlot))
	errs := make([]error, len(bySlot))
	var wg sync.WaitGroup
	for g, limits := range bySlot {
		sub := protocol.Check{Now: c.Now, Limits: make([]protocol.CheckLimit, len(limits))}
		for k, i := range limits {
			sub.Limits[k] = c.Limits[i]
		}
		wg.Go(func() { replies[g], errs[g] = run(slots[limits[0]], sub) })
	}
	wg.Wait()
	out := protocol.CheckReply{Decisions: make([]protocol.HitReply, len(c.Limits))}
	for g, limits := range bySlot {
		if errs[g] != nil {
			return protocol.CheckReply{}, errs[g]
		}
		for k, i := range limits {
			out.Decisions[i] = replies[g].Decisions[k]
		}
	}
	return out, nil
}
