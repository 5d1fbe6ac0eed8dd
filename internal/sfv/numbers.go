package sfv

import "time"

// The numbers of the RateLimit fields, as httplimit and hammergrpc write
// them.

// Clamp bounds n to what an Integer carries, 0 to MaxInteger: a quota may
// reach protocol.MaxLevel (2^50), above MaxInteger.
func Clamp(n int64) int64 { return min(max(n, 0), MaxInteger) }

// CeilSeconds returns d in whole seconds, rounded up, so that a client
// that waits that long is not early: at least 1 when d > 0, 0 otherwise.
func CeilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// WholeSeconds returns d in seconds when it is a positive whole number of
// them, else 0: the drafts' w has no fractions.
func WholeSeconds(d time.Duration) int64 {
	if d <= 0 || d%time.Second != 0 {
		return 0
	}
	return int64(d / time.Second)
}
