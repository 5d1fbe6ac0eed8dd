package hammerotel

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/hammer"
)

// ObserveChecker exports c's degraded mode (c.Degraded) as the gauge
// hammerredis.checker.degraded{checker=name} at every collection, until
// the returned registration's Unregister. name tells checkers apart: give
// each one its own.
func (m *Metrics) ObserveChecker(name string, c *hammer.Checker) (metric.Registration, error) {
	if name == "" || c == nil {
		return nil, fmt.Errorf("%w: hammerotel: ObserveChecker needs a name and a checker", hammerredis.ErrInvalid)
	}
	opts := []metric.ObserveOption{metric.WithAttributeSet(m.set(CheckerKey.String(name)))}
	return m.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(m.degraded, boolInt(c.Degraded()), opts...)
		return nil
	}, m.degraded)
}

// StatsSource is what ObserveBackend reads: *hammerredis.Backend is one.
type StatsSource interface {
	Stats() hammerredis.Stats
}

// ObserveBackend exports src's Stats, read once per collection, until the
// returned registration's Unregister: whether it is connected, its queue,
// and its calls by operation and errors by kind (every call of the
// backend, not only a Checker's), each with the attribute backend=name.
// Give each backend its own name.
func (m *Metrics) ObserveBackend(name string, src StatsSource) (metric.Registration, error) {
	if name == "" || src == nil {
		return nil, fmt.Errorf("%w: hammerotel: ObserveBackend needs a name and a StatsSource", hammerredis.ErrInvalid)
	}
	opts := func(kv ...attribute.KeyValue) []metric.ObserveOption {
		return []metric.ObserveOption{metric.WithAttributeSet(m.set(append(kv, BackendKey.String(name))...))}
	}
	plain := opts()
	var ops [len(opNames)][]metric.ObserveOption
	for i, op := range opNames {
		ops[i] = opts(OpKey.String(op))
	}
	var kinds [numKinds][]metric.ObserveOption
	for k := kindNone + 1; k < numKinds; k++ {
		kinds[k] = opts(ErrorTypeKey.String(k.String()))
	}
	return m.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := src.Stats()
		o.ObserveInt64(m.connected, boolInt(s.Connected), plain...)
		o.ObserveInt64(m.queueDepth, int64(s.QueueDepth), plain...)
		o.ObserveInt64(m.queueCapacity, int64(s.QueueCapacity), plain...)
		c := s.Calls
		for i, n := range [len(opNames)]uint64{c.CountHit, c.GetBucket, c.DeleteBuckets, c.Hit, c.Inc, c.Set, c.Get, c.Check} {
			o.ObserveInt64(m.calls, int64(n), ops[i]...)
		}
		e := s.Errors
		for _, kn := range [...]struct {
			k errorKind
			n uint64
		}{
			{kindClosed, e.Closed}, {kindDisconnected, e.Disconnected}, {kindTimeout, e.Timeout},
			{kindCanceled, e.Canceled}, {kindStopped, e.Stopped}, {kindInvalid, e.Invalid},
			{kindRedis, e.Redis}, {kindBadReply, e.BadReply}, {kindOther, e.Other},
		} {
			o.ObserveInt64(m.errors, int64(kn.n), kinds[kn.k]...)
		}
		return nil
	}, m.connected, m.queueDepth, m.queueCapacity, m.calls, m.errors)
}

// opNames are the values of the op attribute, in the order of
// hammerredis.Stats' Calls.
var opNames = [...]string{"count_hit", "get_bucket", "delete_buckets", "hit", "inc", "set", "get", "check"}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
