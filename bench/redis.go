package main

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"

	"github.com/gomodule/redigo/redis"
	"github.com/hammer-go/hammerredis/internal/redistest"
)

// redisServer is the benchmark's private redis-server (never the system
// Redis on :6379), with one admin connection of the harness's own.
type redisServer struct {
	srv   *redistest.Server
	addr  string
	admin redis.Conn
}

// startRedis starts a private redis-server on a free loopback port, with no
// persistence.
func startRedis() (*redisServer, error) {
	srv, err := redistest.Start(redistest.Options{})
	if err != nil {
		return nil, err
	}
	admin, err := srv.Dial()
	if err != nil {
		srv.Stop()
		return nil, err
	}
	return &redisServer{srv: srv, addr: srv.Addr(), admin: admin}, nil
}

// stop closes the admin connection and kills the server.
func (s *redisServer) stop() {
	s.admin.Close()
	s.srv.Stop()
}

// flushAll empties the server between cells.
func (s *redisServer) flushAll() error {
	_, err := s.admin.Do("FLUSHALL")
	return err
}

// info returns the fields of INFO section.
func (s *redisServer) info(section string) (map[string]string, error) {
	text, err := redis.String(s.admin.Do("INFO", section))
	if err != nil {
		return nil, err
	}
	fields := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			fields[k] = v
		}
	}
	return fields, nil
}

// version returns the server's redis_version.
func (s *redisServer) version() (string, error) {
	f, err := s.info("server")
	if err != nil {
		return "", err
	}
	return f["redis_version"], nil
}

// connectedClients returns how many clients are connected, the admin
// connection not counted.
func (s *redisServer) connectedClients() (int, error) {
	f, err := s.info("clients")
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(f["connected_clients"])
	if err != nil {
		return 0, fmt.Errorf("INFO clients: connected_clients %q: %w", f["connected_clients"], err)
	}
	return n - 1, nil
}

// readsProcessed returns INFO stats' total_reads_processed: how many times
// the server has read from a client socket. Checks per read tells how many
// checks a client packs into one write: 1 without pipelining.
func (s *redisServer) readsProcessed() (int64, error) {
	f, err := s.info("stats")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(f["total_reads_processed"], 10, 64)
}

// scriptRuns returns how many scripts the server has run: the calls of
// EVAL, EVALSHA and their read-only forms, from INFO commandstats.
func (s *redisServer) scriptRuns() (int64, error) {
	f, err := s.info("commandstats")
	if err != nil {
		return 0, err
	}
	var total int64
	for _, cmd := range []string{"eval", "evalsha", "eval_ro", "evalsha_ro"} {
		v, ok := f["cmdstat_"+cmd]
		if !ok {
			continue
		}
		for _, kv := range strings.Split(v, ",") {
			if n, ok := strings.CutPrefix(kv, "calls="); ok {
				c, err := strconv.ParseInt(n, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("INFO commandstats: %s: %w", cmd, err)
				}
				total += c
			}
		}
	}
	return total, nil
}

// loadScript loads src with SCRIPT LOAD and returns its SHA1.
func (s *redisServer) loadScript(src string) (string, error) {
	return redis.String(s.admin.Do("SCRIPT", "LOAD", src))
}
