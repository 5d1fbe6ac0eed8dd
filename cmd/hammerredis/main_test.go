package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/internal/redistest"
)

// scale is the window of the tests' checks: 365 days, so that no test run
// sees its window change between two checks.
const scale = "8760h"

// unreachable is a Redis URL where nothing listens. Tests that must fail
// before connecting use it too, so that nothing ever reaches a real Redis.
const unreachable = "redis://127.0.0.1:1"

// rfc3339ms matches a time printed by the command.
var rfc3339ms = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

var (
	binDir    string // removed by TestMain
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hammerredis-cmd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary builds the command, once per test binary, and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		// go test puts its own GOROOT/bin first on PATH.
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("the go command is not on PATH: %w", err)
			return
		}
		binPath = filepath.Join(binDir, "hammerredis")
		if out, err := exec.Command(goBin, "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// result is what one run of the command did.
type result struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %v\nstdout:\n%s\nstderr:\n%s", r.code, r.elapsed, r.stdout, r.stderr)
}

// hr runs the built command with args, with $REDIS_URL empty: the tests
// always name their Redis.
func hr(t *testing.T, args ...string) result {
	t.Helper()
	return hrWith(t, "", "", args...)
}

// hrWith is hr with $REDIS_URL set to redisURL and stdin as the command's
// standard input.
func hrWith(t *testing.T, redisURL, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = append(os.Environ(), "REDIS_URL="+redisURL)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String(), elapsed: time.Since(start)}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		r.code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("hammerredis %q: %v", args, err)
	}
	return r
}

// want runs the command and checks its exit status and that its stdout
// matches the regular expression stdout.
func want(t *testing.T, code int, stdout string, args ...string) result {
	t.Helper()
	r := hr(t, args...)
	if r.code != code || !regexp.MustCompile(stdout).MatchString(r.stdout) {
		t.Errorf("hammerredis %q = %v\nwant exit %d and stdout matching %q", args, r, code, stdout)
	}
	return r
}

// decode parses the command's stdout as one JSON object and checks that it
// has exactly the fields keys.
func decode(t *testing.T, r result, keys ...string) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%v", err, r)
	}
	if dec.More() {
		t.Errorf("stdout holds more than one JSON value:\n%v", r)
	}
	got := make([]string, 0, len(m))
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	keys = slices.Sorted(slices.Values(keys))
	if !slices.Equal(got, keys) {
		t.Errorf("JSON fields = %q, want %q\n%v", got, keys, r)
	}
	return m
}

// fields checks the values of some fields of a decoded JSON object.
func fields(t *testing.T, m map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if m[k] != v {
			t.Errorf("JSON field %q = %#v, want %#v (in %v)", k, m[k], v, m)
		}
	}
}

var (
	checkFields   = []string{"id", "allowed", "count", "limit", "remaining", "increment", "scale_ms", "reset_ms", "reset_at"}
	inspectFields = []string{"id", "exists", "count", "limit", "remaining", "scale_ms", "ms_to_next_bucket",
		"created", "updated", "created_ms", "updated_ms"}
)

func TestCheckAllowsThenDenies(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t)
	url := srv.URL()
	// Flags after the ID, before it, and around it.
	want(t, exitOK, `^allowed: count 1 of 2, 1 remaining, resets in \S+\n$`,
		"check", "user:42", "--scale", scale, "--limit", "2", "--redis-url", url)
	want(t, exitOK, `^allowed: count 2 of 2, 0 remaining, resets in \S+\n$`,
		"check", "--scale", scale, "--limit=2", "--redis-url", url, "user:42")
	want(t, exitDenied, `^denied: count 3 of 2, retry in \S+\n$`,
		"check", "-scale", scale, "user:42", "-limit", "2", "-redis-url", url)

	// The backend's default prefix: the services' buckets.
	keys, err := redis.Strings(srv.Conn(t).Do("KEYS", "*"))
	if err != nil || len(keys) != 1 || !regexp.MustCompile(`^Hammer:Redis:user:42:\d+$`).MatchString(keys[0]) {
		t.Errorf("KEYS * = %q, %v; want one key Hammer:Redis:user:42:<bucket>", keys, err)
	}
}

func TestCheckInc(t *testing.T) {
	t.Parallel()
	url := redistest.New(t).URL()
	want(t, exitOK, `^allowed: count 5 of 10, 5 remaining, resets in \S+\n$`,
		"check", "user:7", "--inc", "5", "--scale", scale, "--limit", "10", "--redis-url", url)
	want(t, exitDenied, `^denied: count 11 of 10, retry in \S+\n$`,
		"check", "user:7", "--inc", "6", "--scale", scale, "--limit", "10", "--redis-url", url)
	// Limit 0 denies every hit, and counts it.
	want(t, exitDenied, `^denied: count 1 of 0, `,
		"check", "user:8", "--scale", scale, "--limit", "0", "--redis-url", url)
}

func TestInspect(t *testing.T) {
	t.Parallel()
	url := redistest.New(t).URL()
	inspect := []string{"inspect", "user:42", "--scale", scale, "--limit", "10", "--redis-url", url}
	want(t, exitOK, `^no bucket: count 0 of 10, 10 remaining, next bucket in \d+ ms\n$`, inspect...)
	for range 2 {
		want(t, exitOK, `^allowed`, "check", "user:42", "--scale", scale, "--limit", "10", "--redis-url", url)
	}
	for range 2 { // inspecting does not count
		r := want(t, exitOK, `^count 2 of 10, 8 remaining, next bucket in \d+ ms\ncreated \S+, updated \S+\n$`, inspect...)
		m := regexp.MustCompile(`created (\S+), updated (\S+)`).FindStringSubmatch(r.stdout)
		if m == nil || !rfc3339ms.MatchString(m[1]) || !rfc3339ms.MatchString(m[2]) || m[1] > m[2] {
			t.Errorf("created and updated are not RFC 3339 times with ms, created first:\n%v", r)
		}
	}
	// Another window of the same id has no bucket yet.
	want(t, exitOK, `^no bucket: count 0 of 3, 3 remaining`,
		"inspect", "user:42", "--scale", "1000h", "--limit", "3", "--redis-url", url)
}

func TestDelete(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t)
	url := srv.URL()
	// Two buckets of user:42, in two windows, and one of user:42:b, whose
	// name starts with user:42's.
	for _, c := range [][]string{{"user:42", scale}, {"user:42", "1000h"}, {"user:42:b", scale}} {
		want(t, exitOK, `^allowed`, "check", c[0], "--scale", c[1], "--limit", "5", "--redis-url", url)
	}
	want(t, exitOK, `^deleted 2 bucket\(s\) of "user:42"\n$`, "delete", "user:42", "--redis-url", url)
	want(t, exitOK, `^deleted 0 bucket\(s\) of "user:42"\n$`, "delete", "--redis-url", url, "user:42")
	want(t, exitOK, `^count 1 of 5, `, "inspect", "user:42:b", "--scale", scale, "--limit", "5", "--redis-url", url)
	want(t, exitOK, `^no bucket: `, "inspect", "user:42", "--scale", scale, "--limit", "5", "--redis-url", url)
}

func TestKeyPrefix(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t)
	url := srv.URL()
	want(t, exitOK, `^allowed: count 1 of 5`,
		"check", "user:42", "--scale", scale, "--limit", "5", "--key-prefix", "app:", "--redis-url", url)
	want(t, exitOK, `^no bucket: `, "inspect", "user:42", "--scale", scale, "--limit", "5", "--redis-url", url)
	want(t, exitOK, `^count 1 of 5, `,
		"inspect", "user:42", "--scale", scale, "--limit", "5", "--key-prefix", "app:", "--redis-url", url)
	keys, err := redis.Strings(srv.Conn(t).Do("KEYS", "*"))
	if err != nil || len(keys) != 1 || !strings.HasPrefix(keys[0], "app:user:42:") {
		t.Errorf("KEYS * = %q, %v; want one key app:user:42:<bucket>", keys, err)
	}
}

func TestIDAfterDoubleDash(t *testing.T) {
	t.Parallel()
	url := redistest.New(t).URL()
	want(t, exitOK, `^allowed: count 1 of 5`, "check", "--scale", scale, "--limit", "5", "--redis-url", url, "--", "-7")
	want(t, exitOK, `^count 1 of 5, `, "inspect", "--scale", scale, "--limit", "5", "--redis-url", url, "--", "-7")
}

func TestJSON(t *testing.T) {
	t.Parallel()
	url := redistest.New(t).URL()
	window := []string{"--scale", scale, "--limit", "1", "--redis-url", url, "--json"}

	r := want(t, exitOK, ``, append([]string{"inspect", "user:42"}, window...)...)
	m := decode(t, r, inspectFields...)
	fields(t, m, map[string]any{"id": "user:42", "exists": false, "count": 0.0, "limit": 1.0, "remaining": 1.0,
		"scale_ms": 365 * 24 * 3600 * 1000.0, "created": nil, "updated": nil, "created_ms": nil, "updated_ms": nil})
	if ms, ok := m["ms_to_next_bucket"].(float64); !ok || ms <= 0 {
		t.Errorf("ms_to_next_bucket = %#v, want a positive number", m["ms_to_next_bucket"])
	}

	r = want(t, exitOK, ``, append([]string{"check", "user:42"}, window...)...)
	m = decode(t, r, checkFields...)
	fields(t, m, map[string]any{"id": "user:42", "allowed": true, "count": 1.0, "limit": 1.0, "remaining": 0.0,
		"increment": 1.0})
	if ms, ok := m["reset_ms"].(float64); !ok || ms <= 0 {
		t.Errorf("reset_ms = %#v, want a positive number", m["reset_ms"])
	}
	if s, ok := m["reset_at"].(string); !ok || !rfc3339ms.MatchString(s) {
		t.Errorf("reset_at = %#v, want an RFC 3339 time with ms", m["reset_at"])
	}

	r = want(t, exitDenied, ``, append([]string{"check", "user:42", "--inc", "2"}, window...)...)
	fields(t, decode(t, r, checkFields...), map[string]any{"allowed": false, "count": 3.0, "remaining": 0.0, "increment": 2.0})

	r = want(t, exitOK, ``, append([]string{"inspect", "user:42"}, window...)...)
	m = decode(t, r, inspectFields...)
	fields(t, m, map[string]any{"exists": true, "count": 3.0, "remaining": 0.0})
	for _, k := range []string{"created", "updated"} {
		s, ok := m[k].(string)
		ms, msOK := m[k+"_ms"].(float64)
		if !ok || !rfc3339ms.MatchString(s) || !msOK || time.UnixMilli(int64(ms)).UTC().Format(timeLayout) != s {
			t.Errorf("%s = %#v and %s_ms = %#v, want the same time as RFC 3339 with ms and as ms", k, m[k], k, m[k+"_ms"])
		}
	}

	r = want(t, exitOK, ``, "delete", "user:42", "--json", "--redis-url", url)
	fields(t, decode(t, r, "id", "deleted"), map[string]any{"id": "user:42", "deleted": 1.0})
}

func TestErrors(t *testing.T) {
	t.Parallel()
	check := func(args ...string) []string {
		return append([]string{"check", "user:42", "--scale", "1m", "--limit", "10", "--redis-url", unreachable}, args...)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string // in stderr, or in the JSON error with --json
	}{
		{"missing ID", []string{"check", "--scale", "1m", "--limit", "10", "--redis-url", unreachable}, "missing ID"},
		{"empty ID", []string{"check", "", "--scale", "1m", "--limit", "10", "--redis-url", unreachable}, "empty"},
		{"extra args", check("user:43"), `unexpected arguments after the ID: ["user:43"]`},
		{"scale 0", check("--scale", "0"), "--scale 0s: want a whole number of milliseconds, at least 1ms"},
		{"scale under 1ms", check("--scale", "500us"), "--scale 500µs"},
		{"scale not whole ms", check("--scale", "1.5ms"), "--scale 1.5ms"},
		{"scale not a duration", check("--scale", "1 minute"), `invalid value "1 minute" for flag -scale`},
		{"scale missing", []string{"check", "user:42", "--limit", "1", "--redis-url", unreachable}, "missing --scale"},
		{"limit missing", []string{"inspect", "user:42", "--scale", "1m", "--redis-url", unreachable}, "missing --limit"},
		{"negative limit", check("--limit", "-1"), "--limit -1: must not be negative"},
		{"inc 0", check("--inc", "0"), "--inc 0: must be at least 1"},
		{"unknown flag", check("--nope"), "flag provided but not defined: -nope"},
		{"timeout 0", check("--timeout", "0"), "--timeout 0s: must be positive"},
		{"inspect extra args", []string{"inspect", "a", "b", "--scale", "1m", "--limit", "1", "--redis-url", unreachable}, "unexpected arguments"},
		{"delete missing ID", []string{"delete", "--redis-url", unreachable}, "missing ID"},
		{"bad URL", check("--redis-url", "http://127.0.0.1:1"), `unknown scheme "http"`},
		{"unreachable check", check("--timeout", "300ms"), "no connection to redis://127.0.0.1:1 within 300ms"},
		{"unreachable inspect", []string{"inspect", "a", "--scale", "1m", "--limit", "1", "--redis-url", unreachable, "--timeout", "300ms"}, "no connection"},
		{"unreachable delete", []string{"delete", "a", "--redis-url", unreachable, "--timeout", "300ms"}, "no connection"},
		{"password", check("--redis-url", "redis://u:s3cret@127.0.0.1:1/2", "--timeout", "300ms"), "no connection to redis://127.0.0.1:1/2 within"},
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
			// Nothing on stderr but the warning about a password in --redis-url.
			if r.code != exitError || (r.stderr != "" && !strings.HasPrefix(r.stderr, "hammerredis check: warning: the password")) {
				t.Errorf("hammerredis %q --json = %v\nwant exit %d and nothing on stderr", tt.args, r, exitError)
			}
			for _, out := range []string{r.stdout, r.stderr} {
				if strings.Contains(out, "s3cret") {
					t.Errorf("hammerredis %q printed the password:\n%v", tt.args, r)
				}
			}
		})
	}
}

// TestPasswordStaysOutOfArgv: a URL with a password reaches the command
// through $REDIS_URL, --redis-url-file FILE or --redis-url-file - (stdin)
// without a warning; in --redis-url it still works but draws a warning on
// stderr, from every subcommand, which never shows the password.
func TestPasswordStaysOutOfArgv(t *testing.T) {
	t.Parallel()
	const pw = "Pw-4c1d-s3cret"
	srv := redistest.New(t, redistest.Options{Args: []string{"--requirepass", pw}})
	withPW := "redis://:" + pw + "@" + srv.Addr()
	dir := t.TempDir()
	file := filepath.Join(dir, "url")
	if err := os.WriteFile(file, []byte(withPW+"\n# the first line only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"+withPW), 0o600); err != nil {
		t.Fatal(err)
	}
	const warning = "warning: the password in --redis-url is visible to other users"
	inspect := []string{"inspect", "user:42", "--scale", scale, "--limit", "5"}
	for _, tt := range []struct {
		name           string
		env, stdin     string
		args           []string
		code           int
		stdout, stderr string // stdout matches; stderr contains, "" for empty
	}{
		{"$REDIS_URL", withPW, "", inspect, exitOK, `^no bucket: `, ""},
		{"--redis-url-file", "", "", append(inspect, "--redis-url-file", file), exitOK, `^no bucket: `, ""},
		{"--redis-url-file - reads stdin", "", withPW + "\n", append(inspect, "--redis-url-file", "-"), exitOK, `^no bucket: `, ""},
		{"--redis-url-file wins over $REDIS_URL", unreachable, "", append(inspect, "--redis-url-file", file), exitOK, `^no bucket: `, ""},
		{"--redis-url with a password: a warning", "", "", append(inspect, "--redis-url", withPW), exitOK, `^no bucket: `, warning},
		{"--redis-url with a password, --json: a warning", "", "", append(inspect, "--redis-url", withPW, "--json"), exitOK, `^\{`, warning},
		{"--redis-url with a lone user info: a warning", "", "", append(inspect, "--redis-url", "redis://"+pw+"@"+srv.Addr()), exitOK, `^no bucket: `, warning},
		{"check warns too", "", "", []string{"check", "u", "--scale", scale, "--limit", "5", "--redis-url", withPW}, exitOK, `^allowed: `, warning},
		{"delete warns too", "", "", []string{"delete", "u", "--redis-url", withPW}, exitOK, `^deleted \d+ bucket`, warning},
		{"bench warns too", "", "", []string{"bench", "--redis-url", "redis://:" + pw + "@127.0.0.1:1", "--duration", "100ms",
			"--timeout", "300ms"}, exitError, ``, warning},
		{"--redis-url without a password: no warning", "", "", append(inspect, "--redis-url", unreachable, "--timeout", "300ms"),
			exitError, ``, "no connection to redis://127.0.0.1:1"},
		{"both flags", "", "", append(inspect, "--redis-url", unreachable, "--redis-url-file", file), exitUsage, ``,
			"--redis-url and --redis-url-file: give one of them"},
		{"a missing file", "", "", append(inspect, "--redis-url-file", filepath.Join(dir, "nope")), exitUsage, ``,
			"--redis-url-file: open " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"a file whose first line is empty", "", "", append(inspect, "--redis-url-file", empty), exitUsage, ``,
			"--redis-url-file " + empty + ": no URL on its first line"},
		{"empty stdin", "", "", append(inspect, "--redis-url-file", "-"), exitUsage, ``, "--redis-url-file -: no URL"},
		{"demo: both flags", "", "", []string{"demo", "--redis-url", unreachable, "--redis-url-file", file}, exitUsage, ``,
			"--redis-url and --redis-url-file: give one of them"},
		{"bench: a missing file", "", "", []string{"bench", "--redis-url-file", filepath.Join(dir, "nope")}, exitUsage, ``,
			"no such file or directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := hrWith(t, tt.env, tt.stdin, tt.args...)
			if r.code != tt.code || !regexp.MustCompile(tt.stdout).MatchString(r.stdout) {
				t.Errorf("hammerredis %q = %v\nwant exit %d and stdout matching %q", tt.args, r, tt.code, tt.stdout)
			}
			switch {
			case tt.stderr == "" && r.stderr != "":
				t.Errorf("hammerredis %q printed on stderr:\n%v", tt.args, r)
			case !strings.Contains(r.stderr, tt.stderr):
				t.Errorf("hammerredis %q: stderr lacks %q:\n%v", tt.args, tt.stderr, r)
			case tt.stderr != warning && strings.Contains(r.stderr, warning):
				t.Errorf("hammerredis %q warned without a password in --redis-url:\n%v", tt.args, r)
			}
			if strings.Contains(r.stdout+r.stderr, pw) {
				t.Errorf("hammerredis %q printed the password:\n%v", tt.args, r)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"check", "inspect", "delete", "hit", "get", "demo"} {
		for _, args := range [][]string{{cmd, "--help"}, {cmd, "-h"}, {"help", cmd}, {cmd, "user:42", "--help"}} {
			if cmd == "demo" && len(args) == 3 {
				continue // demo takes no ID
			}
			r := hr(t, args...)
			if r.code != exitOK || !strings.HasPrefix(r.stdout, "Usage: hammerredis "+cmd) || r.stderr != "" {
				t.Errorf("hammerredis %q = %v\nwant exit 0 and the usage on stdout", args, r)
			}
		}
	}
	r := hr(t, "check", "--help")
	for _, want := range []string{"--redis-url", "$REDIS_URL", defaultRedisURL, "Hammer:Redis:", "--timeout", "--json", "--inc", "1 when denied",
		"--redis-url-file file", "(- for stdin)", "visible to other users (ps)"} {
		if !strings.Contains(strings.ReplaceAll(r.stdout, "  -", "  --"), want) {
			t.Errorf("hammerredis check --help lacks %q:\n%s", want, r.stdout)
		}
	}
	for cmd, wants := range map[string][]string{
		"hit": {"hit KEY --algorithm fix_window|sliding_window --prefix P --scale DURATION --limit N [--inc N]",
			"hit KEY --algorithm leaky_bucket|token_bucket --prefix P --rate N --limit N [--inc N]",
			"--algorithm name", "--prefix prefix", "--rate", "--scale", "--limit", "--inc", "--json", "--timeout",
			"$REDIS_URL", "1 when denied", `"retry_after_ms"`, `"never": true`, "before or after the KEY"},
		"get": {"get KEY --algorithm fix_window|sliding_window --prefix P --scale DURATION [--limit N]",
			"get KEY --algorithm leaky_bucket|token_bucket --prefix P --rate N --limit N",
			"--rate and --limit", `{"count"}`, "0 on success, 2 on an error"},
	} {
		r := hr(t, cmd, "--help")
		for _, want := range wants {
			if !strings.Contains(strings.ReplaceAll(r.stdout, "  -", "  --"), want) {
				t.Errorf("hammerredis %s --help lacks %q:\n%s", cmd, want, r.stdout)
			}
		}
	}
	// Every subcommand, and the command's own help, offer a way to keep a
	// password out of the command line.
	for _, args := range [][]string{{"--help"}, {"inspect", "--help"}, {"delete", "--help"}, {"hit", "--help"}, {"get", "--help"},
		{"demo", "--help"}, {"bench", "--help"}} {
		r := hr(t, args...)
		for _, want := range []string{"--redis-url-file", "$REDIS_URL", "(ps)"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("hammerredis %q lacks %q:\n%s", args, want, r.stdout)
			}
		}
	}
}

func TestSplitArgs(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.String("scale", "", "")
	fs.Bool("json", false, "")
	for _, tt := range []struct {
		args, flags, positional []string
	}{
		{[]string{"id", "--scale", "1m"}, []string{"--scale", "1m"}, []string{"id"}},
		{[]string{"--scale", "1m", "id", "--json"}, []string{"--scale", "1m", "--json"}, []string{"id"}},
		{[]string{"-scale=1m", "id", "x"}, []string{"-scale=1m"}, []string{"id", "x"}},
		{[]string{"--json", "id"}, []string{"--json"}, []string{"id"}},
		{[]string{"--scale", "--", "id"}, []string{"--scale", "--"}, []string{"id"}},
		{[]string{"--json", "--", "-id", "--scale"}, []string{"--json"}, []string{"-id", "--scale"}},
		{[]string{"--nope", "id", "-"}, []string{"--nope"}, []string{"id", "-"}},
		{[]string{"id", "--scale"}, []string{"--scale"}, []string{"id"}},
	} {
		flags, positional := splitArgs(fs, tt.args)
		if !slices.Equal(flags, tt.flags) || !slices.Equal(positional, tt.positional) {
			t.Errorf("splitArgs(%q) = %q, %q; want %q, %q", tt.args, flags, positional, tt.flags, tt.positional)
		}
	}
}

func TestWaitTime(t *testing.T) {
	for _, tt := range []struct{ d, want time.Duration }{
		{412 * time.Millisecond, 412 * time.Millisecond},
		{time.Second, time.Second},
		{40*time.Second + time.Millisecond, 41 * time.Second},
		{59*time.Minute + 59500*time.Millisecond, time.Hour},
	} {
		if got := waitTime(tt.d); got != tt.want {
			t.Errorf("waitTime(%v) = %v, want %v", tt.d, got, tt.want)
		}
	}
}

func TestDemoRunsOnAPrivateServer(t *testing.T) {
	t.Setenv("REDIS_URL", "") // never a Redis from the environment
	var out, errOut bytes.Buffer
	if code := run([]string{"demo", "--duration", "1s"}, &out, &errOut); code != exitOK {
		t.Fatalf("hammerredis demo exited %d\nstdout:\n%s\nstderr:\n%s", code, &out, &errOut)
	}
	for _, want := range []string{
		"Started a private redis-server",
		"CountHitN(\"user:42\", 5)",
		"DeleteBuckets(\"user:42\")  -> deleted 2 key(s)",
		"GetBucket(\"user:42:b\")    -> count 2, intact",
		"Recovered",
		"== Many clients, one limit",
		"killed the backend's connection (CLIENT KILL ID",
		"calls succeed again",
		"In all: ",
		"== The backend's counters",
		"2 lost (restarts)",
		"latency      p50 <= ",
		"errors.Is ErrStopped: true",
		"Removed the private redis-server.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, &out)
		}
	}
	// One line per window: one window in 1s.
	if n := regexp.MustCompile(`(?m)^  \d\d:\d\d:\d\d  allowed +\d+  denied`).FindAllString(out.String(), -1); len(n) != 1 {
		t.Errorf("demo --duration 1s printed %d window line(s), want 1:\n%s", len(n), &out)
	}
}

func TestDemoAgainstAGivenURL(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t)
	var out, errOut bytes.Buffer
	if code := run([]string{"demo", "--redis-url", srv.URL(), "--duration", "1s"}, &out, &errOut); code != exitOK {
		t.Fatalf("hammerredis demo exited %d\nstdout:\n%s\nstderr:\n%s", code, &out, &errOut)
	}
	c := srv.Conn(t)
	n, err := c.Do("DBSIZE")
	if err != nil || n.(int64) != 0 {
		t.Errorf("DBSIZE after the demo = %v, %v; want 0: the demo cleans up its keys", n, err)
	}
}

func TestDemoWithoutClients(t *testing.T) {
	t.Parallel()
	srv := redistest.New(t)
	var out, errOut bytes.Buffer
	if code := run([]string{"demo", "--redis-url", srv.URL(), "--duration", "0"}, &out, &errOut); code != exitOK {
		t.Fatalf("hammerredis demo --duration 0 exited %d\nstdout:\n%s\nstderr:\n%s", code, &out, &errOut)
	}
	if strings.Contains(out.String(), "Many clients") || !strings.Contains(out.String(), "The backend's counters") {
		t.Errorf("demo --duration 0 should skip the clients and still show the counters:\n%s", &out)
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
		{[]string{"help"}, exitOK, "check"},
		{[]string{"help", "demo"}, exitOK, "--redis-url"},
		{[]string{"help", "check"}, exitOK, "--scale"},
		{[]string{"--help"}, exitOK, "hit      count units for a KEY with a Hammer 7 limiter"},
		{[]string{"help", "hit"}, exitOK, "--algorithm"},
		{[]string{"help", "get"}, exitOK, "--rate"},
		{[]string{"help", "nope"}, exitUsage, `unknown command "nope"`},
		{[]string{"demo", "--help"}, exitOK, "--duration"},
		{[]string{"nope"}, exitUsage, `unknown command "nope"`},
		{[]string{"demo", "--nope"}, exitUsage, "nope"},
		{[]string{"demo", "--duration", "-1s"}, exitUsage, "--duration -1s: must not be negative"},
	} {
		var out, errOut bytes.Buffer
		code := run(tt.args, &out, &errOut)
		if code != tt.code || !strings.Contains(out.String()+errOut.String(), tt.want) {
			t.Errorf("hammerredis %q = exit %d, output %q; want exit %d and %q", tt.args, code, out.String()+errOut.String(), tt.code, tt.want)
		}
	}
}
