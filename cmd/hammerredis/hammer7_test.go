package main

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/internal/redistest"
)

// The numbers of the tests' Hammer 7 limiters: windows of 365 days (scale),
// and buckets of 1000 units at 1 per second, which a hit of 1000 fills (or
// empties): no test run lasts the 1000s it takes to leak or refill one.
var (
	fixWindow     = []string{"--algorithm", "fix_window", "--prefix", "F", "--scale", scale}
	slidingWindow = []string{"--algorithm", "sliding_window", "--prefix", "S", "--scale", scale}
	leakyBucket   = []string{"--algorithm", "leaky_bucket", "--prefix", "L", "--rate", "1", "--limit", "1000"}
	tokenBucket   = []string{"--algorithm", "token_bucket", "--prefix", "T", "--rate", "1", "--limit", "1000"}
)

var hitFields = []string{"key", "algorithm", "allowed", "count", "limit", "remaining", "increment", "retry_after_ms", "never"}

// args joins argument lists.
func args(lists ...[]string) []string {
	var all []string
	for _, l := range lists {
		all = append(all, l...)
	}
	return all
}

// firstInt returns the first integer in s that follows prefix.
func firstInt(t *testing.T, s, prefix string) int64 {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(prefix) + `(\d+)`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %q<integer> in %q", prefix, s)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

func TestHitEachAlgorithmAllowsThenDenies(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		policy []string
		// Each step is a hit (or a get with "get" first) with its flags,
		// its exit status and its output.
		steps []struct {
			args []string
			code int
			out  string
		}
		key, keyType string // the Redis key of user:42 (a regular expression) and its type
	}{
		{"fix_window", fixWindow, []struct {
			args []string
			code int
			out  string
		}{
			{[]string{"get"}, exitOK, `^count 0\n$`},
			{[]string{"--limit", "2"}, exitOK, `^allowed: count 1 of 2, 1 remaining\n$`},
			{[]string{"--limit", "2"}, exitOK, `^allowed: count 2 of 2, 0 remaining\n$`},
			{[]string{"--limit", "2"}, exitDenied, `^denied: count 3 of 2, retry in \S+\n$`},
			{[]string{"--limit", "2", "--inc", "3"}, exitDenied, `^denied: count 6 of 2, never allowed: --inc 3 is over the limit 2\n$`},
			{[]string{"get"}, exitOK, `^count 6\n$`}, // denied hits count
			{[]string{"get", "--limit", "2"}, exitOK, `^count 6\n$`},
		}, `^F:user:42:\d+$`, "string"},
		{"sliding_window", slidingWindow, []struct {
			args []string
			code int
			out  string
		}{
			{[]string{"get"}, exitOK, `^count 0\n$`},
			{[]string{"--limit", "2", "--inc", "2"}, exitOK, `^allowed: count 2 of 2, 0 remaining\n$`},
			{[]string{"--limit", "2"}, exitDenied, `^denied: count 2 of 2, retry in \S+\n$`},
			{[]string{"--limit", "2", "--inc", "3"}, exitDenied, `^denied: count 2 of 2, never allowed: --inc 3 is over the limit 2\n$`},
			{[]string{"get"}, exitOK, `^count 2\n$`}, // denied hits do not count
		}, `^S:user:42:31536000000$`, "zset"},
		{"leaky_bucket", leakyBucket, []struct {
			args []string
			code int
			out  string
		}{
			{[]string{"get"}, exitOK, `^level 0 of 1000\n$`},
			{[]string{"--inc", "1000"}, exitOK, `^allowed: level 1000 of 1000, 0 remaining\n$`},
			{[]string{"--inc", "500"}, exitDenied, `^denied: level (9\d\d|1000) of 1000, retry in \S+\n$`},
			{[]string{"--inc", "1001"}, exitDenied, `^denied: level (9\d\d|1000) of 1000, never allowed: --inc 1001 is over the capacity 1000\n$`},
			{[]string{"get"}, exitOK, `^level (9\d\d|1000) of 1000\n$`},
		}, `^L:user:42$`, "hash"},
		{"token_bucket", tokenBucket, []struct {
			args []string
			code int
			out  string
		}{
			{[]string{"get"}, exitOK, `^1000 of 1000 tokens left\n$`}, // a bucket never hit is full
			{[]string{"--inc", "1000"}, exitOK, `^allowed: 0 of 1000 tokens left\n$`},
			{[]string{"--inc", "50"}, exitDenied, `^denied: \d of 1000 tokens left, retry in \S+\n$`},
			{[]string{"--inc", "1001"}, exitDenied, `^denied: \d of 1000 tokens left, never allowed: --inc 1001 is over the capacity 1000\n$`},
			{[]string{"get"}, exitOK, `^\d of 1000 tokens left\n$`},
		}, `^T:user:42$`, "hash"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.New(t)
			url := []string{"--redis-url", srv.URL()}
			for i, s := range tt.steps {
				cmd, rest := "hit", s.args
				if len(rest) > 0 && rest[0] == "get" {
					cmd, rest = "get", rest[1:]
				}
				// Flags after the KEY, before it, and around it.
				var a []string
				switch i % 3 {
				case 0:
					a = args([]string{cmd, "user:42"}, tt.policy, rest, url)
				case 1:
					a = args([]string{cmd}, tt.policy, rest, url, []string{"user:42"})
				case 2:
					a = args([]string{cmd}, tt.policy, []string{"user:42"}, rest, url)
				}
				want(t, s.code, s.out, a...)
			}
			c := srv.Conn(t)
			keys, err := redis.Strings(c.Do("KEYS", "*"))
			if err != nil || len(keys) != 1 || !regexp.MustCompile(tt.key).MatchString(keys[0]) {
				t.Fatalf("KEYS * = %q, %v; want one key matching %q", keys, err, tt.key)
			}
			if typ, err := redis.String(c.Do("TYPE", keys[0])); typ != tt.keyType || err != nil {
				t.Errorf("TYPE %s = %q, %v; want %q", keys[0], typ, err, tt.keyType)
			}
		})
	}
}

func TestBucketsLeakAndRefillAtTheirRate(t *testing.T) {
	t.Parallel()
	url := []string{"--redis-url", redistest.New(t).URL()}
	// Whatever the seconds between the calls, the level never leaks by more
	// than the seconds elapsed, nor do the tokens refill faster.
	begin := time.Now()
	want(t, exitOK, `^allowed: level 1000 of 1000`, args([]string{"hit", "k", "--inc", "1000"}, leakyBucket, url)...)
	want(t, exitOK, `^allowed: 0 of 1000 tokens left`, args([]string{"hit", "k", "--inc", "1000"}, tokenBucket, url)...)
	level := firstInt(t, want(t, exitOK, `^level \d+ of 1000\n$`, args([]string{"get", "k"}, leakyBucket, url)...).stdout, "level ")
	tokens := firstInt(t, want(t, exitOK, `^\d+ of 1000 tokens left\n$`, args([]string{"get", "k"}, tokenBucket, url)...).stdout, "")
	elapsed := int64(time.Since(begin)/time.Second) + 1 // a second boundary may be crossed at once
	if level < 1000-elapsed || tokens > elapsed {
		t.Errorf("after %ds: level %d, tokens %d; want the level at least %d and the tokens at most %d",
			elapsed-1, level, tokens, 1000-elapsed, elapsed)
	}
}

func TestHitJSON(t *testing.T) {
	t.Parallel()
	url := []string{"--redis-url", redistest.New(t).URL(), "--json"}

	r := want(t, exitOK, ``, args([]string{"hit", "user:42", "--limit", "2"}, fixWindow, url)...)
	fields(t, decode(t, r, hitFields...), map[string]any{"key": "user:42", "algorithm": "fix_window", "allowed": true,
		"count": 1.0, "limit": 2.0, "remaining": 1.0, "increment": 1.0, "retry_after_ms": 0.0, "never": false})

	r = want(t, exitDenied, ``, args([]string{"hit", "user:42", "--limit", "2", "--inc", "2"}, fixWindow, url)...)
	m := decode(t, r, hitFields...)
	fields(t, m, map[string]any{"allowed": false, "count": 3.0, "remaining": 0.0, "increment": 2.0, "never": false})
	if ms, ok := m["retry_after_ms"].(float64); !ok || ms < 1 || ms > 365*24*3600*1000 {
		t.Errorf("retry_after_ms = %#v, want the ms to the window's end", m["retry_after_ms"])
	}

	// Never: no wait can help, and retry_after_ms is null.
	r = want(t, exitDenied, ``, args([]string{"hit", "user:42", "--limit", "2", "--inc", "3"}, fixWindow, url)...)
	fields(t, decode(t, r, hitFields...), map[string]any{"allowed": false, "count": 6.0, "increment": 3.0,
		"retry_after_ms": nil, "never": true})

	r = want(t, exitOK, ``, args([]string{"get", "user:42"}, fixWindow, url)...)
	fields(t, decode(t, r, "count"), map[string]any{"count": 6.0})

	// A token bucket: count and remaining are the tokens left.
	r = want(t, exitOK, ``, args([]string{"hit", "user:42", "--inc", "400"}, tokenBucket, url)...)
	fields(t, decode(t, r, hitFields...), map[string]any{"algorithm": "token_bucket", "allowed": true,
		"count": 600.0, "limit": 1000.0, "remaining": 600.0, "increment": 400.0, "retry_after_ms": 0.0, "never": false})
	r = want(t, exitDenied, ``, args([]string{"hit", "user:42", "--inc", "1000"}, tokenBucket, url)...)
	m = decode(t, r, hitFields...)
	fields(t, m, map[string]any{"allowed": false, "never": false})
	// 400 tokens to wait for at 1 per second, less the refill since.
	if ms, ok := m["retry_after_ms"].(float64); !ok || ms < 390_000 || ms > 400_000 {
		t.Errorf("retry_after_ms = %#v, want about 400s", m["retry_after_ms"])
	}
	r = want(t, exitOK, ``, args([]string{"get", "user:42"}, tokenBucket, url)...)
	if n, ok := decode(t, r, "count")["count"].(float64); !ok || n < 600 || n > 610 {
		t.Errorf("get of the token bucket: count %#v, want about 600", n)
	}

	// A leaky bucket: count is the level, remaining the room left.
	r = want(t, exitOK, ``, args([]string{"hit", "user:42", "--inc", "300"}, leakyBucket, url)...)
	fields(t, decode(t, r, hitFields...), map[string]any{"algorithm": "leaky_bucket", "allowed": true,
		"count": 300.0, "remaining": 700.0, "retry_after_ms": 0.0})
	r = want(t, exitDenied, ``, args([]string{"hit", "user:42", "--inc", "1001"}, leakyBucket, url)...)
	fields(t, decode(t, r, hitFields...), map[string]any{"allowed": false, "retry_after_ms": nil, "never": true})

	r = want(t, exitOK, ``, args([]string{"hit", "user:42", "--limit", "5"}, slidingWindow, url)...)
	fields(t, decode(t, r, hitFields...), map[string]any{"algorithm": "sliding_window", "allowed": true,
		"count": 1.0, "limit": 5.0, "remaining": 4.0})
}

func TestHitKeyAfterDoubleDash(t *testing.T) {
	t.Parallel()
	url := []string{"--redis-url", redistest.New(t).URL()}
	want(t, exitOK, `^allowed: count 1 of 5`, args([]string{"hit"}, fixWindow, []string{"--limit", "5"}, url, []string{"--", "-7"})...)
	want(t, exitOK, `^count 1\n$`, args([]string{"get"}, fixWindow, url, []string{"--", "-7"})...)
}

// TestHitOnAKeyOfAnotherType: a Redis error reply is an error (exit 2), not
// a deny, and nothing is written.
func TestHitOnAKeyOfAnotherType(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t)
	if _, err := srv.Conn(t).Do("SET", "L:user:42", "not a hash"); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"hit", "get"} {
		r := hr(t, args([]string{cmd, "user:42"}, leakyBucket, []string{"--redis-url", srv.URL()})...)
		if r.code != exitError || r.stdout != "" || !strings.Contains(r.stderr, "WRONGTYPE") {
			t.Errorf("hammerredis %s on a string key = %v\nwant exit %d and WRONGTYPE on stderr", cmd, r, exitError)
		}
	}
	if v, err := redis.String(srv.Conn(t).Do("GET", "L:user:42")); v != "not a hash" || err != nil {
		t.Errorf("GET L:user:42 = %q, %v; want it untouched", v, err)
	}
}

func TestHitAndGetErrors(t *testing.T) {
	t.Parallel()
	hit := func(a ...string) []string {
		return args([]string{"hit", "user:42"}, a, []string{"--redis-url", unreachable})
	}
	get := func(a ...string) []string {
		return args([]string{"get", "user:42"}, a, []string{"--redis-url", unreachable})
	}
	fw := func(a ...string) []string { return args(fixWindow, []string{"--limit", "10"}, a) }
	for _, tt := range []struct {
		name string
		args []string
		want string // in stderr, or in the JSON error with --json
	}{
		{"missing KEY", args([]string{"hit"}, fw(), []string{"--redis-url", unreachable}), "missing KEY"},
		{"empty KEY", args([]string{"get", ""}, fixWindow, []string{"--redis-url", unreachable}), "the KEY is empty"},
		{"extra args", get(args(fixWindow, []string{"user:43"})...), `unexpected arguments after the KEY: ["user:43"]`},
		{"missing algorithm", hit("--prefix", "P", "--scale", "1m", "--limit", "1"), "missing --algorithm: fix_window, sliding_window, leaky_bucket or token_bucket"},
		{"unknown algorithm", hit("--algorithm", "fixed_window", "--prefix", "P", "--scale", "1m", "--limit", "1"), `--algorithm "fixed_window": want fix_window, `},
		{"missing prefix", hit("--algorithm", "fix_window", "--scale", "1m", "--limit", "1"), "missing --prefix"},
		{"empty prefix", get("--algorithm", "fix_window", "--prefix", "", "--scale", "1m"), "missing --prefix"},
		{"rate with fix_window", hit(fw("--rate", "1")...), "--rate is for leaky_bucket and token_bucket: fix_window takes --scale"},
		{"rate with sliding_window", get(args(slidingWindow, []string{"--rate", "1"})...), "--rate is for leaky_bucket and token_bucket: sliding_window takes --scale"},
		{"scale with leaky_bucket", hit(args(leakyBucket, []string{"--scale", "1s"})...), "--scale is for fix_window and sliding_window: leaky_bucket takes --rate, the units per second it leaks"},
		{"scale with token_bucket", get(args(tokenBucket, []string{"--scale", "1s"})...), "--scale is for fix_window and sliding_window: token_bucket takes --rate, the units per second it refills"},
		{"missing scale", hit("--algorithm", "fix_window", "--prefix", "P", "--limit", "1"), "missing --scale, the window length of fix_window"},
		{"get: missing scale", get("--algorithm", "sliding_window", "--prefix", "P"), "missing --scale, the window length of sliding_window"},
		{"missing limit", hit(fixWindow...), "missing --limit, the units allowed per window"},
		{"missing rate", hit("--algorithm", "token_bucket", "--prefix", "P", "--limit", "1"), "missing --rate, the units per second the token_bucket refills"},
		{"get: missing rate", get("--algorithm", "leaky_bucket", "--prefix", "P", "--limit", "1"), "missing --rate, the units per second the leaky_bucket leaks"},
		{"get: missing limit of a bucket", get("--algorithm", "leaky_bucket", "--prefix", "P", "--rate", "1"), "missing --limit, the capacity of the leaky_bucket"},
		{"scale under 1ms", hit(fw("--scale", "500us")...), "--scale 500µs: fix_window wants a whole number of milliseconds, at least 1ms"},
		{"scale not whole ms", hit(fw("--scale", "1.5ms")...), "--scale 1.5ms"},
		{"sliding scale under 1s", hit("--algorithm", "sliding_window", "--prefix", "P", "--scale", "500ms", "--limit", "1"), "--scale 500ms: sliding_window wants a whole number of milliseconds, at least 1s"},
		{"rate 0", hit("--algorithm", "leaky_bucket", "--prefix", "P", "--rate", "0", "--limit", "1"), "--rate 0: must be at least 1"},
		{"rate not a number", hit("--algorithm", "leaky_bucket", "--prefix", "P", "--rate", "1.5", "--limit", "1"), `invalid value "1.5" for flag -rate`},
		{"capacity 0", hit("--algorithm", "token_bucket", "--prefix", "P", "--rate", "1", "--limit", "0"), "--limit 0: a bucket's capacity must be at least 1"},
		{"negative limit", hit(fw("--limit", "-1")...), "--limit -1: must not be negative"},
		{"inc 0", hit(fw("--inc", "0")...), "--inc 0: must be at least 1"},
		{"sliding inc too large", hit("--algorithm", "sliding_window", "--prefix", "P", "--scale", "1m", "--limit", "1", "--inc", "1000001"), "--inc 1000001: sliding_window takes at most 1000000 at once"},
		{"get takes no inc", get(args(fixWindow, []string{"--inc", "1"})...), "flag provided but not defined: -inc"},
		{"limit over the library's bound", hit(fw("--limit", "1125899906842625")...), "limit 1125899906842625 is out of range"},
		{"prefix over Hammer 6 keys", hit("--algorithm", "fix_window", "--prefix", "Hammer:Redis", "--scale", "1m", "--limit", "1"), "can also be the backend's Hammer 6 keys"},
		{"prefix over custom Hammer 6 keys", get("--algorithm", "leaky_bucket", "--prefix", "app", "--rate", "1", "--limit", "1", "--key-prefix", "app:"), "Hammer 6 keys \"app:\""},
		{"timeout 0", hit(fw("--timeout", "0")...), "--timeout 0s: must be positive"},
		{"unreachable hit", hit(fw("--timeout", "300ms")...), "no connection to redis://127.0.0.1:1 within 300ms"},
		{"unreachable get", get(args(tokenBucket, []string{"--timeout", "300ms"})...), "no connection to redis://127.0.0.1:1 within 300ms"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := hr(t, tt.args...)
			if r.code != exitError || r.stdout != "" || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("hammerredis %q = %v\nwant exit %d, no stdout, and %q on stderr", tt.args, r, exitError, tt.want)
			}
			if r.elapsed > 5*time.Second {
				t.Errorf("hammerredis %q took %v, want a quick failure", tt.args, r.elapsed)
			}
			r = hr(t, append(tt.args, "--json")...)
			var m map[string]string
			if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || len(m) != 1 || !strings.Contains(m["error"], tt.want) {
				t.Errorf("hammerredis %q --json = %v\nwant one JSON object {\"error\": ...} with %q", tt.args, r, tt.want)
			}
			if r.code != exitError || r.stderr != "" {
				t.Errorf("hammerredis %q --json = %v\nwant exit %d and nothing on stderr", tt.args, r, exitError)
			}
		})
	}
}
