package rules7

import (
	"maps"
	"slices"
	"testing"

	"github.com/hammer-go/hammerredis/protocol"
)

// Model is the rules of protocol/hammer7.go for one key, computed the
// plain way: the answers every backend must give, for rule tables built on
// this one (internal/checkrules). The caller's Now and the backend's clock
// are one: times are ms since the Unix epoch, the clocked algorithms using
// their whole second.
type Model struct{ m *model }

// NewModel returns the model of a fresh key under the valid policy p.
func NewModel(p protocol.Policy) *Model { return &Model{newModel(p)} }

// Hit applies a hit of cost at nowMs and returns the reply.
func (m *Model) Hit(nowMs, cost int64) protocol.HitReply { return m.m.hit(nowMs, cost) }

// Get returns what Get answers at nowMs, changing nothing.
func (m *Model) Get(nowMs int64) int64 { return m.m.get(nowMs) }

// Clone returns a copy of m that shares nothing with it.
func (m *Model) Clone() *Model {
	c := *m.m
	c.counts, c.members = maps.Clone(m.m.counts), slices.Clone(m.m.members)
	return &Model{&c}
}

// Base is the whole second at which every table starts, 2100-01-01
// 00:00:00 UTC: a multiple of 60 and of 1.5 s.
var Base = base

// Start is the usual offset of a table's first call from Base.
const Start = start

// FreshKey returns a key that no other subtest, nor any other run, uses.
func FreshKey(t *testing.T) string { return freshKey(t) }
