package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hammer-go/hammerredis/internal/redistest"
)

func TestDemoRunsOnAPrivateServer(t *testing.T) {
	t.Setenv("REDIS_URL", "") // never a Redis from the environment
	var out, errOut bytes.Buffer
	if code := run([]string{"demo"}, &out, &errOut); code != exitOK {
		t.Fatalf("hammerredis demo exited %d\nstdout:\n%s\nstderr:\n%s", code, &out, &errOut)
	}
	for _, want := range []string{
		"Started a private redis-server",
		"CountHitN(\"user:42\", 5)",
		"DeleteBuckets(\"user:42\")  -> deleted 2 key(s)",
		"GetBucket(\"user:42:b\")    -> count 2, intact",
		"Recovered",
		"errors.Is ErrStopped: true",
		"Removed the private redis-server.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, &out)
		}
	}
}

func TestDemoAgainstAGivenURL(t *testing.T) {
	srv := redistest.New(t)
	var out, errOut bytes.Buffer
	if code := run([]string{"demo", "--redis-url", srv.URL()}, &out, &errOut); code != exitOK {
		t.Fatalf("hammerredis demo exited %d\nstdout:\n%s\nstderr:\n%s", code, &out, &errOut)
	}
	c := srv.Conn(t)
	n, err := c.Do("DBSIZE")
	if err != nil || n.(int64) != 0 {
		t.Errorf("DBSIZE after the demo = %v, %v; want 0: the demo cleans up its keys", n, err)
	}
}

func TestUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "Usage:"},
		{[]string{"--help"}, exitOK, "Commands:"},
		{[]string{"help", "demo"}, exitOK, "--redis-url"},
		{[]string{"demo", "--help"}, exitOK, "--redis-url"},
		{[]string{"nope"}, exitUsage, `unknown command "nope"`},
		{[]string{"demo", "--nope"}, exitUsage, "nope"},
	} {
		var out, errOut bytes.Buffer
		code := run(tt.args, &out, &errOut)
		if code != tt.code || !strings.Contains(out.String()+errOut.String(), tt.want) {
			t.Errorf("hammerredis %q = exit %d, output %q; want exit %d and %q", tt.args, code, out.String()+errOut.String(), tt.code, tt.want)
		}
	}
}
