package protocol_test

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/protocol"
)

// globMatch is Redis's glob matcher, stringmatchlen in src/util.c (case
// sensitive), ported branch by branch with its quirks: a class left open
// at the end of the pattern, "[a-]" read as a range up to ']', reversed
// ranges, "[^" alone matching any byte, a trailing lone backslash as a
// literal, and a string that runs out before the pattern (then only '*'s
// may remain). SCAN MATCH and KEYS use it on every key, except that the
// pattern "*" alone matches every key without it (even ""). signedChar
// says whether C's char is signed (x86) or not (arm): it decides how
// bytes >= 0x80 compare in a range.
//
// TestGlobMatchAgreesWithRedis checks the port against a real
// redis-server; FuzzDeletePattern uses it as the model of SCAN MATCH.
func globMatch(pattern, s string, signedChar bool) bool {
	skipLonger := false
	return globMatchImpl(pattern, s, signedChar, &skipLonger, 0)
}

func globMatchImpl(p, s string, signedChar bool, skipLonger *bool, nesting int) bool {
	if nesting > 1000 { // newer Redis's guard against abusive patterns
		return false
	}
	// at is p[i], or 0 past the end: C reads the pattern's NUL there.
	at := func(i int) byte {
		if i < len(p) {
			return p[i]
		}
		return 0
	}
	char := func(b byte) int {
		if signedChar {
			return int(int8(b))
		}
		return int(b)
	}
	// pi and si are C's pattern and string pointers; its patternLen and
	// stringLen are len(p)-pi and len(s)-si.
	pi, si := 0, 0
	for pi < len(p) && si < len(s) {
		switch p[pi] {
		case '*':
			for at(pi+1) == '*' {
				pi++
			}
			if len(p)-pi == 1 {
				return true
			}
			for si < len(s) {
				if globMatchImpl(p[pi+1:], s[si:], signedChar, skipLonger, nesting+1) {
					return true
				}
				if *skipLonger {
					return false
				}
				si++
			}
			*skipLonger = true
			return false
		case '?':
			si++
		case '[':
			pi++
			not := at(pi) == '^'
			if not {
				pi++
			}
			match := false
		class:
			for {
				n := len(p) - pi
				switch {
				case at(pi) == '\\' && n >= 2:
					pi++
					if p[pi] == s[si] {
						match = true
					}
				case at(pi) == ']':
					break class
				case n == 0:
					pi-- // an open class ends on the pattern's last byte
					break class
				case n >= 3 && p[pi+1] == '-':
					start, end, c := char(p[pi]), char(p[pi+2]), char(s[si])
					if start > end {
						start, end = end, start
					}
					pi += 2
					if c >= start && c <= end {
						match = true
					}
				default:
					if p[pi] == s[si] {
						match = true
					}
				}
				pi++
			}
			if not {
				match = !match
			}
			if !match {
				return false
			}
			si++
		case '\\':
			if len(p)-pi >= 2 {
				pi++
			}
			fallthrough
		default:
			if p[pi] != s[si] {
				return false
			}
			si++
		}
		pi++
		if si == len(s) {
			for at(pi) == '*' {
				pi++
			}
			break
		}
	}
	return pi == len(p) && si == len(s)
}

// keysMatch is what KEYS and SCAN MATCH select: "*" alone is every key.
func keysMatch(pattern, key string, signedChar bool) bool {
	return pattern == "*" || globMatch(pattern, key, signedChar)
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"*", "", false}, // the matcher; KEYS * short-cuts it
		{"**", "", false},
		{"a*", "a", true},
		{"a**", "a", true},
		{"a*b", "axxb", true},
		{"a*b", "axxbc", false},
		{"?", "", false},
		{"?", "\x00", true},
		{"[abc]", "b", true},
		{"[^abc]", "b", false},
		{"[^abc]", "d", true},
		{"[a-c]", "b", true},
		{"[c-a]", "b", true}, // reversed range
		{"[a-]", "]", true},  // a range up to ']', and the class stays open
		{"[a-]", "-", false},
		{"[", "x", false},
		{"[^", "x", true},
		{`[\]]`, "]", true},
		{`\*`, "*", true},
		{`\*`, "a", false},
		{`a\`, `a\`, true}, // a trailing lone backslash is a literal
		{`\\`, `\`, true},
		{"a\x00b", "a\x00b", true},
		{`Hammer:Redis:x\*:*`, "Hammer:Redis:xy:1", false},
		{`Hammer:Redis:x\*:*`, "Hammer:Redis:x*:1", true},
	}
	for _, tt := range tests {
		for _, signed := range []bool{true, false} {
			if got := globMatch(tt.pattern, tt.s, signed); got != tt.want {
				t.Errorf("globMatch(%q, %q, signed %v) = %v, want %v", tt.pattern, tt.s, signed, got, tt.want)
			}
		}
	}
	// Bytes >= 0x80 in a range: signed on x86, unsigned on arm.
	if globMatch("[\x01-\xff]", "\x80", true) || !globMatch("[\x01-\xff]", "\x80", false) {
		t.Errorf(`globMatch("[\x01-\xff]", "\x80") = %v signed, %v unsigned; want false, true`,
			globMatch("[\x01-\xff]", "\x80", true), globMatch("[\x01-\xff]", "\x80", false))
	}
}

// globKeys are keys full of the bytes the matcher treats specially.
var globKeys = []string{
	"", "a", "b", "c", "z", "A", "-", "]", "[", "^", "\\", "*", "?", ":", "\x00", "\x01", "\x7f", "\x80", "\xff",
	"é", "ab", "ba", "aa", "a]", "a-", `a\`, "a*", "a?", "a[", "[a]", "a\x00b", "abc", "a:1", "a:b:1", "a:-1",
	"x*:1", "xy:1", "x:1", "q?:2", "qq:2", "[ab]:3", "a]:3", `back\slash:4`, `back\:4`, "\x00*:5", "{t}:6", ":7",
	"Hammer:Redis:a:1", "Hammer:Redis:a:b:1", `p?[a]\b:7`, `p?[a]\b:-7`, `p?[a]\b:x:7`,
}

// globPatterns are patterns that hit every branch of the matcher.
var globPatterns = []string{
	"", "*", "**", "?", "??", "*?", "?*", "a*", "*a", "*a*", "a*b*c", "a**", "*:*", "*:?", "\\", `\\`, `\*`, `\?`,
	`\[`, `\]`, `a\`, `\a`, "[", "[^", "[]", "[]]", "[^]", "[^]]", "[a]", "[^a]", "[ab]", "[a-c]", "[c-a]", "[a-]",
	"[-a]", "[-]", "[a-]]", "[^a-]", `[\]]`, `[\\]`, `[\]`, `[\`, `[a\`, "[a", "[^a", "[\x00]", "[\x01-\xff]",
	"[\x80-\xff]", "[\xff-\x80]", "[\x00-\x7f]", "[^\x00-\x7f]", "a[", "a[b", "[[]", "[[]]", "*]", "]*", "^*", "*^",
	"\x00*", "*\x00", "[a]*", "*[a]", "?[a]*", `*\:*`, `x\*:*`, `q\?:*`, `\[ab\]:*`, `a\]:*`, `back\\slash:*`,
	`back\\:*`, `p\?\[a\]\\b:*`, "Hammer:Redis:a:*", "Hammer:Redis:*:*", "a:*", "a:b:*", "*:1", "*:-*",
}

// randomGlob returns a short pattern of matcher-special and plain bytes.
func randomGlob(r *rand.Rand, alphabet string) string {
	b := make([]byte, r.IntN(8))
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// TestGlobMatchAgreesWithRedis runs KEYS with hand-picked and random
// patterns on a private server holding globKeys and random keys, and
// checks that the model selects the same keys.
func TestGlobMatchAgreesWithRedis(t *testing.T) {
	srv := redistest.New(t)
	conn := srv.Conn(t)
	const alphabet = "ab-^[]\\*?:\x00\x80\xff"
	r := rand.New(rand.NewPCG(1, 2))
	keys := slices.Clone(globKeys)
	for range 60 {
		keys = append(keys, randomGlob(r, alphabet))
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	args := []any{}
	for _, k := range keys {
		args = append(args, k, "1")
	}
	if _, err := conn.Do("MSET", args...); err != nil {
		t.Fatalf("MSET: %v", err)
	}

	// Which char does this redis-server have? "\x80" is in [\x01-\xff]
	// only when unsigned.
	probe, err := redis.Strings(conn.Do("KEYS", "[\x01-\xff]"))
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	signed := !slices.Contains(probe, "\x80")
	t.Logf("redis-server compares chars as signed: %v", signed)

	patterns := slices.Clone(globPatterns)
	for range 3000 {
		patterns = append(patterns, randomGlob(r, alphabet))
	}
	for _, p := range patterns {
		if err := conn.Send("KEYS", p); err != nil {
			t.Fatalf("KEYS: %v", err)
		}
	}
	if err := conn.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	bad := 0
	for _, p := range patterns {
		got, err := redis.Strings(conn.Receive())
		if err != nil {
			t.Fatalf("KEYS %q: %v", p, err)
		}
		slices.Sort(got)
		var want []string
		for _, k := range keys {
			if keysMatch(p, k, signed) {
				want = append(want, k)
			}
		}
		if !slices.Equal(got, want) {
			if bad++; bad <= 20 {
				t.Errorf("KEYS %q = %q, the model says %q", p, got, want)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d patterns disagree with redis-server", bad, len(patterns))
	}
}

// patternIDs are ids whose buckets a careless delete pattern would mix up.
var patternIDs = []string{
	"", "a", "a:b", "a:1", "a:", ":", "x*", "xy", "x", "*", "q?", "qq", "[ab]", "a]", "b", `back\slash`, `back\`, `\`,
	"[", "]", "^", "-", "{t}", "\x00", "\x00*", "\xff", "a\nb", "é",
}

// TestDeletePatternWithRedis runs SCAN MATCH DeletePattern(prefix, id), as
// delete_buckets does, over the buckets of every id in patternIDs under
// several prefixes: it finds exactly the keys that start with
// prefix+id+":", as the model says, and IsBucketOf keeps exactly the id's
// own buckets among them.
func TestDeletePatternWithRedis(t *testing.T) {
	srv := redistest.New(t)
	conn := srv.Conn(t)
	prefixes := []string{protocol.DefaultKeyPrefix, "", "p?[", `*\`, "{x}:"}
	var keys []string
	for _, prefix := range prefixes {
		for _, id := range patternIDs {
			for _, b := range []int64{-1, 0, 7} {
				keys = append(keys, protocol.Key(prefix, protocol.BucketKey{b, id}))
			}
		}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	args := []any{}
	for _, k := range keys {
		args = append(args, k, "1")
	}
	if _, err := conn.Do("MSET", args...); err != nil {
		t.Fatalf("MSET: %v", err)
	}
	for _, prefix := range prefixes {
		layout := protocol.Layout{Prefix: prefix}
		for _, id := range patternIDs {
			pattern := layout.DeletePattern(id)
			var got []string
			for cursor := "0"; ; {
				reply, err := redis.Values(conn.Do("SCAN", cursor, "MATCH", pattern, "COUNT", 1000))
				if err != nil {
					t.Fatalf("SCAN MATCH %q: %v", pattern, err)
				}
				batch, err := redis.Strings(reply[1], nil)
				if err != nil {
					t.Fatalf("SCAN MATCH %q: %v", pattern, err)
				}
				got = append(got, batch...)
				if cursor, _ = redis.String(reply[0], nil); cursor == "0" {
					break
				}
			}
			slices.Sort(got)
			got = slices.Compact(got) // SCAN may return a key twice
			var want, own []string
			for _, k := range keys {
				if strings.HasPrefix(k, prefix+id+":") {
					want = append(want, k)
				}
				if globMatch(pattern, k, true) != globMatch(pattern, k, false) {
					t.Errorf("globMatch(%q, %q) depends on the signedness of char", pattern, k)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("SCAN MATCH DeletePattern of prefix %q, id %q = %q, want the keys starting with %q: %q",
					prefix, id, got, prefix+id+":", want)
			}
			for _, k := range got {
				if layout.IsBucketOf(id, k) {
					own = append(own, k)
				}
			}
			var wantOwn []string
			for _, b := range []int64{-1, 0, 7} {
				wantOwn = append(wantOwn, protocol.Key(prefix, protocol.BucketKey{b, id}))
			}
			slices.Sort(wantOwn)
			if !slices.Equal(own, wantOwn) {
				t.Errorf("delete_buckets(%q, %q) would delete %q, want %q", prefix, id, own, wantOwn)
			}
		}
	}
}

// FuzzDeletePattern checks the property delete_buckets relies on, with
// the model of Redis's matcher: DeletePattern(prefix, idX) matches exactly
// the keys that start with prefix+idX+":" (every glob byte is escaped), so
// it finds all of idX's buckets; and of the bucket keys of any id idY,
// delete_buckets(idX) deletes one (SCAN MATCH, then IsBucketOf) only if
// idX == idY.
func FuzzDeletePattern(f *testing.F) {
	f.Add(protocol.DefaultKeyPrefix, "a", "a:b", int64(1))
	f.Add(protocol.DefaultKeyPrefix, "x*", "xy", int64(-1))
	f.Add("", "", ":5", int64(3))
	f.Add(`p?[`, `a]\b`, `a]\b`, int64(0))
	f.Add("*", "[^a]", "b", int64(-9223372036854775808))
	f.Fuzz(func(t *testing.T, prefix, idX, idY string, bucket int64) {
		layout := protocol.Layout{Prefix: prefix}
		pattern := layout.DeletePattern(idX)
		key := protocol.Key(prefix, protocol.BucketKey{bucket, idY})
		for _, signed := range []bool{true, false} {
			// Also idY taken as any key at all.
			for _, k := range []string{key, idY} {
				if got, want := keysMatch(pattern, k, signed), strings.HasPrefix(k, prefix+idX+":"); got != want {
					t.Fatalf("SCAN MATCH %q on key %q: matched %v, want %v (signed char %v)", pattern, k, got, want, signed)
				}
			}
			deleted := keysMatch(pattern, key, signed) && layout.IsBucketOf(idX, key)
			if deleted != (idX == idY) {
				t.Fatalf("delete_buckets(prefix %q, id %q) deletes the bucket %d of id %q (key %q): %v, want %v",
					prefix, idX, bucket, idY, key, deleted, idX == idY)
			}
		}
	})
}
