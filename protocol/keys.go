package protocol

import (
	"strconv"
	"strings"
)

// DefaultKeyPrefix is the prefix of every bucket key unless configured
// otherwise; the same default as Elixir's hammer_backend_redis.
const DefaultKeyPrefix = "Hammer:Redis:"

// Hash fields of a bucket, in the order they are created.
const (
	FieldCount   = "count"
	FieldCreated = "created"
	FieldUpdated = "updated"
)

// Key returns the Redis key of a bucket: prefix, id, ":", bucket in base 10.
// It is plain concatenation, byte for byte what the Elixir library writes.
func Key(prefix string, k BucketKey) string {
	return string(appendKey(make([]byte, 0, len(prefix)+len(k.ID)+21), prefix, k))
}

// appendKey appends the Redis key of k to dst, as Key builds it, and returns
// the extended buffer.
func appendKey(dst []byte, prefix string, k BucketKey) []byte {
	dst = append(dst, prefix...)
	dst = append(dst, k.ID...)
	dst = append(dst, ':')
	return strconv.AppendInt(dst, k.Bucket, 10)
}

// deletePattern returns the SCAN MATCH pattern for the buckets of id:
// "<prefix><id>:*" with Redis glob characters in prefix and id escaped, so
// that an id such as "x*" matches only its own keys (Elixir does not escape).
// The pattern may still match keys of other ids (id "a" matches "a:b:1");
// filter them with isBucketOf.
func deletePattern(prefix, id string) string {
	var b strings.Builder
	b.Grow(len(prefix) + len(id) + 8)
	escapeGlob(&b, prefix)
	escapeGlob(&b, id)
	b.WriteString(":*")
	return b.String()
}

func escapeGlob(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
}

// isBucketOf reports whether key is a bucket key of id under prefix, that is
// whether key == Key(prefix, BucketKey{b, id}) for some int64 b. Keys of any
// other id never pass: their remainder after "<prefix><id>:" holds a ':' or
// is not in canonical base 10.
func isBucketOf(prefix, id, key string) bool {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return false
	}
	rest, ok = strings.CutPrefix(rest, id)
	if !ok {
		return false
	}
	rest, ok = strings.CutPrefix(rest, ":")
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	// Only the exact text Key would write: no "+", no leading zeros, no "-0".
	return err == nil && strconv.FormatInt(n, 10) == rest
}

// MaxExpiryMs bounds a backend's ExpiryMs: 100 years. Past it Redis
// refuses the TTL (EXPIRE overflows near 2^63 ms), and no rate window is
// that long.
const MaxExpiryMs int64 = 100 * 36525 * 24 * 3600 * 1000 / 100

// ExpirySeconds returns the TTL in seconds set on a bucket on every hit:
// round(expiryMs/1000 + 1), rounding half away from zero, as the Elixir
// library computes it (60000 -> 61, 1500 -> 3, 1499 -> 2, 500 -> 2).
// expiryMs must be positive (options validation ensures it); integer
// arithmetic keeps large values exact.
func ExpirySeconds(expiryMs int64) int64 {
	q, r := expiryMs/1000, expiryMs%1000
	if r >= 500 {
		q++
	}
	return q + 1
}

// Layout is a key layout: the Elixir one, "<prefix><id>:<bucket>", or, with
// HashTag, "<prefix>{<id>}:<bucket>", which puts all of an id's buckets in
// one Redis Cluster slot. The hash-tag layout is not the Elixir library's:
// an Elixir service does not see those buckets. With HashTag, the prefix
// must hold no '{', or the tag would be the prefix's; an empty id, or one
// starting with '}', makes an empty tag, which Redis ignores, so that id's
// buckets still spread over slots.
type Layout struct {
	Prefix  string
	HashTag bool
}

// AppendKey appends the key of k to dst.
func (l Layout) AppendKey(dst []byte, k BucketKey) []byte {
	if !l.HashTag {
		return appendKey(dst, l.Prefix, k)
	}
	dst = append(dst, l.Prefix...)
	dst = append(dst, '{')
	dst = append(dst, k.ID...)
	dst = append(dst, '}', ':')
	return strconv.AppendInt(dst, k.Bucket, 10)
}

// Key returns the key of k.
func (l Layout) Key(k BucketKey) string {
	return string(l.AppendKey(make([]byte, 0, len(l.Prefix)+len(k.ID)+23), k))
}

// DeletePattern returns the SCAN MATCH pattern for the buckets of id: their
// key with Redis glob characters in the prefix and id escaped and "*" for the
// window, so that an id such as "x*" matches only its own keys (Elixir does
// not escape). The pattern may still match keys of other ids (id "a" matches
// "a:b:1"); filter them with [Layout.IsBucketOf].
func (l Layout) DeletePattern(id string) string {
	if !l.HashTag {
		return deletePattern(l.Prefix, id)
	}
	var b strings.Builder
	escapeGlob(&b, l.Prefix)
	b.WriteString(`\{`)
	escapeGlob(&b, id)
	b.WriteString(`\}:*`)
	return b.String()
}

// IsBucketOf reports whether key is a bucket key of id in this layout, that
// is whether key == l.Key(BucketKey{b, id}) for some int64 b. Keys of any
// other id never pass.
func (l Layout) IsBucketOf(id, key string) bool {
	if !l.HashTag {
		return isBucketOf(l.Prefix, id, key)
	}
	rest, ok := strings.CutPrefix(key, l.Prefix+"{")
	if !ok {
		return false
	}
	rest, ok = strings.CutPrefix(rest, id)
	if !ok {
		return false
	}
	rest, ok = strings.CutPrefix(rest, "}:")
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	return err == nil && strconv.FormatInt(n, 10) == rest
}
