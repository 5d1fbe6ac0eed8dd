package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/protocol"
)

// errNoRedisServer means redis-server is not on PATH.
var errNoRedisServer = errors.New(redistest.InstallHint)

// target is the Redis the demo talks to: a private server, or the user's.
type target struct {
	url     string            // what the backend and the admin connection dial
	shown   string            // url without credentials, for printing
	prefix  string            // key prefix of the demo's buckets; "" is the default
	private *redistest.Server // nil when the user gave a URL
}

// openTarget returns the user's Redis when rawURL is set, else starts a
// private redis-server on a free port. Close it with close.
func openTarget(rawURL string, pid int) (*target, error) {
	if rawURL != "" {
		return &target{
			url:    rawURL,
			shown:  withoutCredentials(rawURL),
			prefix: fmt.Sprintf("hammerredis-demo:%d:", pid),
		}, nil
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, errNoRedisServer
	}
	srv, err := redistest.Start(redistest.Options{})
	if err != nil {
		return nil, err
	}
	return &target{url: srv.URL(), shown: srv.URL(), private: srv}, nil
}

// keyPrefix is the prefix the backend writes under.
func (t *target) keyPrefix() string {
	if t.prefix == "" {
		return protocol.DefaultKeyPrefix
	}
	return t.prefix
}

// close deletes the demo's keys from the user's Redis, or removes the private
// server. It returns how many keys it deleted.
func (t *target) close(admin redis.Conn) (int, error) {
	if t.private != nil {
		t.private.Stop()
		return 0, nil
	}
	if admin == nil {
		return 0, nil
	}
	// The prefix holds the pid and no glob characters: it matches only
	// this run's keys.
	return deleteMatching(admin, t.prefix+"*")
}

// dialAdmin opens the demo's own connection, used to look at what the
// backend wrote and to kill the backend's connection.
func (t *target) dialAdmin(ctx context.Context, name string) (redis.Conn, error) {
	return redis.DialURLContext(ctx, t.url,
		redis.DialConnectTimeout(5*time.Second),
		redis.DialReadTimeout(5*time.Second),
		redis.DialWriteTimeout(5*time.Second),
		redis.DialClientName(name))
}

// withoutCredentials drops the user info of a URL, so that no password is
// ever printed.
func withoutCredentials(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	return u.String()
}

// deleteMatching deletes every key matching pattern and returns how many.
func deleteMatching(c redis.Conn, pattern string) (int, error) {
	deleted, cursor := 0, "0"
	for {
		reply, err := redis.Values(c.Do("SCAN", cursor, "MATCH", pattern, "COUNT", 1000))
		if err != nil {
			return deleted, err
		}
		var keys []any
		if _, err := redis.Scan(reply, &cursor, &keys); err != nil {
			return deleted, err
		}
		if len(keys) > 0 {
			n, err := redis.Int(c.Do("DEL", keys...))
			deleted += n
			if err != nil {
				return deleted, err
			}
		}
		if cursor == "0" {
			return deleted, nil
		}
	}
}

// clientID finds the connection named name in CLIENT LIST.
func clientID(c redis.Conn, name string) (int64, error) {
	list, err := redis.String(c.Do("CLIENT", "LIST"))
	if err != nil {
		return 0, fmt.Errorf("CLIENT LIST: %w", err)
	}
	for line := range strings.Lines(list) {
		var id, n string
		for field := range strings.FieldsSeq(line) {
			if v, ok := strings.CutPrefix(field, "id="); ok {
				id = v
			} else if v, ok := strings.CutPrefix(field, "name="); ok {
				n = v
			}
		}
		if n == name {
			return strconv.ParseInt(id, 10, 64)
		}
	}
	return 0, fmt.Errorf("no connection named %q in CLIENT LIST", name)
}

// killClient closes the connection with the given CLIENT LIST id, and no
// other.
func killClient(c redis.Conn, id int64) error {
	n, err := redis.Int(c.Do("CLIENT", "KILL", "ID", id))
	if err != nil {
		return fmt.Errorf("CLIENT KILL ID %d: %w", id, err)
	}
	if n != 1 {
		return fmt.Errorf("CLIENT KILL ID %d killed %d connections", id, n)
	}
	return nil
}
