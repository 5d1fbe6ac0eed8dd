package rules7

import (
	"slices"

	"github.com/hammer-go/hammerredis/protocol"
)

// model is protocol/hammer7.go's rules for one key, in memory: the answer
// every backend must give, computed the plain way. Times are ms since the
// Unix epoch (positive); the clocked algorithms use its whole second.
type model struct {
	p protocol.Policy

	counts  map[int64]int64 // fix_window: window number → count
	members []int64         // sliding_window: the members' seconds, ascending

	// Buckets: the stored hash, when there is one.
	exists      bool
	level, last int64
}

func newModel(p protocol.Policy) *model {
	return &model{p: p, counts: map[int64]int64{}}
}

// ceilDiv is ceil(a/b) for a ≥ 0, b > 0.
func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// trim drops the sliding window's members scored at or below s − w.
func (m *model) trim(s int64) {
	cut := s - m.p.WindowSeconds()
	i := 0
	for i < len(m.members) && m.members[i] <= cut {
		i++
	}
	m.members = m.members[i:]
}

// leaked is a leaky bucket's level at second s: level'.
func (m *model) leaked(s int64) int64 {
	if !m.exists {
		return 0
	}
	return max(0, m.level-(s-m.last)*m.p.Rate)
}

// tokens is a token bucket's tokens at second s.
func (m *model) tokens(s int64) int64 {
	if !m.exists {
		return m.p.Limit
	}
	return min(m.p.Limit, m.level+(s-m.last)*m.p.Rate)
}

// hit applies a hit of cost at nowMs and returns the reply.
func (m *model) hit(nowMs, cost int64) protocol.HitReply {
	s, limit, rate := nowMs/1000, m.p.Limit, m.p.Rate
	deny := func(count, retryMs int64) protocol.HitReply {
		if cost > limit {
			retryMs = protocol.Never
		}
		return protocol.HitReply{Count: count, RetryAfterMs: retryMs}
	}
	switch m.p.Algorithm {
	case protocol.FixWindow:
		w, end := m.p.Window(nowMs)
		m.counts[w] += cost
		if c := m.counts[w]; c > limit {
			return deny(c, end-nowMs)
		}
		return protocol.HitReply{Allowed: true, Count: m.counts[w]}
	case protocol.SlidingWindow:
		m.trim(s)
		c := int64(len(m.members))
		if c+cost > limit {
			if cost > limit {
				return deny(c, 0)
			}
			k := c + cost - limit
			return deny(c, (m.members[k-1]+m.p.WindowSeconds())*1000-nowMs)
		}
		for range cost {
			m.members = append(m.members, s)
		}
		return protocol.HitReply{Allowed: true, Count: c + cost}
	case protocol.LeakyBucket:
		l := m.leaked(s)
		if l+cost > limit {
			if cost > limit {
				return deny(l, 0)
			}
			return deny(l, (m.last+ceilDiv(m.level+cost-limit, rate))*1000-nowMs)
		}
		m.exists, m.level, m.last = true, l+cost, s
		return protocol.HitReply{Allowed: true, Count: m.level}
	case protocol.TokenBucket:
		t := m.tokens(s)
		if t < cost {
			if cost > limit {
				return deny(t, 0)
			}
			return deny(t, (m.last+ceilDiv(cost-m.level, rate))*1000-nowMs)
		}
		m.exists, m.level, m.last = true, t-cost, s
		return protocol.HitReply{Allowed: true, Count: m.level}
	}
	panic("rules7: unknown algorithm")
}

// get returns what Get answers at nowMs, changing nothing.
func (m *model) get(nowMs int64) int64 {
	s := nowMs / 1000
	switch m.p.Algorithm {
	case protocol.FixWindow:
		w, _ := m.p.Window(nowMs)
		return m.counts[w]
	case protocol.SlidingWindow:
		cut := s - m.p.WindowSeconds()
		i, _ := slices.BinarySearch(m.members, cut+1)
		return int64(len(m.members) - i)
	case protocol.LeakyBucket:
		return m.leaked(s)
	case protocol.TokenBucket:
		return m.tokens(s)
	}
	panic("rules7: unknown algorithm")
}
