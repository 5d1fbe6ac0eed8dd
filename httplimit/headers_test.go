package httplimit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dunglas/httpsfv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/hammer7"
	"github.com/hammer-go/hammerredis/httplimit"
)

// sfItem is one Item of a RateLimit or RateLimit-Policy field as an RFC
// 9651 parser reads it.
type sfItem struct {
	name   string
	params map[string]any
}

func (it sfItem) String() string {
	keys := make([]string, 0, len(it.params))
	for k := range it.params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s", it.name)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, it.params[k])
	}
	return b.String()
}

// parseField parses the values of a field with httpsfv: a List of Items
// whose values are Strings (Sections 3 and 4 of the drafts) and whose
// parameters q, w, r and t are Integers.
func parseField(t testing.TB, values []string) []sfItem {
	t.Helper()
	if len(values) == 0 {
		return nil
	}
	l, err := httpsfv.UnmarshalList(values)
	require.NoError(t, err, "%q", values)
	var items []sfItem
	for _, m := range l {
		it, ok := m.(httpsfv.Item)
		require.True(t, ok, "an inner list in %q", values)
		name, ok := it.Value.(string)
		require.True(t, ok, "the policy name %v of %q is a %T, not a String", it.Value, values, it.Value)
		out := sfItem{name: name, params: map[string]any{}}
		for _, k := range it.Params.Names() {
			v, _ := it.Params.Get(k)
			switch k {
			case "q", "w", "r", "t":
				n, ok := v.(int64)
				require.True(t, ok, "%s of %q is a %T, not an Integer", k, values, v)
				require.GreaterOrEqual(t, n, int64(0), "%s of %q", k, values)
			}
			out.params[k] = v
		}
		items = append(items, out)
	}
	return items
}

// draftFields returns a response's status and its RateLimit-Policy and
// RateLimit fields as parsed, "-" for a field left out, with Retry-After.
func draftFields(t testing.TB, code int, h http.Header) string {
	t.Helper()
	show := func(name string) string {
		items := parseField(t, h.Values(name))
		if items == nil {
			return "-"
		}
		s := make([]string, len(items))
		for i, it := range items {
			s[i] = it.String()
		}
		return "[" + strings.Join(s, ", ") + "]"
	}
	ra := "-"
	if v := h.Values("Retry-After"); len(v) > 0 {
		ra = strings.Join(v, ",")
	}
	return fmt.Sprintf("%d policy=%s ratelimit=%s retry-after=%s", code, show("RateLimit-Policy"), show("RateLimit"), ra)
}

func TestDraftHeadersOfALimiter(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	mw, err := httplimit.New(httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 2})
	require.NoError(t, err)
	h := mw(&app{})
	steps := []struct {
		advance       time.Duration
		policy, limit string // the fields as sent
		want          string // as parsed back
	}{
		{0, `"default";q=2;w=60`, `"default";r=1;t=40`,
			"200 policy=[default q=2 w=60] ratelimit=[default r=1 t=40] retry-after=-"},
		{time.Second, `"default";q=2;w=60`, `"default";r=0;t=39`,
			"200 policy=[default q=2 w=60] ratelimit=[default r=0 t=39] retry-after=-"},
		// Denied: t is when a request fits again, as Retry-After.
		{38_740 * time.Millisecond, `"default";q=2;w=60`, `"default";r=0;t=1`,
			"429 policy=[default q=2 w=60] ratelimit=[default r=0 t=1] retry-after=1"},
		{10 * time.Millisecond, `"default";q=2;w=60`, `"default";r=1;t=60`,
			"200 policy=[default q=2 w=60] ratelimit=[default r=1 t=60] retry-after=-"},
	}
	for i, s := range steps {
		f.clock.advance(s.advance)
		w := serve(h, request(client))
		assert.Equal(t, s.policy, w.Header().Get("RateLimit-Policy"), "step %d", i)
		assert.Equal(t, s.limit, w.Header().Get("RateLimit"), "step %d", i)
		assert.Equal(t, s.want, draftFields(t, w.Code, w.Header()), "step %d", i)
		for _, legacy := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "X-RateLimit-Limit"} {
			assert.Empty(t, w.Header().Values(legacy), "step %d", i)
		}
	}

	// A window that is not whole seconds has no w, which has no
	// sub-second precision (Section 3.1.3).
	mw, err = httplimit.New(httplimit.Config{Limiter: f.lim, Scale: 1500 * time.Millisecond, Limit: 100,
		IDPrefix: "http:subsecond:", PolicyName: `api "v1"`})
	require.NoError(t, err)
	f.clock.set(time.UnixMilli(1_700_000_001_000))
	w := serve(mw(&app{}), request(client))
	assert.Equal(t, `"api \"v1\"";q=100`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"api \"v1\"";r=99;t=2`, w.Header().Get("RateLimit"))
	assert.Equal(t, `200 policy=[api "v1" q=100] ratelimit=[api "v1" r=99 t=2] retry-after=-`, draftFields(t, w.Code, w.Header()))
}

func TestDraftHeadersOfAHammer7Limiter(t *testing.T) {
	type step struct {
		sleep time.Duration
		want  string
	}
	for _, tt := range []struct {
		name   string
		policy hammer7.Policy
		steps  []step
	}{
		{"fix_window", hammer7.FixWindow{Prefix: "F", Window: time.Minute, Limit: 1}, []step{
			{0, "200 policy=[default q=1 w=60] ratelimit=[default r=0] retry-after=-"},
			{20 * time.Second, "429 policy=[default q=1 w=60] ratelimit=[default r=0 t=40] retry-after=40"},
		}},
		{"sliding_window", hammer7.SlidingWindow{Prefix: "S", Window: 10 * time.Second, Limit: 1}, []step{
			{0, "200 policy=[default q=1 w=10] ratelimit=[default r=0] retry-after=-"},
			{3 * time.Second, "429 policy=[default q=1 w=10] ratelimit=[default r=0 t=7] retry-after=7"},
		}},
		// A bucket's w is the time it takes to fill: capacity/rate.
		{"leaky_bucket", hammer7.LeakyBucket{Prefix: "L", LeakPerSecond: 2, Capacity: 5}, []step{
			{0, "200 policy=[default q=5 w=3] ratelimit=[default r=4] retry-after=-"},
		}},
		{"token_bucket", hammer7.TokenBucket{Prefix: "T", RefillPerSecond: 1, Capacity: 1}, []step{
			{0, "200 policy=[default q=1 w=1] ratelimit=[default r=0] retry-after=-"},
			{100 * time.Millisecond, "429 policy=[default q=1 w=1] ratelimit=[default r=0 t=1] retry-after=1"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mw, err := httplimit.New(httplimit.Config{Hammer7: newLimiter7(t, tt.policy)})
				require.NoError(t, err)
				h := mw(&app7{})
				for i, s := range tt.steps {
					time.Sleep(s.sleep)
					w := serve(h, request(client))
					assert.Equal(t, s.want, draftFields(t, w.Code, w.Header()), "step %d", i)
				}
			})
		})
	}
}

// TestHeaderStyles: each style sends its fields and none of the others';
// Retry-After comes with every style.
func TestHeaderStyles(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	all := []string{"RateLimit-Policy", "RateLimit", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
		"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"}
	fields := func(w *httptest.ResponseRecorder) string {
		var s []string
		for _, name := range all {
			if v := w.Header().Values(name); len(v) > 0 {
				s = append(s, name+": "+strings.Join(v, ","))
			}
		}
		return fmt.Sprintf("%d %s", w.Code, strings.Join(s, " | "))
	}
	for _, tt := range []struct {
		style           httplimit.HeaderStyle
		allowed, denied string
	}{
		{httplimit.DraftHeaders,
			`200 RateLimit-Policy: "default";q=1;w=60 | RateLimit: "default";r=0;t=40`,
			`429 RateLimit-Policy: "default";q=1;w=60 | RateLimit: "default";r=0;t=40 | Retry-After: 40`},
		{httplimit.LegacyHeaders,
			`200 RateLimit-Policy: 1;w=60 | RateLimit-Limit: 1 | RateLimit-Remaining: 0 | RateLimit-Reset: 40`,
			`429 RateLimit-Policy: 1;w=60 | RateLimit-Limit: 1 | RateLimit-Remaining: 0 | RateLimit-Reset: 40 | Retry-After: 40`},
		{httplimit.XRateLimitHeaders,
			`200 X-RateLimit-Limit: 1 | X-RateLimit-Remaining: 0 | X-RateLimit-Reset: 40`,
			`429 X-RateLimit-Limit: 1 | X-RateLimit-Remaining: 0 | X-RateLimit-Reset: 40 | Retry-After: 40`},
		{httplimit.NoHeaders, `200 `, `429 Retry-After: 40`},
	} {
		t.Run(tt.style.String(), func(t *testing.T) {
			mw, err := httplimit.New(httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 1, Headers: tt.style,
				IDPrefix: "http:" + tt.style.String() + ":"})
			require.NoError(t, err)
			h := mw(&app{})
			assert.Equal(t, tt.allowed, fields(serve(h, request(client))))
			assert.Equal(t, tt.denied, fields(serve(h, request(client))))
		})
	}
	assert.Equal(t, "HeaderStyle(9)", httplimit.HeaderStyle(9).String())
}

// TestHeadersOverAnHTTPServer: the fields reach a real client through a
// real server, and parse back.
func TestHeadersOverAnHTTPServer(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	mw, err := httplimit.New(httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 1, PolicyName: "per-minute"})
	require.NoError(t, err)
	srv := httptest.NewServer(mw(&app{}))
	defer srv.Close()
	var got []string
	for range 2 {
		resp, err := srv.Client().Get(srv.URL)
		require.NoError(t, err)
		resp.Body.Close()
		got = append(got, draftFields(t, resp.StatusCode, resp.Header))
	}
	assert.Equal(t, []string{
		"200 policy=[per-minute q=1 w=60] ratelimit=[per-minute r=0 t=40] retry-after=-",
		"429 policy=[per-minute q=1 w=60] ratelimit=[per-minute r=0 t=40] retry-after=40",
	}, got)
}

func TestProblemDetails(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	mw, err := httplimit.New(httplimit.Config{Limiter: f.lim, Scale: time.Minute, Limit: 1, ProblemDetails: true,
		PolicyName: "per-minute"})
	require.NoError(t, err)
	a := &app{}
	h := mw(a)
	assert.Equal(t, "ok", serve(h, request(client)).Body.String(), "allowed: the next handler answers")
	w := serve(h, request(client))
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	assert.Equal(t, "40", w.Header().Get("Retry-After"))
	var p httplimit.Problem
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
	assert.Equal(t, httplimit.Problem{Type: "https://iana.org/assignments/http-problem-types#quota-exceeded",
		Title: "Quota Exceeded", Status: 429, ViolatedPolicies: []string{"per-minute"}}, p)
	assert.JSONEq(t, `{"type":"https://iana.org/assignments/http-problem-types#quota-exceeded",
		"title":"Quota Exceeded","status":429,"violated-policies":["per-minute"]}`, w.Body.String())
	assert.Equal(t, int64(1), a.calls.Load())
}

func TestNewValidatesTheHeaderOptions(t *testing.T) {
	lim := hammer.New(nil) // never called
	checker, err := hammer.NewChecker(&stubBackend{}, hammer.Config{Limits: []hammer.Limit{{Name: "a", Scale: time.Second, Max: 1}}})
	require.NoError(t, err)
	denied := http.NotFoundHandler()
	for _, tt := range []struct {
		name string
		cfg  httplimit.Config
		want string
	}{
		{"unknown style", httplimit.Config{Limiter: lim, Scale: time.Minute, Headers: 4}, "Config.Headers HeaderStyle(4) is not a HeaderStyle"},
		{"negative style", httplimit.Config{Limiter: lim, Scale: time.Minute, Headers: -1}, "Config.Headers HeaderStyle(-1)"},
		{"problem details and a denied handler", httplimit.Config{Limiter: lim, Scale: time.Minute, ProblemDetails: true,
			DeniedHandler: denied}, "Config.ProblemDetails and Config.DeniedHandler are both set"},
		{"non-ASCII policy name", httplimit.Config{Limiter: lim, Scale: time.Minute, PolicyName: "café"}, "must be printable ASCII"},
		{"control character", httplimit.Config{Limiter: lim, Scale: time.Minute, PolicyName: "a\nb"}, "must be printable ASCII"},
		{"long policy name", httplimit.Config{Limiter: lim, Scale: time.Minute, PolicyName: strings.Repeat("n", 65)},
			"must be 1 to 64 bytes long"},
		{"policy name of a checker", httplimit.Config{Checker: checker, PolicyName: "x"},
			`Config.PolicyName "x" is for Config.Limiter and Config.Hammer7`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := httplimit.New(tt.cfg)
			assert.Nil(t, mw)
			assert.ErrorIs(t, err, hammerredis.ErrInvalid)
			assert.ErrorContains(t, err, tt.want)
		})
	}
	_, err = httplimit.New(httplimit.Config{Limiter: lim, Scale: time.Minute, PolicyName: strings.Repeat("n", 64)})
	assert.NoError(t, err)
}

// sameField reports whether two values of a field are the same List to an
// RFC 9651 parser: the drafts write "," or ", " between members.
func sameField(t *testing.T, want, got string) {
	t.Helper()
	w, err := httpsfv.UnmarshalList([]string{want})
	require.NoError(t, err, "%s", want)
	g, err := httpsfv.UnmarshalList([]string{got})
	require.NoError(t, err, "%s", got)
	ws, _ := httpsfv.Marshal(w)
	gs, _ := httpsfv.Marshal(g)
	assert.Equal(t, ws, gs, "want %s, got %s", want, got)
}

// TestDraftExamples: configured as the examples of
// draft-ietf-httpapi-ratelimit-headers-10 and -11 describe, the middleware
// sends their field values (the same in both drafts).
func TestDraftExamples(t *testing.T) {
	f := start(t, nil, hammerredis.Options{})
	// minute returns the clock at s seconds into a minute window.
	minute := func(s int64) time.Time { return time.UnixMilli(1_699_999_980_000 + s*1000) }
	for _, tt := range []struct {
		section       string
		name          string
		scale         time.Duration
		limit         int64
		at            time.Time
		before        int // requests made before the one shown
		policy, field string
		code          int
		retryAfter    string
	}{
		{section: "3.2", name: "default", scale: 10 * time.Second, limit: 100, at: minute(0),
			policy: `"default";q=100;w=10`, field: `"default";r=99;t=10`, code: 200},
		{section: "4, 4.2", name: "default", scale: time.Minute, limit: 51, at: minute(30),
			policy: `"default";q=51;w=60`, field: `"default";r=50;t=30`, code: 200},
		{section: "B.1.1", name: "default", scale: time.Minute, limit: 1, at: minute(10),
			policy: `"default";q=1;w=60`, field: `"default";r=0;t=50`, code: 200},
		{section: "B.1.3", name: "basic", scale: time.Minute, limit: 100, at: minute(2), before: 39,
			policy: `"basic";q=100;w=60`, field: `"basic";r=60;t=58`, code: 200},
		{section: "B.1.4", name: "default", scale: time.Minute, limit: 1, at: minute(55), before: 1,
			policy: `"default";q=1;w=60`, field: `"default";r=0;t=5`, code: 429, retryAfter: "5"},
		{section: "B.2.1", name: "fixedwindow", scale: time.Minute, limit: 100, at: minute(10),
			policy: `"fixedwindow";q=100;w=60`, field: `"fixedwindow";r=99;t=50`, code: 200},
	} {
		t.Run(tt.section, func(t *testing.T) {
			mw, err := httplimit.New(httplimit.Config{Limiter: f.lim, Scale: tt.scale, Limit: tt.limit,
				PolicyName: tt.name, IDPrefix: "http:" + tt.section + ":"})
			require.NoError(t, err)
			h := mw(&app{})
			f.clock.set(tt.at)
			for range tt.before {
				serve(h, request(client))
			}
			w := serve(h, request(client))
			assert.Equal(t, tt.code, w.Code)
			assert.Equal(t, tt.policy, w.Header().Get("RateLimit-Policy"))
			assert.Equal(t, tt.field, w.Header().Get("RateLimit"))
			assert.Equal(t, tt.retryAfter, w.Header().Get("Retry-After"))
		})
	}

	// Several policies (Sections 3 and 3.2, where the drafts write ","
	// between them; the middleware writes ", ", as RFC 9651 serializes).
	for _, tt := range []struct {
		section string
		limits  []hammer.Limit
		policy  string
	}{
		{"3", []hammer.Limit{{Name: "burst", Scale: time.Minute, Max: 100}, {Name: "daily", Scale: 24 * time.Hour, Max: 1000}},
			`"burst";q=100;w=60,"daily";q=1000;w=86400`},
		{"3.2", []hammer.Limit{{Name: "permin", Scale: time.Minute, Max: 50}, {Name: "perhr", Scale: time.Hour, Max: 1000}},
			`"permin";q=50;w=60,"perhr";q=1000;w=3600`},
	} {
		t.Run(tt.section+" several", func(t *testing.T) {
			checker := newChecker(t, f.b, f.clock, hammer.Config{Limits: tt.limits})
			h, _ := draftHandler(t, httplimit.Config{Checker: checker})
			w := serve(h, request(client))
			sameField(t, tt.policy, w.Header().Get("RateLimit-Policy"))
			assert.Equal(t, strings.ReplaceAll(tt.policy, `,"`, `, "`), w.Header().Get("RateLimit-Policy"))
		})
	}

	// Appendix B.3.2 (draft 10), B.3.1 (draft 11): 1000 an hour and 5000 a
	// day; the client used 4900 in the day's first 14 hours: RateLimit names
	// the day, the closest to denying, 100 left for 10 hours.
	t.Run("B.3.2 of draft 10, B.3.1 of draft 11", func(t *testing.T) {
		day := time.Date(2023, 11, 14, 0, 0, 0, 0, time.UTC)
		clock := newClock(day.Add(13*time.Hour + 30*time.Minute))
		checker := newChecker(t, newMemory(t), clock, hammer.Config{Limits: []hammer.Limit{
			{Name: "hour", Scale: time.Hour, Max: 1000},
			{Name: "day", Scale: 24 * time.Hour, Max: 5000},
		}})
		_, err := checker.CheckN(context.Background(), 4899, "http:ip:203.0.113.7")
		require.NoError(t, err)
		clock.set(day.Add(14 * time.Hour))
		h, _ := draftHandler(t, httplimit.Config{Checker: checker})
		w := serve(h, request(client))
		assert.Equal(t, http.StatusOK, w.Code)
		assert.Equal(t, `"hour";q=1000;w=3600, "day";q=5000;w=86400`, w.Header().Get("RateLimit-Policy"))
		assert.Equal(t, `"day";r=100;t=36000`, w.Header().Get("RateLimit"))
	})
}
