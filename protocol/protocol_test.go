package protocol

import (
	"errors"
	"strings"
	"testing"
)

func TestKey(t *testing.T) {
	tests := []struct {
		prefix string
		key    BucketKey
		want   string
	}{
		{DefaultKeyPrefix, BucketKey{28333333, "upload:42"}, "Hammer:Redis:upload:42:28333333"},
		{DefaultKeyPrefix, BucketKey{-7, "x"}, "Hammer:Redis:x:-7"},
		{DefaultKeyPrefix, BucketKey{0, ""}, "Hammer:Redis::0"},
		{"", BucketKey{1, "a"}, "a:1"},
		{"p{", BucketKey{9223372036854775807, "*\x00\xff"}, "p{*\x00\xff:9223372036854775807"},
	}
	for _, tt := range tests {
		if got := Key(tt.prefix, tt.key); got != tt.want {
			t.Errorf("Key(%q, %v) = %q, want %q", tt.prefix, tt.key, got, tt.want)
		}
	}
}

func TestExpirySeconds(t *testing.T) {
	tests := []struct{ ms, want int64 }{
		{60000, 61}, {7200000, 7201}, {1500, 3}, {1499, 2}, {500, 2}, {499, 1}, {1, 1}, {1000, 2},
		{9223372036854775807, 9223372036854776 + 1},
	}
	for _, tt := range tests {
		if got := ExpirySeconds(tt.ms); got != tt.want {
			t.Errorf("ExpirySeconds(%d) = %d, want %d", tt.ms, got, tt.want)
		}
	}
}

func TestDeletePattern(t *testing.T) {
	tests := []struct{ prefix, id, want string }{
		{DefaultKeyPrefix, "a", "Hammer:Redis:a:*"},
		{DefaultKeyPrefix, "x*", `Hammer:Redis:x\*:*`},
		{`p?[`, `a]\b`, `p\?\[a\]\\b:*`},
	}
	for _, tt := range tests {
		if got := deletePattern(tt.prefix, tt.id); got != tt.want {
			t.Errorf("DeletePattern(%q, %q) = %q, want %q", tt.prefix, tt.id, got, tt.want)
		}
	}
}

func TestIsBucketOf(t *testing.T) {
	p := DefaultKeyPrefix
	tests := []struct {
		id, key string
		want    bool
	}{
		{"a", p + "a:1", true},
		{"a", p + "a:-1", true},
		{"a", p + "a:b:1", false}, // id "a:b"
		{"a:b", p + "a:b:1", true},
		{"a", p + "a:", false},
		{"a", p + "a:01", false},
		{"a", p + "a:+1", false},
		{"a", p + "a:-0", false},
		{"a", p + "a:1x", false},
		{"a", p + "a:99999999999999999999", false},
		{"a", "other:a:1", false},
		{"", p + ":5", true},
		{"", p + ":5:3", false}, // id ":5"
		{"x*", p + "xy:1", false},
	}
	for _, tt := range tests {
		if got := isBucketOf(p, tt.id, tt.key); got != tt.want {
			t.Errorf("IsBucketOf(%q, %q, %q) = %v, want %v", p, tt.id, tt.key, got, tt.want)
		}
	}
}

// FuzzIsBucketOf checks the property delete_buckets relies on: a key built
// for one id is a bucket of that id and of no other.
func FuzzIsBucketOf(f *testing.F) {
	f.Add("a", "a:b", int64(1), "Hammer:Redis:")
	f.Add("", ":5", int64(3), "")
	f.Add("x*", "xy", int64(-1), "p")
	f.Fuzz(func(t *testing.T, id, other string, bucket int64, prefix string) {
		key := Key(prefix, BucketKey{bucket, other})
		if !isBucketOf(prefix, other, key) {
			t.Fatalf("IsBucketOf(%q, %q, %q) = false for its own key", prefix, other, key)
		}
		if id != other && isBucketOf(prefix, id, key) {
			t.Fatalf("IsBucketOf(%q, %q, %q) = true for the key of id %q", prefix, id, key, other)
		}
	})
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("x", MaxIDBytes+1)
	for _, r := range []Request{CountHit{Key: BucketKey{ID: long}}, GetBucket{Key: BucketKey{ID: long}}, DeleteBuckets{ID: long}} {
		if err := r.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s with a %d-byte id: Validate() = %v, want ErrInvalid", r.Op(), len(long), err)
		}
	}
	ok := strings.Repeat("x", MaxIDBytes)
	for _, r := range []Request{CountHit{Key: BucketKey{ID: ok}, Increment: -5}, GetBucket{}, DeleteBuckets{ID: "\x00*"}} {
		if err := r.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v, want nil", r.Op(), err)
		}
	}
}

func TestSlot(t *testing.T) {
	for _, tt := range []struct {
		key  string
		want int
	}{{"", 0}, {"foo", 12182}, {"bar", 5061}, {"123456789", 0x31C3 % SlotCount}, {"{user1000}.following", Slot("user1000")}, {"a{}b", Slot("a{}b")}} {
		if got := Slot(tt.key); got != tt.want {
			t.Errorf("Slot(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
	if Slot("{user1000}.following") != Slot("{user1000}.followers") {
		t.Error("keys with one hash tag are in different slots")
	}
}

// FuzzLayout checks both layouts: a key built for one id is a bucket of that
// id and of no other, and the hash-tag layout puts all of an id's buckets in
// one slot.
func FuzzLayout(f *testing.F) {
	f.Add("a", "a:b", int64(1), int64(2), "Hammer:Redis:", true)
	f.Add("x}", "x", int64(-1), int64(5), "p:", true)
	f.Add("", "}:1", int64(0), int64(0), "", false)
	f.Fuzz(func(t *testing.T, id, other string, bucket, bucket2 int64, prefix string, tag bool) {
		if tag && strings.Contains(prefix, "{") {
			return // not allowed with HashTag
		}
		l := Layout{Prefix: prefix, HashTag: tag}
		key := l.Key(BucketKey{bucket, other})
		if !l.IsBucketOf(other, key) {
			t.Fatalf("%+v.IsBucketOf(%q, %q) = false for its own key", l, other, key)
		}
		if id != other && l.IsBucketOf(id, key) {
			t.Fatalf("%+v.IsBucketOf(%q, %q) = true for the key of id %q", l, id, key, other)
		}
		// An empty id, or one starting with '}', makes an empty tag: Redis
		// then hashes the whole key, and such an id's buckets spread.
		if tag && other != "" && other[0] != '}' && Slot(key) != Slot(l.Key(BucketKey{bucket2, other})) {
			t.Fatalf("the buckets %d and %d of id %q are in different slots", bucket, bucket2, other)
		}
	})
}

func TestLayout(t *testing.T) {
	l := Layout{Prefix: DefaultKeyPrefix, HashTag: true}
	if got := l.Key(BucketKey{5, "user:1"}); got != "Hammer:Redis:{user:1}:5" {
		t.Errorf("Key = %q", got)
	}
	if got := l.DeletePattern("x*"); got != `Hammer:Redis:\{x\*\}:*` {
		t.Errorf("DeletePattern = %q", got)
	}
	if got := (Layout{Prefix: "p:"}).Key(BucketKey{5, "a"}); got != "p:a:5" {
		t.Errorf("Elixir layout Key = %q", got)
	}
}
