package hammerprom_test

import (
	"bufio"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hammer-go/hammerredis"
	hammerprom "github.com/hammer-go/hammerredis/contrib/prometheus"
)

// fixedSource stands in for a *hammerredis.Backend, so that the output is
// the same on every run.
type fixedSource struct{}

func (fixedSource) Stats() hammerredis.Stats {
	var s hammerredis.Stats
	s.Connected = true
	s.Calls.CountHit, s.Calls.GetBucket = 41, 2
	s.Errors.Timeout = 1
	s.Connects = 1
	s.QueueCapacity = 1024
	return s
}

// Register the collector with a registry and serve it with promhttp; here a
// fixed source stands in for the backend, and a recorder for the HTTP
// client.
func ExampleNewCollector() {
	reg := prometheus.NewRegistry()
	reg.MustRegister(hammerprom.NewCollector(fixedSource{}, hammerprom.WithBackendName("ratelimit")))
	handler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})

	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "hammerredis_calls_total") ||
			strings.HasPrefix(line, "hammerredis_connected") ||
			strings.HasPrefix(line, `hammerredis_errors_total{backend="ratelimit",kind="timeout"}`) {
			fmt.Println(line)
		}
	}
	// Output:
	// hammerredis_calls_total{backend="ratelimit",op="count_hit"} 41
	// hammerredis_calls_total{backend="ratelimit",op="delete_buckets"} 0
	// hammerredis_calls_total{backend="ratelimit",op="get_bucket"} 2
	// hammerredis_connected{backend="ratelimit"} 1
	// hammerredis_errors_total{backend="ratelimit",kind="timeout"} 1
}

// With a real backend: a *hammerredis.Backend is a StatsSource. (Not run:
// it needs a Redis server.)
func ExampleNewCollector_backend() {
	b, err := hammerredis.Start(hammerredis.Options{ExpiryMs: 60_000, RedisURL: os.Getenv("REDIS_URL")})
	if err != nil {
		log.Fatal(err)
	}
	defer hammerredis.Stop(b)

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		hammerprom.NewCollector(b, hammerprom.WithBackendName("ratelimit")),
		// The usual process and Go runtime metrics, if wanted.
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	log.Fatal(http.ListenAndServe(":9090", nil))
}
