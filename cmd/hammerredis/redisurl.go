package main

import (
	"bufio"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
)

// redisURLFlags are --redis-url and --redis-url-file, which every
// subcommand has. A password in --redis-url is visible to every user of the
// machine (ps, /proc/<pid>/cmdline); $REDIS_URL and --redis-url-file keep it
// out of the command line.
type redisURLFlags struct {
	url, file string
}

// stdin is where --redis-url-file - reads the URL; a variable for tests.
var stdin io.Reader = os.Stdin

// maxURLFileBytes bounds what --redis-url-file reads: a URL is a line.
const maxURLFileBytes = 64 << 10

// register adds the two flags to fs; urlUsage describes --redis-url.
func (f *redisURLFlags) register(fs flagSet, urlUsage string) {
	fs.StringVar(&f.url, "redis-url", "", urlUsage+
		"\nA password given here is visible to other users (ps): prefer $REDIS_URL or --redis-url-file.")
	fs.StringVar(&f.file, "redis-url-file", "",
		"read the Redis URL from the first line of `file` (- for stdin) instead, keeping a password\n"+
			"out of the command line")
}

// flagSet is the part of *flag.FlagSet that register uses.
type flagSet interface {
	StringVar(p *string, name, value, usage string)
}

// resolve returns the Redis URL to use: --redis-url, else the first line of
// --redis-url-file, else $REDIS_URL; "" when none is set. It warns on
// stderr, naming the command, when --redis-url holds a password. Its errors
// are usage errors.
func (f *redisURLFlags) resolve(name string, stderr io.Writer) (string, error) {
	switch {
	case f.url != "" && f.file != "":
		return "", usageErrorf("--redis-url and --redis-url-file: give one of them")
	case f.url != "":
		if hasPassword(f.url) {
			fmt.Fprintf(stderr, "hammerredis %s: warning: the password in --redis-url is visible to other users "+
				"of this machine (ps); pass the URL in $REDIS_URL or with --redis-url-file instead\n", name)
		}
		return f.url, nil
	case f.file != "":
		return readURLFile(f.file)
	}
	return os.Getenv("REDIS_URL"), nil
}

// readURLFile returns the first line of file ("-": stdin), trimmed.
func readURLFile(file string) (string, error) {
	r := stdin
	if file != "-" {
		fh, err := os.Open(file)
		if err != nil {
			return "", usageErrorf("--redis-url-file: %v", err)
		}
		defer fh.Close()
		r = fh
	}
	line, err := bufio.NewReaderSize(io.LimitReader(r, maxURLFileBytes), maxURLFileBytes).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", usageErrorf("--redis-url-file %s: %v", file, err)
	}
	u := strings.TrimSpace(line)
	if u == "" {
		return "", usageErrorf("--redis-url-file %s: no URL on its first line", file)
	}
	return u, nil
}

// hasPassword reports whether a Redis URL holds a password: user info, of
// which a lone user name is the password too (as for hammerredis and
// redis-cli). An unparsable URL with an "@" is taken to hold one.
func hasPassword(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return strings.Contains(raw, "@")
	}
	return u.User != nil && u.User.String() != ""
}
