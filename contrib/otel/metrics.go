package hammerotel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/hammer"
)

// ScopeName is the instrumentation scope (the meter's name) of every
// instrument.
const ScopeName = "github.com/hammer-go/hammerredis/contrib/otel"

// The instruments' names.
const (
	DecisionsName       = "hammerredis.decisions"
	CallDurationName    = "hammerredis.backend.call.duration"
	CheckerDegradedName = "hammerredis.checker.degraded"
	ConnectedName       = "hammerredis.backend.connected"
	QueueDepthName      = "hammerredis.backend.queue.depth"
	QueueCapacityName   = "hammerredis.backend.queue.capacity"
	CallsName           = "hammerredis.backend.calls"
	ErrorsName          = "hammerredis.backend.errors"
)

// The attributes' keys.
const (
	// LimitKey is a decision's limit: its hammer.Limit.Name.
	LimitKey = attribute.Key("limit")
	// OutcomeKey is a decision's hammer.Outcome: "allowed", "denied",
	// "shadow_denied" or "error".
	OutcomeKey = attribute.Key("outcome")
	// DegradedKey tells a decision that hammer.Config.Fallback made.
	DegradedKey = attribute.Key("degraded")
	// ErrorTypeKey is the kind of a failed call's error (OpenTelemetry's
	// error.type); a call that succeeded has none.
	ErrorTypeKey = attribute.Key("error.type")
	// CheckerKey names a Checker given to ObserveChecker.
	CheckerKey = attribute.Key("checker")
	// BackendKey names a backend given to ObserveBackend.
	BackendKey = attribute.Key("backend")
	// OpKey is an operation of a backend: "count_hit", "get_bucket",
	// "delete_buckets", "hit", "inc", "set", "get" or "check".
	OpKey = attribute.Key("op")
)

// DefaultLatencyBuckets are the bucket boundaries, in seconds, that the
// call duration histogram advises: fine below a millisecond, where a Redis
// call on a local network lands, then coarser up to the timeouts. An SDK
// View can replace them.
var DefaultLatencyBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
}

// DefaultMaxLimitNames is how many distinct limit names a Metrics labels
// decisions by, unless WithMaxLimitNames changes it.
const DefaultMaxLimitNames = 256

// OtherLimit is the limit attribute of the decisions of every limit name
// past the WithMaxLimitNames first.
const OtherLimit = "_other"

// Option configures a Metrics.
type Option func(*config)

type config struct {
	attrs    []attribute.KeyValue
	maxNames int
}

// WithAttributes adds constant attributes to every measurement (to tell
// several services or checkers apart); the package's own keys win over
// them.
func WithAttributes(attrs ...attribute.KeyValue) Option {
	return func(c *config) { c.attrs = append(c.attrs, attrs...) }
}

// WithMaxLimitNames bounds the distinct values of the limit attribute to
// n (default DefaultMaxLimitNames): the decisions of any further name are
// labelled OtherLimit. A guard against limit names made from request data,
// which hammer.Limit forbids.
func WithMaxLimitNames(n int) Option {
	return func(c *config) { c.maxNames = n }
}

// Metrics records what hammer.Checkers do as OpenTelemetry metrics: it is
// their hammer.Observer (hammer.Config.Observer), and it exports the state
// of checkers and backends given to ObserveChecker and ObserveBackend. It
// is safe for concurrent use; one Metrics can serve several Checkers.
type Metrics struct {
	meter    metric.Meter
	attrs    []attribute.KeyValue
	maxNames int

	decisions metric.Int64Counter
	latency   metric.Float64Histogram
	callOpts  [numKinds][]metric.RecordOption // by errorKind

	// names maps a limit name to its options, copied on write: Decided
	// reads it without a lock and without allocating.
	names   atomic.Pointer[map[string]*limitOpts]
	other   atomic.Pointer[limitOpts] // OtherLimit's, once names is full
	namesMu sync.Mutex                // serializes the writers of names and other

	degraded                             metric.Int64ObservableGauge
	connected, queueDepth, queueCapacity metric.Int64ObservableGauge
	calls, errors                        metric.Int64ObservableCounter
}

var _ hammer.Observer = (*Metrics)(nil)

// limitOpts holds one limit's measurement options, by outcome (0 for an
// unknown one) and degraded.
type limitOpts [len(outcomes)][2][]metric.AddOption

// outcomes are the values of the outcome attribute, by hammer.Outcome.
var outcomes = [...]string{
	0:                   "unknown",
	hammer.Allowed:      hammer.Allowed.String(),
	hammer.Denied:       hammer.Denied.String(),
	hammer.ShadowDenied: hammer.ShadowDenied.String(),
	hammer.Error:        hammer.Error.String(),
}

// New returns a Metrics whose instruments come from mp's meter ScopeName;
// a nil mp means the global otel.GetMeterProvider(). Its errors are those
// of the instruments' creation.
func New(mp metric.MeterProvider, opts ...Option) (*Metrics, error) {
	cfg := config{maxNames: DefaultMaxLimitNames}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxNames < 0 {
		return nil, fmt.Errorf("%w: hammerotel: WithMaxLimitNames(%d) is negative", hammerredis.ErrInvalid, cfg.maxNames)
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := &Metrics{meter: mp.Meter(ScopeName), attrs: cfg.attrs, maxNames: cfg.maxNames}
	m.names.Store(&map[string]*limitOpts{})
	var errs []error
	keep := func(err error) {
		errs = append(errs, err)
	}
	var err error
	m.decisions, err = m.meter.Int64Counter(DecisionsName, metric.WithUnit("{decision}"),
		metric.WithDescription("Decisions of rate limits, by limit, outcome and degraded mode."))
	keep(err)
	m.latency, err = m.meter.Float64Histogram(CallDurationName, metric.WithUnit("s"),
		metric.WithDescription("Duration of a checker's calls to its backend (Redis), by error kind."),
		metric.WithExplicitBucketBoundaries(DefaultLatencyBuckets...))
	keep(err)
	m.degraded, err = m.meter.Int64ObservableGauge(CheckerDegradedName, metric.WithUnit("1"),
		metric.WithDescription("Whether a checker limits in process (1) because its backend failed, or not (0)."))
	keep(err)
	m.connected, err = m.meter.Int64ObservableGauge(ConnectedName, metric.WithUnit("1"),
		metric.WithDescription("Whether a backend has a working connection to Redis (1) or not (0)."))
	keep(err)
	m.queueDepth, err = m.meter.Int64ObservableGauge(QueueDepthName, metric.WithUnit("{call}"),
		metric.WithDescription("Calls waiting for a backend's connection."))
	keep(err)
	m.queueCapacity, err = m.meter.Int64ObservableGauge(QueueCapacityName, metric.WithUnit("{call}"),
		metric.WithDescription("How many calls a backend's queue holds."))
	keep(err)
	m.calls, err = m.meter.Int64ObservableCounter(CallsName, metric.WithUnit("{call}"),
		metric.WithDescription("A backend's finished calls, whatever their outcome, by operation."))
	keep(err)
	m.errors, err = m.meter.Int64ObservableCounter(ErrorsName, metric.WithUnit("{call}"),
		metric.WithDescription("A backend's failed calls, by error kind."))
	keep(err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("hammerotel: %w", err)
	}
	for k := range m.callOpts {
		var set attribute.Set
		if errorKind(k) == kindNone {
			set = m.set()
		} else {
			set = m.set(ErrorTypeKey.String(errorKind(k).String()))
		}
		m.callOpts[k] = []metric.RecordOption{metric.WithAttributeSet(set)}
	}
	return m, nil
}

// set returns the attribute set of kv and the constant attributes; kv wins.
func (m *Metrics) set(kv ...attribute.KeyValue) attribute.Set {
	// NewSet keeps the last value of a key.
	all := append(append(make([]attribute.KeyValue, 0, len(m.attrs)+len(kv)), m.attrs...), kv...)
	return attribute.NewSet(all...)
}

// Decided counts one limit's decision (hammer.Observer). It does not
// allocate once the limit's name has been seen.
func (m *Metrics) Decided(ctx context.Context, limit string, outcome hammer.Outcome, degraded bool) {
	o := int(outcome)
	if o >= len(outcomes) {
		o = 0
	}
	d := 0
	if degraded {
		d = 1
	}
	m.decisions.Add(ctx, 1, m.limitOpts(limit)[o][d]...)
}

// limitOpts returns the options of limit, building them on its first use.
func (m *Metrics) limitOpts(limit string) *limitOpts {
	if lo, ok := (*m.names.Load())[limit]; ok {
		return lo
	}
	if lo := m.other.Load(); lo != nil {
		return lo // the names are full: a new one is not looked at again
	}
	m.namesMu.Lock()
	defer m.namesMu.Unlock()
	old := *m.names.Load()
	if lo, ok := old[limit]; ok {
		return lo
	}
	if lo := m.other.Load(); lo != nil {
		return lo
	}
	if len(old) >= m.maxNames {
		lo := m.newLimitOpts(OtherLimit)
		m.other.Store(lo)
		return lo
	}
	lo := m.newLimitOpts(limit)
	names := make(map[string]*limitOpts, len(old)+1)
	for k, v := range old {
		names[k] = v
	}
	names[limit] = lo
	m.names.Store(&names)
	return lo
}

// newLimitOpts builds the options of the limit attribute value.
func (m *Metrics) newLimitOpts(value string) *limitOpts {
	lo := new(limitOpts)
	for o := range lo {
		for d := range lo[o] {
			lo[o][d] = []metric.AddOption{metric.WithAttributeSet(m.set(
				LimitKey.String(value), OutcomeKey.String(outcomes[o]), DegradedKey.Bool(d == 1)))}
		}
	}
	return lo
}

// BackendCall records one backend call's duration, by its error's kind
// (hammer.Observer). It does not allocate.
func (m *Metrics) BackendCall(ctx context.Context, d time.Duration, err error) {
	m.latency.Record(ctx, d.Seconds(), m.callOpts[kindOf(err)]...)
}
