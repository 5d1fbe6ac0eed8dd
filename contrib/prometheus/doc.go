// Package hammerprom exports the counters of a hammerredis backend as
// Prometheus metrics.
//
// It lives in its own Go module, so that the backend itself does not depend
// on the Prometheus client:
//
//	import hammerprom "github.com/hammer-go/hammerredis/contrib/prometheus"
//
//	b, err := hammerredis.Start(opts)
//	...
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(hammerprom.NewCollector(b, hammerprom.WithBackendName("ratelimit")))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// A Collector reads its source's Stats once per scrape, so that every metric
// of one scrape comes from the same snapshot; it keeps no state of its own
// and costs the backend nothing between scrapes. Any value with a
// Stats() hammerredis.Stats method is a source: a *hammerredis.Backend, or a
// stub in tests.
//
// # Metrics
//
// The names below use the default namespace "hammerredis"; WithNamespace
// changes the prefix, and WithBackendName and WithConstLabels add constant
// labels to every metric (use them to tell several backends apart in one
// registry).
//
//	hammerredis_calls_total{op}
//	    Counter. Finished calls, whatever their outcome, by operation:
//	    op is "count_hit" (CountHit and CountHitN), "get_bucket" or
//	    "delete_buckets".
//
//	hammerredis_errors_total{kind}
//	    Counter. Failed calls, by the error they matched, each counted once:
//	    kind is "closed" (ErrClosed: no connection yet or in between),
//	    "disconnected" (ErrDisconnected: the connection broke during the
//	    call), "timeout" (ErrTimeout, or the caller's deadline), "canceled"
//	    (the caller's context was cancelled), "stopped" (ErrStopped),
//	    "invalid" (ErrInvalid), "redis" (ErrRedis: Redis answered with an
//	    error), "bad_reply" (ErrBadReply) or "other".
//
//	hammerredis_connects_total
//	    Counter. Connections established.
//
//	hammerredis_restarts_total
//	    Counter. Connections lost, each of which restarts the connection.
//
//	hammerredis_dial_failures_total
//	    Counter. Failed connection attempts.
//
//	hammerredis_connected
//	    Gauge. 1 while the backend has a working connection, else 0.
//
//	hammerredis_queue_depth
//	    Gauge. Calls waiting for the connection at the scrape.
//
//	hammerredis_queue_capacity
//	    Gauge. How many calls the queue holds (Options.QueueSize); when
//	    hammerredis_queue_depth reaches it, callers wait.
//
//	hammerredis_call_duration_seconds
//	    Histogram. How long calls took as their callers saw them, from the
//	    call to its reply or error. The buckets are the backend's own
//	    power-of-two ones, from 1µs (1e-06) up to about 34s; longer calls
//	    count only in the +Inf bucket, _count and _sum.
package hammerprom
