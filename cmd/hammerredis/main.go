// Command hammerredis checks and manages the Hammer rate limits that the
// hammerredis backend keeps in Redis, and shows the backend at work.
//
// Usage:
//
//	hammerredis check ID --scale DURATION --limit N [--inc N] [flags]
//	hammerredis inspect ID --scale DURATION --limit N [flags]
//	hammerredis delete ID [flags]
//	hammerredis hit KEY --algorithm fix_window|sliding_window --prefix P --scale DURATION --limit N [--inc N] [flags]
//	hammerredis hit KEY --algorithm leaky_bucket|token_bucket --prefix P --rate N --limit N [--inc N] [flags]
//	hammerredis get KEY --algorithm A --prefix P (--scale DURATION | --rate N --limit N) [flags]
//	hammerredis limits KEY --limit SPEC [--limit SPEC ...] [--all-or-nothing] [--inc N] [flags]
//	hammerredis demo [--redis-url URL] [--duration DURATION]
//	hammerredis bench [--redis-url URL] [--callers 1,16,64,256] [--duration 5s] [flags]
//
// check counts hits for an ID in its current window and says whether they
// are within the limit (Hammer 6's check_rate_inc); inspect shows the window
// without counting (inspect_bucket); delete resets the ID
// (delete_buckets). hit and get do the same for Hammer 7's limiters (see
// below). Flags may come before or after the ID or KEY. They talk to the
// Redis at --redis-url, else the one named in --redis-url-file, else
// $REDIS_URL, else redis://127.0.0.1:6379, under
// the backend's default key prefix "Hammer:Redis:" (--key-prefix), so they
// see the services' buckets. --json prints one JSON object on stdout, errors
// included; --timeout (default 5s) bounds the connection and the call.
// Exit status: 0 on success (check: allowed), 1 when check is denied, 2 on
// an error: a usage error, Redis unreachable, a timeout.
//
// # Hammer 7
//
// hit and get work on the keys of Elixir Hammer 7's limiters
// (hammer_backend_redis 7.x, package hammer7): --algorithm is fix_window,
// sliding_window, leaky_bucket or token_bucket, --prefix the limiter's
// prefix (Elixir's prefix: option, by default the module's name). Windows
// take --scale (the window's length) and --limit (its units); buckets take
// --rate (units per second leaked or refilled) and --limit (the capacity);
// a flag that does not fit the algorithm is a usage error. hit counts --inc
// units (default 1) and says whether they are allowed, as Hammer 7's
// hit(key, scale|rate, limit|capacity, inc); get shows the count without
// counting, as get(key, scale): a window's count (--limit optional), a
// leaky bucket's level or a token bucket's tokens left, with the leak or
// refill up to now applied, which is why a bucket's get needs --rate and
// --limit. With --json, hit prints {"key", "algorithm", "allowed",
// "count", "limit", "remaining", "increment", "retry_after_ms", "never"},
// where count is Hammer 7's value (a window's count, a leaky bucket's level,
// a token bucket's tokens left) and retry_after_ms is 0 when allowed, the ms
// to wait when denied, and null with "never": true when --inc is over the
// limit or capacity; get prints {"count"}. --key-prefix names the Hammer 6
// keys that --prefix must not overlap. Exit status: hit 0 when allowed, 1
// when denied, 2 on an error; get 0 or 2.
//
// # Several limits
//
// limits checks one request for KEY against several limits at once, in one
// round trip (package hammer's Checker). Each --limit is comma-separated
// fields: name=N,scale=D,max=N for a Hammer 6 window, or
// name=N,algorithm=A,prefix=P with scale=D,limit=N (windows) or
// rate=N,limit=N (buckets) for a Hammer 7 limiter; "shadow" makes a limit
// that is counted and shown but never denies, and key=K counts K instead of
// KEY (an IP beside an API key). Limit i counts the id "<name>:<key>".
// --all-or-nothing counts the request in no limit when one denies it. With
// --json it prints {"key", "allowed", "charged", "limits": [{"name", "key",
// "allowed", "shadow", "count", "quota", "remaining", "reset_ms",
// "retry_after_ms", "never"}]}. Exit status: 0 when allowed, 1 when denied,
// 2 on an error.
//
// # Passwords
//
// A password in --redis-url is visible to every user of the machine, in ps
// and /proc/<pid>/cmdline, so every subcommand prints a warning to stderr
// when --redis-url holds one. Keep it out of the command line: put the URL
// in $REDIS_URL, or in a file readable only by you and pass
// --redis-url-file FILE (the URL is the file's first line), or pipe it in
// with --redis-url-file - (read from stdin).
//
// The demo subcommand walks through the backend's API against a real Redis,
// explaining each step on stdout: it counts hits in the current one-minute
// bucket of an id, reads the bucket back, deletes one id's buckets while
// another id's survive, kills the backend's Redis connection and watches the
// backend reconnect by itself, lets several clients share one limit for
// --duration (default 4s) while the connection is killed again, shows the
// backend's counters, and finally stops the backend. The backend's own
// warnings (the lost connection, the restart) are logged to stderr.
//
// Without --redis-url, --redis-url-file or $REDIS_URL the demo runs a private, throwaway
// redis-server (from PATH) on a free loopback port and removes it at the end;
// it never touches the system Redis on 127.0.0.1:6379 unless that is the URL
// you give it. With a URL, the demo writes only keys under its own prefix
// "hammerredis-demo:<pid>:", kills only its own connection, and deletes its
// keys before it exits, also on Ctrl-C. Its exit status is 0 on success, 1
// when the demo fails, 2 on a usage error or a missing redis-server, 130
// when interrupted.
//
// The bench subcommand measures the backend: for each --callers value it
// runs that many goroutines calling hammer.Limiter.CheckRate back to back for
// --duration and prints checks/s, latency p50 and p99, allocations per check
// and the backend's errors by kind, as a table or with --json. A progress
// bar is redrawn on stderr when it is a terminal. Like the demo, it runs a
// private redis-server unless given a URL by one of them; on the user's
// Redis it first prints a warning, writes only under a key prefix unique to
// the run ("hammerredis-bench:<pid>:<random>:"), lets the keys expire after
// 11s and deletes them at the end. Exit status: 0 on success, 2 on a usage or
// connection error, 130 when interrupted.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// Exit statuses.
const (
	exitOK          = 0
	exitFailed      = 1 // the demo failed
	exitDenied      = 1 // check, hit, limits: the rate limit denied the hits
	exitUsage       = 2
	exitError       = 2 // check, inspect, delete, hit, get, limits: any error
	exitInterrupted = 130
)

// commands maps each subcommand to its function, which parses the
// subcommand's arguments and returns the exit status.
var commands = map[string]func(args []string, stdout, stderr io.Writer) int{
	"check":   runCheck,
	"inspect": runInspect,
	"delete":  runDelete,
	"hit":     runHit,
	"get":     runGet,
	"limits":  runLimits,
	"demo":    runDemo,
	"bench":   runBench,
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run parses the command line, runs the subcommand and returns the exit
// status.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hammerredis", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // usage is printed below, to stdout or stderr
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return exitOK
		}
		usage(stderr)
		return exitUsage
	}
	if fs.NArg() == 0 {
		usage(stderr)
		return exitUsage
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	if cmd == "help" {
		if len(rest) == 0 || rest[0] == "help" {
			usage(stdout)
			return exitOK
		}
		cmd, rest = rest[0], []string{"--help"}
	}
	f, ok := commands[cmd]
	if !ok {
		fmt.Fprintf(stderr, "hammerredis: unknown command %q\n\n", cmd)
		usage(stderr)
		return exitUsage
	}
	return f(rest, stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `hammerredis checks and manages the Hammer rate limits that the hammerredis
backend keeps in Redis, and shows the backend at work.

Usage:
  hammerredis <command> [arguments] [flags]

Commands:
  check    count hits for an ID and say whether they are within a limit
  inspect  show an ID's current window without counting a hit
  delete   delete every bucket of an ID, resetting its limits
  hit      count units for a KEY with a Hammer 7 limiter (fix_window,
           sliding_window, leaky_bucket, token_bucket) and say whether
           they are allowed
  get      show a KEY's count, level or tokens under a Hammer 7 limiter
           without counting
  limits   check a KEY against several limits at once (Hammer 6 windows
           and Hammer 7 limiters, shadow limits, all-or-nothing)
  demo     count, read and delete buckets, survive a lost connection, share
           a limit among clients, stop
  bench    measure checks/s and latency against a Redis (a private one by
           default), with a progress bar
  help     show this help, or "help <command>" for a command's flags

check, inspect, delete, hit and get use the Redis at --redis-url, else the one
named in --redis-url-file, else $REDIS_URL, else redis://127.0.0.1:6379.
check, inspect and delete see the services' Hammer 6 buckets under the key
prefix "Hammer:Redis:"; hit and get see a Hammer 7 limiter's keys under
--prefix.

A password in --redis-url is visible to other users (ps), and draws a warning:
give the URL in $REDIS_URL, or with --redis-url-file FILE (its first line) or
--redis-url-file - (stdin) instead, as in
  REDIS_URL=redis://:PASSWORD@redis.internal:6379 hammerredis delete user:42
  hammerredis delete user:42 --redis-url-file ~/.config/hammerredis/url

Examples:
  hammerredis check user:42 --scale 1m --limit 10
  hammerredis inspect user:42 --scale 1m --limit 10 --json
  hammerredis delete user:42 --redis-url redis://redis.internal:6379/1
  hammerredis hit user:42 --algorithm sliding_window --prefix MyApp.RateLimit --scale 1m --limit 100
  hammerredis hit user:42 --algorithm token_bucket --prefix MyApp.TB --rate 5 --limit 30 --inc 4 --json
  hammerredis get user:42 --algorithm leaky_bucket --prefix MyApp.LB --rate 5 --limit 30

Run "hammerredis <command> --help" for a command's flags.
`)
}
