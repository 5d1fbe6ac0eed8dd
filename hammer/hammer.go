// Package hammer is the rate-checking layer of Elixir's Hammer 6 on top of
// any hammerredis-style backend: fixed windows aligned to the Unix epoch,
// counted in a shared backend.
//
// # Rules
//
// CheckRate(id, scale, limit) takes now in ms, picks the bucket now/scale,
// counts one hit there, and allows the request while the bucket's count is
// at most limit. The hit is counted even when it is denied, as in Hammer, so
// a client that keeps retrying stays denied until the window ends.
// CheckRateInc counts several hits at once. InspectBucket reads the current
// window without counting. DeleteBuckets resets an id.
//
// # Backends
//
// A [Backend] is what *hammerredis.Backend offers: the Redis backend for
// limits shared by many instances, or package memory's backend for one
// process and for tests. Being rate limited is a normal [Result], not an
// error; errors come from the backend (Redis unreachable, a timeout) or from
// invalid arguments (protocol.ErrInvalid, which is hammerredis.ErrInvalid).
//
// # Several limits
//
// A [Checker] checks one request against several named limits at once
// (say 10 a second and 1000 an hour per API key, plus 100 a second per
// IP), in one round trip per Redis node: each [Limit] is a Hammer 6 fixed
// window (Scale and Max) or a Hammer 7 policy (package hammer7), with a key
// of its own or one key for all. By default every limit counts each
// request by its own rules, as Hammer does; with Config.AllOrNothing, a
// request that one limit denies is counted by none, so a client stopped by
// the narrow limit does not use up the broad one. The [Decision] says
// whether the request may go on and, for each limit, what the RateLimit
// header fields tell (quota, window, remaining, reset, retry after). On a
// Redis Cluster, an all-or-nothing check needs every key in one slot (a
// hash tag in the ids, such as "{api-key-42}"); a check without it is split
// per slot and counted on each master.
//
// # Shadow limits
//
// A Limit with Shadow set is counted and reported (its LimitResult,
// headers, metrics, and a log line a second at most) but never denies a
// request, nor keeps the others from counting it: the dry run of a new
// limit before it bites.
//
// # Degraded mode
//
// With Config.Fallback (usually a *memory.Backend), a Checker whose backend
// fails, or takes longer than Config.FallbackAfter, decides in process at
// Config.FallbackShare of every limit, and says so (Decision.Degraded,
// Checker.Degraded, the log, the Observer). While degraded it tries the
// backend again with one request every Config.ProbeEvery (when the backend
// reports a connection), and hands back to it after the first that
// succeeds. Without a Fallback the backend's errors are returned, and the
// caller fails open or closed.
//
// # Metrics
//
// Config.Observer receives every limit's outcome (allowed, denied,
// shadow_denied, error; degraded or not) and every backend call's duration
// and error; contrib/otel records them as OpenTelemetry metrics.
//
// # Time
//
// The clock is a parameter: [Limiter.WithClock] and [Checker.WithClock]
// replace time.Now, so tests can step time across windows.
package hammer

import (
	"context"
	"fmt"
	"time"

	"github.com/hammer-go/hammerredis/protocol"
)

// Backend counts hits in buckets. *hammerredis.Backend and
// *memory.Backend implement it. Its types are package protocol's, which
// package hammerredis re-exports (hammerredis.BucketKey is
// protocol.BucketKey), so this package does not depend on the Redis client.
type Backend interface {
	CountHit(ctx context.Context, key protocol.BucketKey, now int64) (int64, error)
	CountHitN(ctx context.Context, key protocol.BucketKey, now, increment int64) (int64, error)
	GetBucket(ctx context.Context, key protocol.BucketKey) (*protocol.BucketInfo, error)
	DeleteBuckets(ctx context.Context, id string) (int64, error)
}

// Limiter checks rates against a backend. It is safe for concurrent use.
type Limiter struct {
	backend Backend
	now     func() time.Time
}

// New returns a limiter counting in b.
func New(b Backend) *Limiter { return &Limiter{backend: b, now: time.Now} }

// WithClock returns a copy of l that reads the time from now instead of
// time.Now.
func (l *Limiter) WithClock(now func() time.Time) *Limiter {
	c := *l
	c.now = now
	return &c
}

// Result is the outcome of a rate check.
type Result struct {
	// Allowed reports whether the request is within the limit.
	Allowed bool
	// Count is the window's count after this check's hits. Hammer returns
	// it as {:allow, count}; on a deny, Hammer returns the limit instead.
	Count int64
	// Limit is the limit checked against.
	Limit int64
	// Remaining is how many more hits the window allows: max(Limit-Count, 0).
	Remaining int64
	// Reset is when the current window ends and a new one starts.
	Reset time.Time
	// ResetAfter is Reset minus the time of the check: how long a denied
	// client should wait (the Retry-After).
	ResetAfter time.Duration
}

// Inspection is the state of an id's current window; Hammer's
// inspect_bucket.
type Inspection struct {
	// Count is the window's count; 0 when there is no bucket.
	Count int64
	// Remaining is max(limit-Count, 0).
	Remaining int64
	// MsToNextBucket is how many ms remain until the next window.
	MsToNextBucket int64
	// Exists reports whether the window has a bucket; Created and Updated
	// are meaningful only then (Hammer: nil otherwise).
	Exists bool
	// Created is the now, in ms since the Unix epoch, of the window's first
	// hit.
	Created int64
	// Updated is the now, in ms since the Unix epoch, of its latest hit.
	Updated int64
}

// window validates scale and returns it in ms, with the bucket and the
// ms until the next bucket at nowMs.
func window(scale time.Duration, nowMs int64) (scaleMs, bucket, msToNext int64, err error) {
	if scale < time.Millisecond || scale%time.Millisecond != 0 {
		return 0, 0, 0, fmt.Errorf("%w: scale %v must be a whole number of milliseconds, at least 1ms", protocol.ErrInvalid, scale)
	}
	scaleMs = scale.Milliseconds()
	bucket = nowMs / scaleMs // Elixir's div: truncated, as Hammer computes it
	return scaleMs, bucket, (bucket+1)*scaleMs - nowMs, nil
}

func checkLimit(limit int64) error {
	if limit < 0 {
		return fmt.Errorf("%w: limit %d must not be negative", protocol.ErrInvalid, limit)
	}
	return nil
}

// CheckRate counts one hit for id in the current window of length scale and
// reports whether the window's count is within limit. Hammer's check_rate.
func (l *Limiter) CheckRate(ctx context.Context, id string, scale time.Duration, limit int64) (Result, error) {
	return l.CheckRateInc(ctx, id, scale, limit, 1)
}

// CheckRateInc counts increment hits at once; Hammer's check_rate_inc. The
// increment must be at least 1.
func (l *Limiter) CheckRateInc(ctx context.Context, id string, scale time.Duration, limit, increment int64) (Result, error) {
	if increment < 1 {
		return Result{}, fmt.Errorf("%w: increment %d must be at least 1", protocol.ErrInvalid, increment)
	}
	if err := checkLimit(limit); err != nil {
		return Result{}, err
	}
	now := l.now()
	nowMs := now.UnixMilli()
	_, bucket, msToNext, err := window(scale, nowMs)
	if err != nil {
		return Result{}, err
	}
	count, err := l.backend.CountHitN(ctx, protocol.BucketKey{Bucket: bucket, ID: id}, nowMs, increment)
	if err != nil {
		return Result{}, err
	}
	resetAfter := time.Duration(msToNext) * time.Millisecond
	return Result{
		Allowed:    count <= limit,
		Count:      count,
		Limit:      limit,
		Remaining:  max(limit-count, 0),
		Reset:      time.UnixMilli(nowMs).Add(resetAfter),
		ResetAfter: resetAfter,
	}, nil
}

// InspectBucket reads id's current window without counting a hit; Hammer's
// inspect_bucket.
func (l *Limiter) InspectBucket(ctx context.Context, id string, scale time.Duration, limit int64) (Inspection, error) {
	if err := checkLimit(limit); err != nil {
		return Inspection{}, err
	}
	nowMs := l.now().UnixMilli()
	_, bucket, msToNext, err := window(scale, nowMs)
	if err != nil {
		return Inspection{}, err
	}
	info, err := l.backend.GetBucket(ctx, protocol.BucketKey{Bucket: bucket, ID: id})
	if err != nil {
		return Inspection{}, err
	}
	if info == nil {
		return Inspection{Remaining: limit, MsToNextBucket: msToNext}, nil
	}
	return Inspection{
		Count:          info.Count,
		Remaining:      max(limit-info.Count, 0),
		MsToNextBucket: msToNext,
		Exists:         true,
		Created:        info.Created,
		Updated:        info.Updated,
	}, nil
}

// DeleteBuckets deletes every bucket of id, resetting its limits, and
// returns how many buckets went; Hammer's delete_buckets.
func (l *Limiter) DeleteBuckets(ctx context.Context, id string) (int64, error) {
	return l.backend.DeleteBuckets(ctx, id)
}

// MakeRateChecker returns a function that checks idPrefix+id against scale
// and limit; Hammer's make_rate_checker.
func (l *Limiter) MakeRateChecker(idPrefix string, scale time.Duration, limit int64) func(ctx context.Context, id string) (Result, error) {
	return func(ctx context.Context, id string) (Result, error) {
		return l.CheckRate(ctx, idPrefix+id, scale, limit)
	}
}
