package hammerotel_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"slices"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/hammer-go/hammerredis"
	hammerotel "github.com/hammer-go/hammerredis/contrib/otel"
	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/memory"
)

// Give the Metrics to a Checker as its Observer, and collect. Here a
// manual reader collects, and the memory backend stands in for
// hammerredis.Start(...); a service would give New its MeterProvider, with
// an OTLP or Prometheus exporter as its reader.
func Example() {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(context.Background())

	metrics, err := hammerotel.New(provider)
	if err != nil {
		log.Fatal(err)
	}
	backend, _ := memory.New(memory.Options{ExpiryMs: 60_000})
	defer backend.Close()
	checker, err := hammer.NewChecker(backend, hammer.Config{
		Limits: []hammer.Limit{
			{Name: "per-second", Scale: time.Second, Max: 2},
			{Name: "per-minute-dry-run", Scale: time.Minute, Max: 1, Shadow: true},
		},
		Observer: metrics,
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := metrics.ObserveChecker("api", checker); err != nil {
		log.Fatal(err)
	}
	checker = checker.WithClock(func() time.Time { return time.UnixMilli(1_700_000_000_000) })
	for range 3 {
		checker.Check(context.Background(), "api-key:abc")
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	var lines []string
	for _, m := range rm.ScopeMetrics[0].Metrics {
		switch data := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, p := range data.DataPoints {
				limit, _ := p.Attributes.Value(hammerotel.LimitKey)
				outcome, _ := p.Attributes.Value(hammerotel.OutcomeKey)
				degraded, _ := p.Attributes.Value(hammerotel.DegradedKey)
				lines = append(lines, fmt.Sprintf("%s limit=%s outcome=%s degraded=%t: %d",
					m.Name, limit.AsString(), outcome.AsString(), degraded.AsBool(), p.Value))
			}
		case metricdata.Gauge[int64]:
			checker, _ := data.DataPoints[0].Attributes.Value(hammerotel.CheckerKey)
			lines = append(lines, fmt.Sprintf("%s checker=%s: %d", m.Name, checker.AsString(), data.DataPoints[0].Value))
		case metricdata.Histogram[float64]:
			lines = append(lines, fmt.Sprintf("%s: %d calls", m.Name, data.DataPoints[0].Count))
		}
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// hammerredis.backend.call.duration: 3 calls
	// hammerredis.checker.degraded checker=api: 0
	// hammerredis.decisions limit=per-minute-dry-run outcome=allowed degraded=false: 1
	// hammerredis.decisions limit=per-minute-dry-run outcome=shadow_denied degraded=false: 2
	// hammerredis.decisions limit=per-second outcome=allowed degraded=false: 2
	// hammerredis.decisions limit=per-second outcome=denied degraded=false: 1
}

// The whole wiring of a service: a Redis backend, a memory fallback for
// degraded mode, and the global MeterProvider (set up elsewhere with
// otel.SetMeterProvider). Not run: it needs a Redis server.
func ExampleNew_backend() {
	backend, err := hammerredis.Start(hammerredis.Options{ExpiryMs: 3_600_000, RedisURL: os.Getenv("REDIS_URL")})
	if err != nil {
		log.Fatal(err)
	}
	defer hammerredis.Stop(backend)
	fallback, _ := memory.New(memory.Options{ExpiryMs: 3_600_000})
	defer fallback.Close()

	metrics, err := hammerotel.New(nil) // otel.GetMeterProvider()
	if err != nil {
		log.Fatal(err)
	}
	checker, err := hammer.NewChecker(backend, hammer.Config{
		Limits: []hammer.Limit{
			{Name: "per-second", Scale: time.Second, Max: 10},
			{Name: "per-hour", Scale: time.Hour, Max: 1000},
		},
		Fallback:      fallback,
		FallbackShare: 0.25, // four instances
		Observer:      metrics,
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := metrics.ObserveChecker("api", checker); err != nil {
		log.Fatal(err)
	}
	if _, err := metrics.ObserveBackend("ratelimit", backend); err != nil {
		log.Fatal(err)
	}

	d, err := checker.Check(context.Background(), "api-key:abc")
	if err != nil {
		log.Fatal(err) // no fallback could decide: fail open or closed
	}
	fmt.Println(d.Allowed)
}
