package httplimit_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/httplimit"
	"github.com/hammer-go/hammerredis/memory"
)

// Two limits on every request, each with its own key: 2 a minute per API
// key, 100 an hour per client IP, checked together in one call. RateLimit
// names the limit closest to denying; RateLimit-Policy lists both.
func ExampleConfig_checker() {
	backend, err := memory.New(memory.Options{ExpiryMs: 3_600_000}) // or hammerredis.Start(...)
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	checker, err := hammer.NewChecker(backend, hammer.Config{Limits: []hammer.Limit{
		{Name: "per-key", Scale: time.Minute, Max: 2},
		{Name: "per-ip", Scale: time.Hour, Max: 100},
	}})
	if err != nil {
		log.Fatal(err)
	}
	// A fixed clock keeps the example's windows from ending between its
	// requests; a service uses the checker as it is.
	now := time.Date(2030, 1, 1, 12, 0, 30, 0, time.UTC)
	checker = checker.WithClock(func() time.Time { return now })

	limit, err := httplimit.New(httplimit.Config{
		Checker: checker,
		Keys:    []httplimit.KeyFunc{httplimit.Header("X-Api-Key"), httplimit.ClientIP(nil)},
	})
	if err != nil {
		log.Fatal(err)
	}
	h := limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := httplimit.CheckResultFrom(r.Context())
		fmt.Fprintf(w, "per-ip has %d left", d.Limits[1].Remaining)
	}))

	for _, apiKey := range []string{"alice", "alice", "alice", "bob"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "192.0.2.1:1234"
		r.Header.Set("X-Api-Key", apiKey)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Printf("%s: %d RateLimit: %s Retry-After: %q %s\n", apiKey, w.Code, w.Header().Get("RateLimit"),
			w.Header().Get("Retry-After"), strings.TrimSpace(w.Body.String()))
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	r.Header.Set("X-Api-Key", "bob")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println("RateLimit-Policy:", w.Header().Get("RateLimit-Policy"))
	// Output:
	// alice: 200 RateLimit: "per-key";r=1;t=30 Retry-After: "" per-ip has 99 left
	// alice: 200 RateLimit: "per-key";r=0;t=30 Retry-After: "" per-ip has 98 left
	// alice: 429 RateLimit: "per-key";r=0;t=30 Retry-After: "30" Too Many Requests: rate limit exceeded
	// bob: 200 RateLimit: "per-key";r=1;t=30 Retry-After: "" per-ip has 96 left
	// RateLimit-Policy: "per-key";q=2;w=60, "per-ip";q=100;w=3600
}

// The same response in each HeaderStyle: the drafts' fields (the default),
// draft 06's separate fields, the X-RateLimit fields, and none. A Shadow
// limit shows with the hammer-shadow parameter, and never denies.
func ExampleHeaderStyle() {
	backend, err := memory.New(memory.Options{ExpiryMs: 60_000})
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	checker, err := hammer.NewChecker(backend, hammer.Config{Limits: []hammer.Limit{
		{Name: "per-minute", Scale: time.Minute, Max: 100},
		{Name: "new-per-second", Scale: time.Second, Max: 10, Shadow: true},
	}})
	if err != nil {
		log.Fatal(err)
	}
	now := time.Date(2030, 1, 1, 12, 0, 30, 0, time.UTC)
	checker = checker.WithClock(func() time.Time { return now })

	for _, style := range []httplimit.HeaderStyle{httplimit.DraftHeaders, httplimit.LegacyHeaders,
		httplimit.XRateLimitHeaders, httplimit.NoHeaders} {
		limit, err := httplimit.New(httplimit.Config{Checker: checker, Headers: style,
			IDPrefix: "http:" + style.String() + ":"})
		if err != nil {
			log.Fatal(err)
		}
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		limit(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(w, r)
		fmt.Println(style)
		for _, name := range []string{"RateLimit-Policy", "RateLimit", "RateLimit-Limit", "RateLimit-Remaining",
			"RateLimit-Reset", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
			if v := w.Header().Get(name); v != "" {
				fmt.Printf("  %s: %s\n", name, v)
			}
		}
	}
	// Output:
	// draft
	//   RateLimit-Policy: "per-minute";q=100;w=60, "new-per-second";q=10;w=1;hammer-shadow
	//   RateLimit: "per-minute";r=99;t=30
	// legacy
	//   RateLimit-Policy: 100;w=60, 10;w=1;hammer-shadow
	//   RateLimit-Limit: 100
	//   RateLimit-Remaining: 99
	//   RateLimit-Reset: 30
	// x-ratelimit
	//   X-RateLimit-Limit: 100
	//   X-RateLimit-Remaining: 99
	//   X-RateLimit-Reset: 30
	// none
}

// With ProblemDetails, a denied request gets the drafts' quota-exceeded
// problem type (RFC 9457), naming the limits that denied it.
func ExampleConfig_problemDetails() {
	backend, err := memory.New(memory.Options{ExpiryMs: 60_000})
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	checker, err := hammer.NewChecker(backend, hammer.Config{Limits: []hammer.Limit{
		{Name: "daily", Scale: 24 * time.Hour, Max: 0}, // denies every request
	}})
	if err != nil {
		log.Fatal(err)
	}
	limit, err := httplimit.New(httplimit.Config{Checker: checker, ProblemDetails: true})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(limit(http.NotFoundHandler()))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After") == "")
	fmt.Print(string(body))
	// Output:
	// 429 Too Many Requests application/problem+json true
	// {"type":"https://iana.org/assignments/http-problem-types#quota-exceeded","title":"Quota Exceeded","status":429,"violated-policies":["daily"]}
}
