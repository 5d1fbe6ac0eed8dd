package hammergrpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/internal/throttle"
	"github.com/hammer-go/hammerredis/protocol"
)

// DefaultTimeout is Config.Timeout's default. A Redis round trip takes well
// under a millisecond on a local network, so 100ms leaves room for load
// while keeping a hung Redis from holding every call for the backend's own
// call timeout.
const DefaultTimeout = 100 * time.Millisecond

// The errors of a refused call; match them with errors.Is. Each comes with
// its gRPC status (status.FromError reads it).
var (
	// ErrLimited: a limit denied the call. codes.ResourceExhausted, with
	// an errdetails.RetryInfo (unless no wait helps) and an
	// errdetails.QuotaFailure naming the limits that denied.
	ErrLimited = errors.New("hammergrpc: rate limit exceeded")
	// ErrNoKey: Config.Keys found no key for the call, or a key the backend
	// refuses (longer than 1 MiB with its prefix); the KeyFunc's or
	// backend's error is wrapped too. codes.InvalidArgument.
	ErrNoKey = errors.New("hammergrpc: no rate-limit key for the call")
	// ErrUnavailable: the backend failed and Config.OnError is FailClosed;
	// the backend's error is wrapped too. codes.Unavailable, with an
	// errdetails.RetryInfo of one second.
	ErrUnavailable = errors.New("hammergrpc: rate limiter unavailable")
)

// ErrorPolicy says what happens to a call when the backend fails.
type ErrorPolicy int

const (
	// FailOpen lets the call through, without a Decision nor RateLimit
	// metadata: an outage of the limiter is not an outage of the service.
	FailOpen ErrorPolicy = iota
	// FailClosed refuses the call with codes.Unavailable ([ErrUnavailable]),
	// for methods that must never run unlimited, such as logins.
	FailClosed
)

// String returns "fail-open" or "fail-closed".
func (p ErrorPolicy) String() string {
	switch p {
	case FailOpen:
		return "fail-open"
	case FailClosed:
		return "fail-closed"
	}
	return "ErrorPolicy(" + strconv.Itoa(int(p)) + ")"
}

// Config configures a Limiter. Checker is required; every other field's
// zero value means its documented default.
type Config struct {
	// Checker decides every call against its limits.
	Checker *hammer.Checker
	// Keys returns the keys a call is counted under; default [PeerIP].
	Keys KeyFunc
	// Skip, when set, lets the calls it returns true for through without
	// counting them, such as health checks ([SkipMethods]).
	Skip func(ctx context.Context, fullMethod string) bool
	// Timeout bounds each check, on top of the call's context; default
	// [DefaultTimeout]. A negative Timeout sets no bound of the Limiter's
	// own. A check that times out is handled by OnError.
	Timeout time.Duration
	// OnError says what happens to a call when the backend fails (and the
	// Checker has no Config.Fallback, or it failed too): FailOpen, the
	// default, or FailClosed.
	OnError ErrorPolicy
	// Logger receives the backend's errors, one line a second at most;
	// default slog.Default().
	Logger *slog.Logger
	// NoMetadata leaves out the RateLimit response header metadata
	// ([MetadataPolicy], [MetadataRateLimit]), sent by default.
	NoMetadata bool
}

// Limiter rate-limits the calls of a gRPC server with a hammer.Checker:
// install its interceptors, or pass it to go-grpc-middleware's ratelimit
// interceptors (it is a ratelimit.Limiter). It is safe for concurrent use.
type Limiter struct {
	cfg    Config
	limits int
	log    errorLog
}

// New validates cfg and returns its Limiter. Its errors wrap
// protocol.ErrInvalid (hammerredis.ErrInvalid).
func New(cfg Config) (*Limiter, error) {
	switch {
	case cfg.Checker == nil:
		return nil, fmt.Errorf("%w: hammergrpc: Config.Checker is required", protocol.ErrInvalid)
	case cfg.OnError != FailOpen && cfg.OnError != FailClosed:
		return nil, fmt.Errorf("%w: hammergrpc: Config.OnError %v is neither FailOpen nor FailClosed", protocol.ErrInvalid, cfg.OnError)
	}
	if cfg.Keys == nil {
		cfg.Keys = PeerIP
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if fa := cfg.Checker.FallbackAfter(); cfg.Timeout > 0 && fa >= cfg.Timeout {
		return nil, fmt.Errorf("%w: hammergrpc: Config.Timeout %v ends before the Checker's FallbackAfter %v: "+
			"its Fallback could never decide; give the Checker a shorter FallbackAfter, or the Limiter a longer Timeout",
			protocol.ErrInvalid, cfg.Timeout, fa)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l := &Limiter{cfg: cfg, limits: len(cfg.Checker.Limits())}
	l.log.logger, l.log.now = cfg.Logger, time.Now
	return l, nil
}

type decisionKey struct{}

// DecisionFrom returns the Decision of a call that the Limiter's
// interceptors checked, from the handler's context (or a stream's
// Context). It returns false for a call that was not checked: skipped, or
// let through by FailOpen, or checked through [Limiter.Limit], which
// cannot hand a context on.
func DecisionFrom(ctx context.Context) (hammer.Decision, bool) {
	d, ok := ctx.Value(decisionKey{}).(hammer.Decision)
	return d, ok
}

// UnaryServerInterceptor returns the interceptor that checks each unary
// call before its handler runs.
func (l *Limiter) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := l.check(ctx, info.FullMethod, func(md metadata.MD) error { return grpc.SetHeader(ctx, md) })
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor returns the interceptor that checks each stream
// once, when it opens, before its handler runs; its messages are not
// counted.
func (l *Limiter) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := l.check(ss.Context(), info.FullMethod, ss.SetHeader)
		if err != nil {
			return err
		}
		if ctx != ss.Context() {
			ss = &stream{ServerStream: ss, ctx: ctx}
		}
		return handler(srv, ss)
	}
}

// Limit checks the call of ctx (a server handler's context, whose method
// grpc.Method tells) and returns nil when it may go on: the ratelimit.Limiter
// interface of go-grpc-middleware v2
// (github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit),
// whose interceptors refuse every call that Limit returns an error for
// with codes.ResourceExhausted and the error's text. They lose this
// package's status codes and details (RetryInfo, Unavailable,
// InvalidArgument) and the handler gets no Decision: prefer this
// Limiter's own interceptors when you can.
func (l *Limiter) Limit(ctx context.Context) error {
	method, _ := grpc.Method(ctx)
	_, err := l.check(ctx, method, func(md metadata.MD) error { return grpc.SetHeader(ctx, md) })
	return err
}

// stream is a ServerStream whose Context holds the Decision.
type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }

// check decides the call of ctx to method. It returns ctx with the
// Decision, and an error carrying the call's gRPC status when the call must
// not go on.
func (l *Limiter) check(ctx context.Context, method string, setHeader func(metadata.MD) error) (context.Context, error) {
	if l.cfg.Skip != nil && l.cfg.Skip(ctx, method) {
		return ctx, nil
	}
	keys, err := l.cfg.Keys(ctx, method)
	if err == nil {
		err = checkKeys(keys)
	}
	if err != nil {
		return ctx, refuse(codes.InvalidArgument, "", ErrNoKey, err)
	}
	if len(keys) != 1 && len(keys) != l.limits {
		// A mistake in the program, not in the call: neither the client's
		// fault nor an outage to fail open on.
		return ctx, status.Errorf(codes.Internal, "hammergrpc: the KeyFunc returned %d keys for %d limits", len(keys), l.limits)
	}
	cctx := ctx
	if l.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, l.cfg.Timeout)
		defer cancel()
	}
	d, err := l.cfg.Checker.Check(cctx, keys...)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		// The client left or its deadline passed: not an outage.
		return ctx, status.FromContextError(ctx.Err()).Err()
	case errors.Is(err, protocol.ErrInvalid):
		// The backend refused the key itself (an id over
		// protocol.MaxIDBytes): a call that cannot be rate limited.
		return ctx, refuse(codes.InvalidArgument, "", ErrNoKey, err)
	default:
		l.log.failure(err)
		if l.cfg.OnError == FailOpen {
			return ctx, nil
		}
		return ctx, refuse(codes.Unavailable, "", ErrUnavailable, err, &errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)})
	}
	if md := headerMD(d); md != nil && !l.cfg.NoMetadata {
		_ = setHeader(md) // fails only once the headers are out: nothing to do then
	}
	ctx = context.WithValue(ctx, decisionKey{}, d)
	if d.Allowed {
		return ctx, nil
	}
	return ctx, denied(d)
}

// denied returns the error of a call that d denies.
func denied(d hammer.Decision) error {
	var names []string
	quota := &errdetails.QuotaFailure{}
	for _, r := range d.Limits {
		if r.Allowed || r.Shadow {
			continue
		}
		names = append(names, strconv.Quote(r.Name))
		quota.Violations = append(quota.Violations, &errdetails.QuotaFailure_Violation{
			Subject:     "limit:" + r.Name,
			Description: fmt.Sprintf("%d per %v", r.Quota, r.Window),
			QuotaId:     r.Name,
			QuotaValue:  r.Quota,
		})
	}
	msg := ErrLimited.Error() + " (" + strings.Join(names, ", ") + ")"
	details := []protoadapt.MessageV1{quota}
	if wait, never := d.RetryAfter(); never {
		msg += "; no wait helps"
	} else {
		msg += "; retry in " + wait.String()
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(wait)})
	}
	return refuse(codes.ResourceExhausted, msg, ErrLimited, nil, details...)
}

// callError is the error of a refused call: its gRPC status, whose
// message is its text, and the errors it wraps (the kind, such as
// ErrLimited, and the cause) for errors.Is. The cause stays out of the
// message, which the client reads: a backend's error may name its hosts.
type callError struct {
	st      *status.Status
	wrapped []error
}

func (e *callError) Error() string              { return e.st.Message() }
func (e *callError) GRPCStatus() *status.Status { return e.st }
func (e *callError) Unwrap() []error            { return e.wrapped }

// refuse returns the error of a call refused with code and msg (kind's
// text when empty), wrapping kind and cause (when not nil), with details.
func refuse(code codes.Code, msg string, kind, cause error, details ...protoadapt.MessageV1) error {
	if msg == "" {
		msg = kind.Error()
	}
	st := status.New(code, msg)
	if len(details) > 0 {
		if withDetails, err := st.WithDetails(details...); err == nil {
			st = withDetails
		}
	}
	e := &callError{st: st, wrapped: []error{kind}}
	if cause != nil {
		e.wrapped = append(e.wrapped, cause)
	}
	return e
}

// errorLog logs the backend's errors: the first at once, then one line a
// second at most with the number left out.
type errorLog struct {
	logger *slog.Logger
	now    func() time.Time
	mu     sync.Mutex
	gate   throttle.Gate
}

func (l *errorLog) failure(err error) {
	l.mu.Lock()
	missed, ok := l.gate.Pass(l.now(), time.Second)
	l.mu.Unlock()
	if !ok {
		return
	}
	l.logger.Warn("hammergrpc: the rate-limit backend failed", "error", err, "errors_not_logged", missed)
}
