// Command hammerredis shows the hammerredis rate-limit backend at work.
//
// Usage:
//
//	hammerredis demo [--redis-url URL]
//
// The demo subcommand walks through the backend's API against a real Redis,
// explaining each step on stdout: it counts hits in the current one-minute
// bucket of an id, reads the bucket back, deletes one id's buckets while
// another id's survive, kills the backend's Redis connection and watches the
// backend reconnect by itself, and finally stops the backend. The backend's
// own warnings (the lost connection, the restart) are logged to stderr.
//
// Without --redis-url or $REDIS_URL the demo runs a private, throwaway
// redis-server (from PATH) on a free loopback port and removes it at the end;
// it never touches the system Redis on 127.0.0.1:6379 unless that is the URL
// you give it. With a URL, the demo writes only keys under its own prefix
// "hammerredis-demo:<pid>:", kills only its own connection, and deletes its
// keys before it exits, also on Ctrl-C.
//
// Exit status: 0 on success, 1 when the demo fails, 2 on a usage error or a
// missing redis-server, 130 when interrupted.
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
	exitFailed      = 1
	exitUsage       = 2
	exitInterrupted = 130
)

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
	switch cmd, rest := fs.Arg(0), fs.Args()[1:]; cmd {
	case "demo":
		return runDemo(rest, stdout, stderr)
	case "help":
		if len(rest) > 0 && rest[0] == "demo" {
			return runDemo([]string{"--help"}, stdout, stderr)
		}
		usage(stdout)
		return exitOK
	default:
		fmt.Fprintf(stderr, "hammerredis: unknown command %q\n\n", cmd)
		usage(stderr)
		return exitUsage
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `hammerredis shows the hammerredis Redis rate-limit backend at work.

Usage:
  hammerredis <command> [flags]

Commands:
  demo    count, read and delete buckets, survive a lost connection, stop
  help    show this help, or "help demo" for the demo's flags

Run "hammerredis demo --help" for the demo's flags.
`)
}
