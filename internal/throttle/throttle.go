// Package throttle keeps repeated log lines from flooding a log: the first
// event at once, then one per period, each with the number of events held
// back since the previous one.
package throttle

import "time"

// Gate decides which events of a stream are logged. Its zero value lets
// the first event through. It holds no lock: its user calls it under one of
// its own, beside the state it keeps with it.
type Gate struct {
	last   time.Time // of the latest event let through; zero before the first
	missed int64     // events held back since
}

// Pass reports whether an event at now is let through: the first one, and
// then one at least period after the latest let through (or period before
// it, should the clock have gone back). When it is, missed is the number of
// events held back since, which Pass then forgets.
func (g *Gate) Pass(now time.Time, period time.Duration) (missed int64, ok bool) {
	since := now.Sub(g.last)
	if !g.last.IsZero() && since < period && since > -period {
		g.missed++
		return 0, false
	}
	missed, g.last, g.missed = g.missed, now, 0
	return missed, true
}

// Take returns the number of events held back since the latest let
// through, and forgets it.
func (g *Gate) Take() int64 {
	n := g.missed
	g.missed = 0
	return n
}
