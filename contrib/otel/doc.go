// Package hammerotel records what hammerredis rate limiters do as
// OpenTelemetry metrics, through the OpenTelemetry metric API: the
// decisions of a hammer.Checker's limits, the latency of its calls to
// Redis, its degraded mode, and a backend's connection and counters.
//
// It lives in its own Go module, so that the library itself does not
// depend on OpenTelemetry:
//
//	import hammerotel "github.com/hammer-go/hammerredis/contrib/otel"
//
//	m, err := hammerotel.New(meterProvider) // nil: otel.GetMeterProvider()
//	...
//	checker, err := hammer.NewChecker(backend, hammer.Config{
//		Limits:   limits,
//		Observer: m, // decisions and call latency
//		...
//	})
//	m.ObserveChecker("api", checker)     // degraded mode
//	m.ObserveBackend("ratelimit", backend) // a *hammerredis.Backend's Stats
//
// The Observer methods run on the checking goroutine: they never block and,
// once a limit's name has been seen, do not allocate (the attribute sets of
// each limit, outcome and degraded mode are built once, at the name's first
// decision). The observable instruments cost nothing between collections.
//
// # Bounded attributes
//
// No attribute holds a key or anything else taken from a request. The limit
// attribute is a hammer.Limit's Name, from the Checker's configuration, and
// at most WithMaxLimitNames (DefaultMaxLimitNames) distinct names are
// recorded: the decisions of any further name are labelled OtherLimit
// ("_other"). Every other attribute takes one of a fixed few values, or
// the names given to ObserveChecker and ObserveBackend. WithAttributes adds
// constant attributes to every measurement.
//
// # Decisions
//
//	hammerredis.decisions{limit, outcome, degraded}
//	    Int64Counter, unit "{decision}". One per limit per check: a check
//	    of a Checker with three limits counts three decisions.
//
// What a decision can be (allowed, denied, shadow denied, degraded, error)
// maps onto two attributes:
//
//	outcome="allowed"        the limit allowed the request
//	outcome="denied"         the limit denied it
//	outcome="shadow_denied"  a Shadow limit would have denied it (the
//	                         request may still have been allowed)
//	outcome="error"          the backend failed and there was no fallback,
//	                         or the fallback failed too; degraded="false"
//	degraded="true"          hammer.Config.Fallback decided, with any of the
//	                         first three outcomes, at FallbackShare of the
//	                         limit; degraded="false" when the backend did
//
// So the degraded decisions are those with degraded="true", whatever their
// outcome, and the decisions the backend made are those with
// degraded="false" and an outcome other than "error". An Outcome this
// package does not know (from a later hammer) is counted as
// outcome="unknown".
//
// # Backend calls
//
//	hammerredis.backend.call.duration{error.type}
//	    Float64Histogram, unit "s". How long each of a Checker's calls to its
//	    backend took (not those to its Fallback, and none while degraded
//	    mode skips the backend). error.type is absent when the call
//	    succeeded, else the first of the backend's error kinds that the error
//	    matches (errors.Is): "closed" (ErrClosed), "disconnected"
//	    (ErrDisconnected), "timeout" (ErrTimeout, or the caller's deadline),
//	    "canceled" (the caller's context was cancelled), "stopped"
//	    (ErrStopped), "invalid" (ErrInvalid), "unsupported" (ErrUnsupported),
//	    "redis" (ErrRedis), "bad_reply" (ErrBadReply) or "other". The advised
//	    buckets are DefaultLatencyBuckets, from 50µs to 5s; an SDK View can
//	    change them.
//
// # Degraded mode
//
//	hammerredis.checker.degraded{checker}
//	    Int64ObservableGauge, unit "1". For each Checker given to
//	    ObserveChecker: 1 while its Fallback decides (Checker.Degraded),
//	    else 0.
//
// # Backends
//
// For each backend given to ObserveBackend (a *hammerredis.Backend, or any
// StatsSource), from one Stats snapshot per collection, with the attribute
// backend:
//
//	hammerredis.backend.connected{backend}
//	    Int64ObservableGauge, unit "1". 1 while the backend has a working
//	    connection to Redis, else 0.
//
//	hammerredis.backend.queue.depth{backend}
//	    Int64ObservableGauge, unit "{call}". Calls waiting for the
//	    connection.
//
//	hammerredis.backend.queue.capacity{backend}
//	    Int64ObservableGauge, unit "{call}". How many calls the queue holds
//	    (Options.QueueSize); callers wait when the depth reaches it.
//
//	hammerredis.backend.calls{backend, op}
//	    Int64ObservableCounter, unit "{call}". Finished calls of every
//	    caller, whatever their outcome, by operation: op is "count_hit",
//	    "get_bucket", "delete_buckets", "hit", "inc", "set", "get" or
//	    "check".
//
//	hammerredis.backend.errors{backend, error.type}
//	    Int64ObservableCounter, unit "{call}". Failed calls of every caller,
//	    by the kinds above (the backend counts "unsupported" as "other").
//
// A backend's own latency histogram (Stats.Latency) is not exported: the
// metric API has no observable histogram. contrib/prometheus exports it.
package hammerotel
