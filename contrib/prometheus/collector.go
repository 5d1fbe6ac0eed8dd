package hammerprom

import (
	"maps"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hammer-go/hammerredis"
)

// DefaultNamespace prefixes every metric name unless WithNamespace changes it.
const DefaultNamespace = "hammerredis"

// StatsSource is what a Collector reads: *hammerredis.Backend is one.
type StatsSource interface {
	Stats() hammerredis.Stats
}

// Option configures a Collector.
type Option func(*config)

type config struct {
	namespace   string
	constLabels prometheus.Labels
}

// WithNamespace sets the prefix of every metric name; default
// DefaultNamespace ("hammerredis"). An empty namespace drops the prefix.
func WithNamespace(namespace string) Option {
	return func(c *config) { c.namespace = namespace }
}

// WithBackendName adds the constant label backend="name" to every metric, to
// tell several backends apart in one registry.
func WithBackendName(name string) Option {
	return WithConstLabels(prometheus.Labels{"backend": name})
}

// WithConstLabels adds constant labels to every metric; later options win
// for a label set twice. Labels named "op" or "kind", or invalid names, make
// registering the collector fail.
func WithConstLabels(labels prometheus.Labels) Option {
	return func(c *config) {
		if c.constLabels == nil {
			c.constLabels = prometheus.Labels{}
		}
		maps.Copy(c.constLabels, labels)
	}
}

// Collector is a prometheus.Collector of one backend's Stats. It is safe for
// concurrent scrapes.
type Collector struct {
	src StatsSource

	calls        *prometheus.Desc
	errors       *prometheus.Desc
	connects     *prometheus.Desc
	restarts     *prometheus.Desc
	dialFailures *prometheus.Desc
	connected    *prometheus.Desc
	queueDepth   *prometheus.Desc
	queueCap     *prometheus.Desc
	inAir        *prometheus.Desc
	latency      *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector of src's Stats; register it with a
// prometheus.Registerer. It panics when src is nil.
func NewCollector(src StatsSource, opts ...Option) *Collector {
	if src == nil {
		panic("hammerprom: NewCollector needs a StatsSource")
	}
	cfg := config{namespace: DefaultNamespace}
	for _, o := range opts {
		o(&cfg)
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(cfg.namespace, "", name), help, labels, cfg.constLabels)
	}
	return &Collector{
		src: src,
		calls: desc("calls_total",
			"Finished calls, whatever their outcome, by operation.", "op"),
		errors: desc("errors_total",
			"Failed calls, by the kind of error.", "kind"),
		connects: desc("connects_total",
			"Connections to Redis established."),
		restarts: desc("restarts_total",
			"Connections to Redis lost, each of which restarts the connection."),
		dialFailures: desc("dial_failures_total",
			"Failed attempts to connect to Redis."),
		connected: desc("connected",
			"Whether the backend has a working connection to Redis (1) or not (0)."),
		queueDepth: desc("queue_depth",
			"Calls waiting for the connection."),
		queueCap: desc("queue_capacity",
			"How many calls the queue holds."),
		inAir: desc("in_air",
			"Calls written to Redis and waiting for their replies; 0 whenever the backend is idle."),
		latency: desc("call_duration_seconds",
			"How long calls took as their callers saw them, from the call to its reply or error."),
	}
}

// Describe sends the descriptors of every metric the collector exports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.calls, c.errors, c.connects, c.restarts, c.dialFailures,
		c.connected, c.queueDepth, c.queueCap, c.inAir, c.latency,
	} {
		ch <- d
	}
}

// Collect takes one Stats snapshot and sends every metric from it.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Stats()

	// A descriptor is only invalid with bad constant labels, which fail the
	// registration; a direct Collect reports them as invalid metrics.
	send := func(d *prometheus.Desc, m prometheus.Metric, err error) {
		if err != nil {
			m = prometheus.NewInvalidMetric(d, err)
		}
		ch <- m
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		m, err := prometheus.NewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
		send(d, m, err)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v)
		send(d, m, err)
	}

	counter(c.calls, s.Calls.CountHit, "count_hit")
	counter(c.calls, s.Calls.GetBucket, "get_bucket")
	counter(c.calls, s.Calls.DeleteBuckets, "delete_buckets")

	e := s.Errors
	counter(c.errors, e.Closed, "closed")
	counter(c.errors, e.Disconnected, "disconnected")
	counter(c.errors, e.Timeout, "timeout")
	counter(c.errors, e.Canceled, "canceled")
	counter(c.errors, e.Stopped, "stopped")
	counter(c.errors, e.Invalid, "invalid")
	counter(c.errors, e.Redis, "redis")
	counter(c.errors, e.BadReply, "bad_reply")
	counter(c.errors, e.Other, "other")

	counter(c.connects, s.Connects)
	counter(c.restarts, s.Restarts)
	counter(c.dialFailures, s.DialFailures)

	connected := 0.0
	if s.Connected {
		connected = 1
	}
	gauge(c.connected, connected)
	gauge(c.queueDepth, float64(s.QueueDepth))
	gauge(c.queueCap, float64(s.QueueCapacity))
	gauge(c.inAir, float64(s.InAir))

	h := s.Latency
	buckets := make(map[float64]uint64, len(h.Buckets))
	for _, b := range h.Buckets {
		buckets[b.UpperBound.Seconds()] = b.Count
	}
	m, err := prometheus.NewConstHistogram(c.latency, h.Count, h.Sum.Seconds(), buckets)
	send(c.latency, m, err)
}
