package main

import (
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/internal/redistest"
)

// Two limits on one key, as "limits" flags: a narrow Hammer 6 window (2
// per 365 days) and a broad Hammer 7 fixed window (1000 per 365 days).
var (
	narrow = []string{"--limit", "name=narrow,scale=" + scale + ",max=2"}
	broad  = []string{"--limit", "name=broad,algorithm=fix_window,prefix=B,scale=" + scale + ",limit=1000"}
)

// broadCount returns the count of the broad limit of user:42 in srv.
func broadCount(t *testing.T, srv *redistest.Server) int64 {
	t.Helper()
	c := srv.Conn(t)
	keys, err := redis.Strings(c.Do("KEYS", "B:broad:user:42:*"))
	if err != nil || len(keys) != 1 {
		t.Fatalf("KEYS B:broad:user:42:* = %q, %v; want one key", keys, err)
	}
	n, err := redis.Int64(c.Do("GET", keys[0]))
	if err != nil {
		t.Fatalf("GET %s: %v", keys[0], err)
	}
	return n
}

func TestLimitsEachCountsEveryLimit(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t)
	url := []string{"--redis-url", srv.URL()}
	want(t, exitOK, `^allowed\n  narrow  allowed  count 1 of 2, 1 remaining, resets in \S+\n  broad   allowed  count 1 of 1000, 999 remaining, resets in \S+\n$`,
		args([]string{"limits", "user:42"}, narrow, broad, url)...)
	want(t, exitOK, `^allowed\n  narrow  allowed  count 2 of 2, 0 remaining`, args([]string{"limits"}, narrow, broad, url, []string{"user:42"})...)
	// Denied by the narrow limit; the broad one counts it anyway, as
	// Hammer does.
	want(t, exitDenied, `^denied, retry in \S+\n  narrow  denied  count 3 of 2, 0 remaining, .*\n  broad   allowed  count 3 of 1000`,
		args([]string{"limits", "user:42"}, narrow, broad, url)...)
	if n := broadCount(t, srv); n != 3 {
		t.Errorf("the broad count = %d; want 3", n)
	}
}

func TestLimitsAllOrNothingCountsNothingWhenDenied(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t)
	url := []string{"--redis-url", srv.URL(), "--all-or-nothing"}
	for range 2 {
		want(t, exitOK, `^allowed\n`, args([]string{"limits", "user:42"}, narrow, broad, url)...)
	}
	want(t, exitDenied, `^denied, retry in \S+ \(counted in no limit\)\n  narrow  denied  count 2 of 2`,
		args([]string{"limits", "user:42"}, narrow, broad, url)...)
	if n := broadCount(t, srv); n != 2 {
		t.Errorf("the broad count = %d; want 2: the denied request counts in no limit", n)
	}
}

func TestLimitsJSONShadowAndPerLimitKeys(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t)
	url := []string{"--redis-url", srv.URL(), "--json"}
	shadow := []string{"--limit", "name=ip,scale=" + scale + ",max=0,shadow,key=203.0.113.7"}
	r := want(t, exitOK, `"allowed":true`, args([]string{"limits", "api-key-1"}, narrow, shadow, url)...)
	if r.stderr != "" {
		t.Errorf("stderr = %q; want nothing: the shadow limit's log line goes to stderr only with --verbose", r.stderr)
	}
	m := decode(t, r, "key", "allowed", "charged", "limits")
	limits, _ := m["limits"].([]any)
	if len(limits) != 2 {
		t.Fatalf("limits = %v; want 2", m["limits"])
	}
	ip, _ := limits[1].(map[string]any)
	if ip["name"] != "ip" || ip["key"] != "203.0.113.7" || ip["allowed"] != false || ip["shadow"] != true || ip["never"] != true {
		t.Errorf("the shadow limit = %v; want ip, key 203.0.113.7, not allowed, shadow, never", ip)
	}
	keys, err := redis.Strings(srv.Conn(t).Do("KEYS", "Hammer:Redis:ip:203.0.113.7:*"))
	if err != nil || len(keys) != 1 {
		t.Errorf("the shadow limit's bucket: KEYS = %q, %v; want one bucket: shadow limits count", keys, err)
	}
}

func TestLimitsUsageErrors(t *testing.T) {
	t.Parallel()
	url := []string{"--redis-url", "redis://127.0.0.1:1"} // never dialed: usage errors come first
	for _, tt := range []struct {
		name string
		args []string
		err  string
	}{
		{"no limit", nil, "missing --limit"},
		{"no name", []string{"--limit", "scale=1s,max=1"}, "missing name="},
		{"unknown field", []string{"--limit", "name=a,scale=1s,max=1,burst=3"}, `unknown field "burst"`},
		{"hammer 6 without max", []string{"--limit", "name=a,scale=1s"}, "needs scale= and max="},
		{"hammer 7 field on hammer 6", []string{"--limit", "name=a,scale=1s,max=1,rate=3"}, "rate= is for Hammer 7"},
		{"max on hammer 7", []string{"--limit", "name=a,algorithm=fix_window,prefix=P,scale=1s,max=1"}, "max= is for Hammer 6"},
		{"bad algorithm", []string{"--limit", "name=a,algorithm=gcra,prefix=P,rate=1,limit=1"}, `algorithm="gcra"`},
		{"bad number", []string{"--limit", "name=a,scale=1s,max=ten"}, `max="ten": not an integer`},
		{"twice", []string{"--limit", "name=a,name=b,scale=1s,max=1"}, "name given twice"},
		{"same name", []string{"--limit", "name=a,scale=1s,max=1", "--limit", "name=a,scale=1m,max=1"}, `name "a" is used twice`},
		{"out of range", []string{"--limit", "name=a,algorithm=token_bucket,prefix=P,rate=0,limit=1"}, "rate 0"},
	} {
		r := hr(t, args([]string{"limits", "k"}, tt.args, url)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tt.err) {
			t.Errorf("%s: %v\nwant exit %d and stderr holding %q", tt.name, r, exitUsage, tt.err)
		}
	}
}
