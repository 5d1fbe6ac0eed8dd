package hammergrpc

import (
	"google.golang.org/grpc/metadata"

	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/internal/sfv"
)

// Names of the response header metadata that a Limiter sets, the fields
// of the IETF draft "RateLimit header fields for HTTP"
// (draft-ietf-httpapi-ratelimit-headers-10 and -11); gRPC metadata names
// are lower case.
const (
	// MetadataPolicy lists every limit with its quota q and window w in
	// seconds: "per-second";q=10;w=1, "per-hour";q=1000;w=3600
	MetadataPolicy = "ratelimit-policy"
	// MetadataRateLimit lists every limit with what remains of its quota r
	// and the seconds t until it is whole again: "per-second";r=9;t=1, ...
	MetadataRateLimit = "ratelimit"
)

// ShadowParam marks a Shadow limit's items in both fields (a Boolean,
// written as the key alone), as httplimit does: a vendor-prefixed
// parameter, as Sections 3.1 and 4.1 of the drafts ask of
// implementation-specific ones.
const ShadowParam = "hammer-shadow"

// headerMD returns d's fields as response header metadata, one item per
// limit in the order of the Checker's limits, Shadow limits included: an
// sf-string item named after the limit (RFC 9651), with
//
//   - q, the quota, and w, the window in seconds when it is a whole
//     number of them (the drafts' w has no fractions);
//   - r, what remains, and t, the seconds until the quota is whole again,
//     rounded up; for a limit that denies, the wait until a call fits
//     again instead (at least 1, as Section 6 of the drafts asks), and no
//     t when no wait helps.
//
// It returns nil when an item cannot be serialized, which limit names
// (printable ASCII, hammer.NewChecker checks) and numbers (clamped) rule
// out.
func headerMD(d hammer.Decision) metadata.MD {
	policy := make([]sfv.Item, len(d.Limits))
	state := make([]sfv.Item, len(d.Limits))
	for i, l := range d.Limits {
		policy[i] = sfv.Item{Value: l.Name, Params: []sfv.Param{{Key: "q", Value: sfv.Clamp(l.Quota)}}}
		if w := sfv.WholeSeconds(l.Window); w > 0 {
			policy[i].Params = append(policy[i].Params, sfv.Param{Key: "w", Value: w})
		}
		state[i] = sfv.Item{Value: l.Name, Params: []sfv.Param{{Key: "r", Value: sfv.Clamp(l.Remaining)}}}
		switch {
		case l.Allowed:
			state[i].Params = append(state[i].Params, sfv.Param{Key: "t", Value: sfv.CeilSeconds(l.Reset)})
		case !l.Never:
			state[i].Params = append(state[i].Params, sfv.Param{Key: "t", Value: max(sfv.CeilSeconds(l.RetryAfter), 1)})
		}
		if l.Shadow {
			policy[i].Params = append(policy[i].Params, sfv.Param{Key: ShadowParam, Value: true})
			state[i].Params = append(state[i].Params, sfv.Param{Key: ShadowParam, Value: true})
		}
	}
	p, err := sfv.List(policy...)
	if err != nil {
		return nil
	}
	s, err := sfv.List(state...)
	if err != nil {
		return nil
	}
	return metadata.Pairs(MetadataPolicy, p, MetadataRateLimit, s)
}
