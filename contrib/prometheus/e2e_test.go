package hammerprom_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hammer-go/hammerredis"
	hammerprom "github.com/hammer-go/hammerredis/contrib/prometheus"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/protocol"
)

// TestBackendEndToEnd scrapes a real backend on a private redis-server.
func TestBackendEndToEnd(t *testing.T) {
	url := redistest.New(t).URL()
	b, err := hammerredis.Start(hammerredis.Options{
		ExpiryMs:  60_000,
		RedisURL:  url,
		KeyPrefix: fmt.Sprintf("T:%s:%d:", t.Name(), time.Now().UnixNano()),
		QueueSize: 16,
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			hammerredis.Stop(b)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.WaitConnected(ctx); err != nil {
		t.Fatalf("waiting for the connection: %v", err)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(hammerprom.NewCollector(b, hammerprom.WithBackendName("e2e")))

	key := hammerredis.BucketKey{Bucket: 1, ID: "user:42"}
	for i := int64(1); i <= 3; i++ {
		n, err := b.CountHit(ctx, key, 1_700_000_000_000)
		if err != nil || n != i {
			t.Fatalf("CountHit %d: %d, %v", i, n, err)
		}
	}
	if info, err := b.GetBucket(ctx, key); err != nil || info == nil {
		t.Fatalf("GetBucket: %v, %v", info, err)
	}
	if _, err := b.DeleteBuckets(ctx, key.ID); err != nil {
		t.Fatalf("DeleteBuckets: %v", err)
	}
	// A rejected call counts as a call and as an "invalid" error.
	long := hammerredis.BucketKey{Bucket: 1, ID: strings.Repeat("x", protocol.MaxIDBytes+1)}
	if _, err := b.GetBucket(ctx, long); !errors.Is(err, hammerredis.ErrInvalid) {
		t.Fatalf("GetBucket with a long id: %v, want ErrInvalid", err)
	}

	want := `
# HELP hammerredis_calls_total Finished calls, whatever their outcome, by operation.
# TYPE hammerredis_calls_total counter
hammerredis_calls_total{backend="e2e",op="count_hit"} 3
hammerredis_calls_total{backend="e2e",op="delete_buckets"} 1
hammerredis_calls_total{backend="e2e",op="get_bucket"} 2
# HELP hammerredis_errors_total Failed calls, by the kind of error.
# TYPE hammerredis_errors_total counter
hammerredis_errors_total{backend="e2e",kind="bad_reply"} 0
hammerredis_errors_total{backend="e2e",kind="canceled"} 0
hammerredis_errors_total{backend="e2e",kind="closed"} 0
hammerredis_errors_total{backend="e2e",kind="disconnected"} 0
hammerredis_errors_total{backend="e2e",kind="invalid"} 1
hammerredis_errors_total{backend="e2e",kind="other"} 0
hammerredis_errors_total{backend="e2e",kind="redis"} 0
hammerredis_errors_total{backend="e2e",kind="stopped"} 0
hammerredis_errors_total{backend="e2e",kind="timeout"} 0
# HELP hammerredis_connected Whether the backend has a working connection to Redis (1) or not (0).
# TYPE hammerredis_connected gauge
hammerredis_connected{backend="e2e"} 1
# HELP hammerredis_queue_capacity How many calls the queue holds.
# TYPE hammerredis_queue_capacity gauge
hammerredis_queue_capacity{backend="e2e"} 16
# HELP hammerredis_queue_depth Calls waiting for the connection.
# TYPE hammerredis_queue_depth gauge
hammerredis_queue_depth{backend="e2e"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"hammerredis_calls_total", "hammerredis_errors_total", "hammerredis_connected",
		"hammerredis_queue_capacity", "hammerredis_queue_depth"); err != nil {
		t.Fatal(err)
	}

	// Connections and latencies depend on timing: check their sense.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != len(metricNames) {
		t.Errorf("gathered %d families, want %d", len(mfs), len(metricNames))
	}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		switch mf.GetName() {
		case "hammerredis_connects_total":
			if v := m.GetCounter().GetValue(); v < 1 {
				t.Errorf("connects_total %v, want at least 1", v)
			}
		case "hammerredis_call_duration_seconds":
			h := m.GetHistogram()
			if h.GetSampleCount() != 6 {
				t.Errorf("call_duration_seconds_count %d, want 6", h.GetSampleCount())
			}
			if s := h.GetSampleSum(); s <= 0 || s > 60 {
				t.Errorf("call_duration_seconds_sum %v, want in (0, 60]", s)
			}
			// 26 power-of-two buckets from 1µs, cumulative, all six calls
			// well under the largest.
			bs := h.GetBucket()
			if len(bs) != 26 {
				t.Fatalf("%d buckets, want 26", len(bs))
			}
			if bs[0].GetUpperBound() != 1e-6 {
				t.Errorf("first bucket le=%v, want 1e-06", bs[0].GetUpperBound())
			}
			for i := 1; i < len(bs); i++ {
				if bs[i].GetUpperBound() != 2*bs[i-1].GetUpperBound() ||
					bs[i].GetCumulativeCount() < bs[i-1].GetCumulativeCount() {
					t.Errorf("bucket %d (le=%v, %d) does not follow bucket %d (le=%v, %d)", i,
						bs[i].GetUpperBound(), bs[i].GetCumulativeCount(),
						i-1, bs[i-1].GetUpperBound(), bs[i-1].GetCumulativeCount())
				}
			}
			if c := bs[len(bs)-1].GetCumulativeCount(); c != 6 {
				t.Errorf("largest bucket holds %d, want 6", c)
			}
		}
	}

	// The same through promhttp, as a Prometheus server scrapes it.
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	body := scrape(t, srv.URL)
	for _, line := range []string{
		`hammerredis_calls_total{backend="e2e",op="count_hit"} 3`,
		`hammerredis_call_duration_seconds_count{backend="e2e"} 6`,
		`hammerredis_connected{backend="e2e"} 1`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("scrape lacks %q:\n%s", line, body)
		}
	}

	// After Stop: disconnected, and calls fail as stopped.
	hammerredis.Stop(b)
	stopped = true
	if _, err := b.CountHit(ctx, key, 1_700_000_000_000); !errors.Is(err, hammerredis.ErrStopped) {
		t.Fatalf("CountHit after Stop: %v, want ErrStopped", err)
	}
	want = `
# HELP hammerredis_connected Whether the backend has a working connection to Redis (1) or not (0).
# TYPE hammerredis_connected gauge
hammerredis_connected{backend="e2e"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hammerredis_connected"); err != nil {
		t.Fatal(err)
	}
	body = scrape(t, srv.URL)
	for _, line := range []string{
		`hammerredis_calls_total{backend="e2e",op="count_hit"} 4`,
		`hammerredis_errors_total{backend="e2e",kind="stopped"} 1`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("scrape lacks %q:\n%s", line, body)
		}
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s, %v:\n%s", resp.Status, err, body)
	}
	return string(body)
}
