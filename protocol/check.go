package protocol

import "fmt"

// A Check decides one request against several limits at once, in one
// round trip per Redis node: each limit a Hammer 6 fixed window or a
// Hammer 7 hit. Every backend follows these rules.
//
// Each limit is decided as its own call would decide it: a Hammer 6 limit
// as count_hit of Cost in bucket Now/ScaleMs of ID (the backend's Hammer 6
// layout and expiry), allowed while the count after it is at most Limit; a
// Hammer 7 limit as Hit (hammer7.go). A Hammer 6 deny waits until the
// bucket ends, (Now/ScaleMs+1)×ScaleMs − Now; Never when Cost > Limit.
//
// Without AllOrNothing, every limit counts its hit by its own rules,
// whatever the others decide (Hammer's rule: a fixed window counts a
// denied hit too, the other algorithms do not). The request is denied when
// any limit that is not Shadow denies.
//
// With AllOrNothing, the limits are decided first without writing
// anything; when every limit that is not Shadow allows, each limit then
// counts its hit as above (a Shadow limit that denies counts as its call
// would), else nothing is written at all: a denied request costs no limit
// anything. The decisions are made on one snapshot: no other call runs
// between them (one script on Redis, the keys' locks in memory). On a Redis
// Cluster that needs every key of the check in one slot; give the ids a
// hash tag ("{api-key-42}") so that they share one.
//
// Limits of one check may share a key: the later sees the earlier's hit
// (with AllOrNothing, its pending hit).
type Check struct {
	// Now is the caller's clock, ms since the Unix epoch: the window of
	// Hammer 6 limits and fix windows, as for CountHit and Hit.
	Now int64
	// AllOrNothing charges no limit when one that is not Shadow denies.
	AllOrNothing bool
	// Limits are the limits, 1 to MaxCheckLimits of them; the reply's
	// decisions come in the same order.
	Limits []CheckLimit
}

// MaxCheckLimits bounds the limits of one Check.
const MaxCheckLimits = 32

// CheckLimit is one limit of a Check.
type CheckLimit struct {
	// Hammer6 makes this limit a Hammer 6 fixed window of Policy.ScaleMs
	// and Policy.Limit, counted in the backend's Hammer 6 buckets of ID;
	// Policy's Algorithm, Prefix and Rate are then zero. Otherwise Policy
	// is a Hammer 7 policy, counted in its keys.
	Hammer6 bool
	Policy  Policy
	ID      string
	// Cost is the hit's increment or cost, at least 1.
	Cost int64
	// Shadow limits are counted and decided, but never deny the request
	// (nor, with AllOrNothing, keep the others from counting).
	Shadow bool
}

// CheckReply answers Check: one decision per limit, in order, each as a
// HitReply (for a Hammer 6 limit, Count is its bucket's count).
type CheckReply struct {
	Decisions []HitReply
}

func (Check) request()    {}
func (CheckReply) reply() {}

// Op returns "check".
func (Check) Op() string { return "check" }

// Allowed reports whether the decisions allow the request: no limit that
// is not Shadow denied.
func (r Check) Allowed(d []HitReply) bool {
	for i, l := range r.Limits {
		if !l.Shadow && i < len(d) && !d[i].Allowed {
			return false
		}
	}
	return true
}

// Charged reports whether the decisions d of r counted the limits' hits:
// always without AllOrNothing, else only when the request is allowed.
func (r Check) Charged(d []HitReply) bool { return !r.AllOrNothing || r.Allowed(d) }

// Validate checks the number of limits and each limit.
func (r Check) Validate() error {
	if len(r.Limits) < 1 || len(r.Limits) > MaxCheckLimits {
		return fmt.Errorf("%w: check: %d limits, want 1..%d", ErrInvalid, len(r.Limits), MaxCheckLimits)
	}
	for i, l := range r.Limits {
		if err := l.Validate(); err != nil {
			return fmt.Errorf("check: limit %d: %w", i, err)
		}
	}
	return nil
}

// Validate checks the limit alone, as Check.Validate does each.
func (l CheckLimit) Validate() error {
	if l.Cost < 1 {
		return fmt.Errorf("%w: cost %d must be at least 1", ErrInvalid, l.Cost)
	}
	if !l.Hammer6 {
		return validate7(l.Policy, l.ID, "cost", l.Cost)
	}
	p := l.Policy
	switch {
	case p.Algorithm != 0 || p.Prefix != "" || p.Rate != 0:
		return fmt.Errorf("%w: a Hammer 6 limit has no algorithm, prefix or rate (the backend's layout names its keys)", ErrInvalid)
	case p.ScaleMs < 1 || p.ScaleMs > MaxScaleMs:
		return fmt.Errorf("%w: Hammer 6 window of %d ms is out of range 1..%d", ErrInvalid, p.ScaleMs, MaxScaleMs)
	case p.Limit < 0 || p.Limit > MaxLevel:
		return fmt.Errorf("%w: Hammer 6 limit %d is out of range 0..%d", ErrInvalid, p.Limit, MaxLevel)
	case l.Cost > MaxLevel:
		return fmt.Errorf("%w: cost %d is out of range 1..%d", ErrInvalid, l.Cost, MaxLevel)
	}
	return validateID(l.ID)
}

// Bucket6 returns a Hammer 6 limit's bucket at nowMs and the ms until it
// ends; Hammer's truncated division, as CountHit's callers compute it.
func (l CheckLimit) Bucket6(nowMs int64) (bucket, msToNext int64) {
	if l.Policy.ScaleMs <= 0 {
		return 0, 0
	}
	bucket = nowMs / l.Policy.ScaleMs
	return bucket, (bucket+1)*l.Policy.ScaleMs - nowMs
}
