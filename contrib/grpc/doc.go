// Package hammergrpc rate-limits the calls of a gRPC server with a
// [hammer.Checker]: every call is checked against the checker's limits (say
// 10 a second and 1000 an hour per client), in one round trip per Redis
// node, before its handler runs.
//
// It is a module of its own (github.com/hammer-go/hammerredis/contrib/grpc)
// so that the library's go.mod does not pull in gRPC.
//
// # Usage
//
//	checker, err := hammer.NewChecker(backend, hammer.Config{Limits: []hammer.Limit{
//		{Name: "per-second", Scale: time.Second, Max: 10},
//		{Name: "per-hour", Scale: time.Hour, Max: 1000},
//	}})
//	if err != nil { ... }
//	limiter, err := hammergrpc.New(hammergrpc.Config{Checker: checker})
//	if err != nil { ... }
//	server := grpc.NewServer(
//		grpc.ChainUnaryInterceptor(limiter.UnaryServerInterceptor()),
//		grpc.ChainStreamInterceptor(limiter.StreamServerInterceptor()),
//	)
//
// A stream is checked once, when it opens; its messages are not counted.
// Everything the Checker does applies: Shadow limits are counted and
// reported but never deny, AllOrNothing charges no limit when one denies,
// and a Config.Fallback limits in process while Redis is away (degraded
// mode). The handler reads the call's [hammer.Decision] with
// [DecisionFrom].
//
// # Keys
//
// Calls are counted per key, as returned by Config.Keys: by default
// [PeerIP], the address of the connection's peer without its port
// ("ip:203.0.113.7"). [Metadata] keys by a request header such as an API
// key ("md:x-api-key:" and the value's hash), [FirstOf] takes the first
// that has a key, and any func(ctx, fullMethod) ([]string, error) can
// return one key for every limit or one key per limit. A call without a
// key is refused with codes.InvalidArgument ([ErrNoKey]), never let
// through unlimited. Config.Skip lets some methods through unchecked
// ([SkipMethods]), such as health checks.
//
// # Denials
//
// A call that a limit denies is refused with codes.ResourceExhausted
// ([ErrLimited]) and two details: an errdetails.RetryInfo holding how long
// to wait (Decision.RetryAfter; left out when no wait helps, as when a
// limit's Max is 0) and an errdetails.QuotaFailure naming the limits that
// denied. A client reads them with status.FromError(err) and Details().
//
// # Metadata
//
// Every checked call gets the response header metadata of the IETF draft
// "RateLimit header fields for HTTP" (drafts 10 and 11), one entry per
// limit, before its handler runs (unless Config.NoMetadata):
//
//	ratelimit-policy: "per-second";q=10;w=1, "per-hour";q=1000;w=3600
//	ratelimit: "per-second";r=9;t=1, "per-hour";r=999;t=1800
//
// q is the quota, w its window in seconds (left out when not a whole
// number of them), r what remains and t the seconds until the quota is
// whole again, rounded up (see [hammer.LimitResult]); for a limit that
// denies, t is the wait until a call fits, and is left out when no wait
// helps. Shadow limits' items carry the parameter [ShadowParam], as in
// httplimit.
//
// # Failures
//
// When the backend fails (and the Checker has no Fallback), Config.OnError
// decides: [FailOpen], the default, lets the call through without a
// Decision; [FailClosed] refuses it with codes.Unavailable
// ([ErrUnavailable]) and a RetryInfo of one second. The errors are logged,
// one line a second at most. Each check is bounded by Config.Timeout
// (default 100ms) on top of the call's context; a call whose client left
// gets its context's status (Canceled, DeadlineExceeded) and is not
// counted as a failure.
//
// # go-grpc-middleware
//
// A [Limiter] is a ratelimit.Limiter of go-grpc-middleware v2
// (github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit),
// for servers that chain its interceptors:
//
//	grpc.ChainUnaryInterceptor(ratelimit.UnaryServerInterceptor(limiter))
//
// Those interceptors refuse every error of [Limiter.Limit] with
// codes.ResourceExhausted and its text alone: the RetryInfo, the other
// codes and DecisionFrom are lost. The text still says how long to wait.
package hammergrpc
