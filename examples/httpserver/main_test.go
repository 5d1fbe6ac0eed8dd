package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/hammer-go/hammerredis/internal/redistest"
)

func TestRunInProcess(t *testing.T) { testRun(t, "") }

func TestRunOnRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a redis-server")
	}
	testRun(t, redistest.New(t).URL())
}

// testRun serves the example, calls each route until its limit denies,
// then stops it.
func testRun(t *testing.T, redisURL string) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, lis, redisURL, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	base := "http://" + lis.Addr().String()
	do := func(method, path string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-API-Key", "alice")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	// 10 a second and 1000 an hour: one of the first 1001 requests is
	// denied, wherever the windows' edges fall.
	var denied *http.Response
	for i := 1; i <= 1001 && denied == nil; i++ {
		switch resp := do("GET", "/api/items/42"); resp.StatusCode {
		case http.StatusOK:
			if i == 1 && !strings.Contains(resp.Header.Get("RateLimit-Policy"), `"per-hour";q=1000;w=3600`) {
				t.Errorf("RateLimit-Policy = %q; want the per-hour limit in it", resp.Header.Get("RateLimit-Policy"))
			}
		case http.StatusTooManyRequests:
			denied = resp
		default:
			t.Fatalf("GET /api/items/42: %s", resp.Status)
		}
	}
	if denied == nil {
		t.Fatal("no request of 1001 was denied")
	}
	policy := denied.Header.Get("RateLimit-Policy")
	for _, name := range []string{`"per-second"`, `"per-hour"`, `"ip-per-second"`, `"per-day"`} {
		if !strings.Contains(policy, name) {
			t.Errorf("RateLimit-Policy = %q; want %s in it", policy, name)
		}
	}
	if !strings.Contains(policy, "hammer-shadow") {
		t.Errorf("RateLimit-Policy = %q; want the shadow limit marked", policy)
	}
	if denied.Header.Get("Retry-After") == "" || denied.Header.Get("RateLimit") == "" {
		t.Errorf("a 429 without Retry-After or RateLimit: %v", denied.Header)
	}

	// 5 logins a minute: one of the first 11 is denied, even across a
	// minute's edge.
	loginDenied := false
	for i := 1; i <= 11 && !loginDenied; i++ {
		loginDenied = do("POST", "/login").StatusCode == http.StatusTooManyRequests
	}
	if !loginDenied {
		t.Error("no login of 11 was denied")
	}
	for range 20 {
		if resp := do("GET", "/healthz"); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /healthz: %s; want it never limited", resp.Status)
		}
	}
}
