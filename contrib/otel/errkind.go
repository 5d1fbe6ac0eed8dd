package hammerotel

import (
	"context"
	"errors"

	"github.com/hammer-go/hammerredis"
)

// errorKind is the kind of a call's error: the value of the error.type
// attribute, one of a fixed few.
type errorKind uint8

const (
	kindNone errorKind = iota // the call succeeded
	kindClosed
	kindDisconnected
	kindTimeout
	kindCanceled
	kindStopped
	kindInvalid
	kindUnsupported
	kindRedis
	kindBadReply
	kindOther
	numKinds
)

var kindNames = [numKinds]string{"", "closed", "disconnected", "timeout", "canceled", "stopped", "invalid",
	"unsupported", "redis", "bad_reply", "other"}

// String returns the attribute value of k, "" for kindNone.
func (k errorKind) String() string { return kindNames[k] }

// kindOf returns the kind of err, in the order of the backend's own Stats
// (an error matching several kinds counts as the first): a caller's
// deadline is a timeout, whether or not the backend wrapped it in
// ErrTimeout.
func kindOf(err error) errorKind {
	switch {
	case err == nil:
		return kindNone
	case errors.Is(err, hammerredis.ErrClosed):
		return kindClosed
	case errors.Is(err, hammerredis.ErrDisconnected):
		return kindDisconnected
	case errors.Is(err, hammerredis.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return kindTimeout
	case errors.Is(err, context.Canceled):
		return kindCanceled
	case errors.Is(err, hammerredis.ErrStopped):
		return kindStopped
	case errors.Is(err, hammerredis.ErrInvalid):
		return kindInvalid
	case errors.Is(err, hammerredis.ErrUnsupported):
		return kindUnsupported
	case errors.Is(err, hammerredis.ErrRedis):
		return kindRedis
	case errors.Is(err, hammerredis.ErrBadReply):
		return kindBadReply
	default:
		return kindOther
	}
}
