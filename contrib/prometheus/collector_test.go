package hammerprom_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/hammer-go/hammerredis"
	hammerprom "github.com/hammer-go/hammerredis/contrib/prometheus"
	"github.com/hammer-go/hammerredis/protocol"
)

// stub is a StatsSource returning fixed Stats and counting its snapshots.
type stub struct {
	stats hammerredis.Stats
	calls atomic.Int64
}

func (s *stub) Stats() hammerredis.Stats {
	s.calls.Add(1)
	return s.stats
}

// fixedStats has a distinct value in every field, and a short histogram:
// 1µs, 2µs, 4µs; one call longer than 4µs counts only in Count.
func fixedStats() hammerredis.Stats {
	var s hammerredis.Stats
	s.Connected = true
	s.Calls.CountHit, s.Calls.GetBucket, s.Calls.DeleteBuckets = 7, 3, 2
	s.Errors.Closed = 1
	s.Errors.Disconnected = 2
	s.Errors.Timeout = 3
	s.Errors.Canceled = 4
	s.Errors.Stopped = 5
	s.Errors.Invalid = 6
	s.Errors.Redis = 7
	s.Errors.BadReply = 8
	s.Errors.Other = 9
	s.Connects, s.Restarts, s.DialFailures = 4, 3, 11
	s.QueueDepth, s.QueueCapacity = 5, 1024
	s.InAir = 13
	s.Latency.Count = 12
	s.Latency.Sum = 1500 * time.Millisecond
	s.Latency.Buckets = []protocol.Bucket{
		{UpperBound: time.Microsecond, Count: 2},
		{UpperBound: 2 * time.Microsecond, Count: 9},
		{UpperBound: 4 * time.Microsecond, Count: 11},
	}
	return s
}

const expected = `
# HELP hammerredis_call_duration_seconds How long calls took as their callers saw them, from the call to its reply or error.
# TYPE hammerredis_call_duration_seconds histogram
hammerredis_call_duration_seconds_bucket{le="1e-06"} 2
hammerredis_call_duration_seconds_bucket{le="2e-06"} 9
hammerredis_call_duration_seconds_bucket{le="4e-06"} 11
hammerredis_call_duration_seconds_bucket{le="+Inf"} 12
hammerredis_call_duration_seconds_sum 1.5
hammerredis_call_duration_seconds_count 12
# HELP hammerredis_calls_total Finished calls, whatever their outcome, by operation.
# TYPE hammerredis_calls_total counter
hammerredis_calls_total{op="count_hit"} 7
hammerredis_calls_total{op="delete_buckets"} 2
hammerredis_calls_total{op="get_bucket"} 3
# HELP hammerredis_connected Whether the backend has a working connection to Redis (1) or not (0).
# TYPE hammerredis_connected gauge
hammerredis_connected 1
# HELP hammerredis_connects_total Connections to Redis established.
# TYPE hammerredis_connects_total counter
hammerredis_connects_total 4
# HELP hammerredis_dial_failures_total Failed attempts to connect to Redis.
# TYPE hammerredis_dial_failures_total counter
hammerredis_dial_failures_total 11
# HELP hammerredis_errors_total Failed calls, by the kind of error.
# TYPE hammerredis_errors_total counter
hammerredis_errors_total{kind="bad_reply"} 8
hammerredis_errors_total{kind="canceled"} 4
hammerredis_errors_total{kind="closed"} 1
hammerredis_errors_total{kind="disconnected"} 2
hammerredis_errors_total{kind="invalid"} 6
hammerredis_errors_total{kind="other"} 9
hammerredis_errors_total{kind="redis"} 7
hammerredis_errors_total{kind="stopped"} 5
hammerredis_errors_total{kind="timeout"} 3
# HELP hammerredis_in_air Calls written to Redis and waiting for their replies; 0 whenever the backend is idle.
# TYPE hammerredis_in_air gauge
hammerredis_in_air 13
# HELP hammerredis_queue_capacity How many calls the queue holds.
# TYPE hammerredis_queue_capacity gauge
hammerredis_queue_capacity 1024
# HELP hammerredis_queue_depth Calls waiting for the connection.
# TYPE hammerredis_queue_depth gauge
hammerredis_queue_depth 5
# HELP hammerredis_restarts_total Connections to Redis lost, each of which restarts the connection.
# TYPE hammerredis_restarts_total counter
hammerredis_restarts_total 3
`

// metricNames are the names of every metric family, default namespace.
var metricNames = []string{
	"hammerredis_calls_total",
	"hammerredis_errors_total",
	"hammerredis_connects_total",
	"hammerredis_restarts_total",
	"hammerredis_dial_failures_total",
	"hammerredis_connected",
	"hammerredis_queue_depth",
	"hammerredis_queue_capacity",
	"hammerredis_in_air",
	"hammerredis_call_duration_seconds",
}

func TestCollectorExportsEveryField(t *testing.T) {
	c := hammerprom.NewCollector(&stub{stats: fixedStats()})
	if err := testutil.CollectAndCompare(c, strings.NewReader(expected)); err != nil {
		t.Fatal(err)
	}
}

func TestCollectorExportsNoOtherMetric(t *testing.T) {
	c := hammerprom.NewCollector(&stub{stats: fixedStats()})
	// Without names CollectAndCompare compares every family; with them it
	// must find the same ones.
	if err := testutil.CollectAndCompare(c, strings.NewReader(expected), metricNames...); err != nil {
		t.Fatal(err)
	}
	// 3 ops + 9 kinds + 3 counters + 4 gauges + 1 histogram.
	if n := testutil.CollectAndCount(c); n != 20 {
		t.Fatalf("collected %d metrics, want 20", n)
	}
}

func TestCollectorIsLintClean(t *testing.T) {
	for _, s := range []hammerredis.Stats{fixedStats(), {}} {
		problems, err := testutil.CollectAndLint(hammerprom.NewCollector(&stub{stats: s}))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

func TestCollectorTakesOneSnapshotPerScrape(t *testing.T) {
	src := &stub{stats: fixedStats()}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(hammerprom.NewCollector(src))
	if got := src.calls.Load(); got != 0 {
		t.Fatalf("registering took %d snapshots, want 0", got)
	}
	for i := 1; i <= 3; i++ {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if len(mfs) != len(metricNames) {
			t.Fatalf("gathered %d families, want %d", len(mfs), len(metricNames))
		}
		if got := src.calls.Load(); got != int64(i) {
			t.Fatalf("after %d scrapes: %d snapshots", i, got)
		}
	}
}

func TestDescribeListsEveryCollectedDescriptor(t *testing.T) {
	c := hammerprom.NewCollector(&stub{stats: fixedStats()})
	descCh := make(chan *prometheus.Desc, 100)
	c.Describe(descCh)
	close(descCh)
	described := map[string]bool{}
	for d := range descCh {
		described[d.String()] = true
	}
	if len(described) != len(metricNames) {
		t.Fatalf("described %d descriptors, want %d: %v", len(described), len(metricNames), described)
	}
	for _, name := range metricNames {
		found := false
		for d := range described {
			if strings.Contains(d, `fqName: "`+name+`"`) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s is not described", name)
		}
	}
	metricCh := make(chan prometheus.Metric, 100)
	c.Collect(metricCh)
	close(metricCh)
	for m := range metricCh {
		if !described[m.Desc().String()] {
			t.Errorf("collected %s, which Describe does not list", m.Desc())
		}
	}
}

func TestZeroStats(t *testing.T) {
	// A source with no observations, not even buckets, exports zeros.
	c := hammerprom.NewCollector(&stub{})
	want := `
# HELP hammerredis_call_duration_seconds How long calls took as their callers saw them, from the call to its reply or error.
# TYPE hammerredis_call_duration_seconds histogram
hammerredis_call_duration_seconds_bucket{le="+Inf"} 0
hammerredis_call_duration_seconds_sum 0
hammerredis_call_duration_seconds_count 0
# HELP hammerredis_connected Whether the backend has a working connection to Redis (1) or not (0).
# TYPE hammerredis_connected gauge
hammerredis_connected 0
# HELP hammerredis_calls_total Finished calls, whatever their outcome, by operation.
# TYPE hammerredis_calls_total counter
hammerredis_calls_total{op="count_hit"} 0
hammerredis_calls_total{op="delete_buckets"} 0
hammerredis_calls_total{op="get_bucket"} 0
`
	err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"hammerredis_call_duration_seconds", "hammerredis_connected", "hammerredis_calls_total")
	if err != nil {
		t.Fatal(err)
	}
}

func TestNamespaceAndConstLabels(t *testing.T) {
	a := hammerprom.NewCollector(&stub{stats: fixedStats()},
		hammerprom.WithNamespace("app"),
		hammerprom.WithBackendName("a"),
		hammerprom.WithConstLabels(prometheus.Labels{"zone": "eu"}))
	b := hammerprom.NewCollector(&stub{},
		hammerprom.WithNamespace("app"),
		hammerprom.WithConstLabels(prometheus.Labels{"zone": "eu"}),
		hammerprom.WithBackendName("b"))
	// Both in one registry: the backend label tells them apart.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(a, b)
	want := `
# HELP app_connects_total Connections to Redis established.
# TYPE app_connects_total counter
app_connects_total{backend="a",zone="eu"} 4
app_connects_total{backend="b",zone="eu"} 0
# HELP app_calls_total Finished calls, whatever their outcome, by operation.
# TYPE app_calls_total counter
app_calls_total{backend="a",op="count_hit",zone="eu"} 7
app_calls_total{backend="a",op="delete_buckets",zone="eu"} 2
app_calls_total{backend="a",op="get_bucket",zone="eu"} 3
app_calls_total{backend="b",op="count_hit",zone="eu"} 0
app_calls_total{backend="b",op="delete_buckets",zone="eu"} 0
app_calls_total{backend="b",op="get_bucket",zone="eu"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "app_connects_total", "app_calls_total"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 40 {
		t.Fatalf("gathered %d metrics (%v), want 40", n, err)
	}
}

func TestEmptyNamespace(t *testing.T) {
	c := hammerprom.NewCollector(&stub{stats: fixedStats()}, hammerprom.WithNamespace(""))
	want := `
# HELP queue_depth Calls waiting for the connection.
# TYPE queue_depth gauge
queue_depth 5
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "queue_depth"); err != nil {
		t.Fatal(err)
	}
}

func TestConstLabelsDoNotAlias(t *testing.T) {
	// The collector copies the labels it is given.
	labels := prometheus.Labels{"backend": "a"}
	c := hammerprom.NewCollector(&stub{}, hammerprom.WithConstLabels(labels))
	labels["backend"] = "changed"
	want := `
# HELP hammerredis_connected Whether the backend has a working connection to Redis (1) or not (0).
# TYPE hammerredis_connected gauge
hammerredis_connected{backend="a"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "hammerredis_connected"); err != nil {
		t.Fatal(err)
	}
}

func TestBadConstLabelsFailRegistration(t *testing.T) {
	for _, name := range []string{"op", "kind", "__reserved"} {
		c := hammerprom.NewCollector(&stub{}, hammerprom.WithConstLabels(prometheus.Labels{name: "x"}))
		if err := prometheus.NewRegistry().Register(c); err == nil {
			t.Errorf("const label %q: registered, want an error", name)
		}
		// Collecting it directly reports the bad descriptors as invalid
		// metrics rather than panicking.
		ch := make(chan prometheus.Metric, 100)
		c.Collect(ch)
		close(ch)
		invalid := 0
		for m := range ch {
			if err := m.Write(&dto.Metric{}); err != nil {
				invalid++
			}
		}
		if invalid == 0 {
			t.Errorf("const label %q: every metric wrote without an error", name)
		}
	}
}

func TestNilSourcePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewCollector(nil) did not panic")
		}
	}()
	hammerprom.NewCollector(nil)
}

func TestBackendIsAStatsSource(t *testing.T) {
	var _ hammerprom.StatsSource = (*hammerredis.Backend)(nil)
}
