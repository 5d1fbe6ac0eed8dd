package redistest

import (
	"testing"

	"github.com/gomodule/redigo/redis"
)

func TestServerLifecycle(t *testing.T) {
	s := New(t)
	if s.Port == 6379 {
		t.Fatal("a private server must never take the system Redis port")
	}
	c := s.Conn(t)
	if _, err := c.Do("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	cfg, err := redis.Strings(c.Do("CONFIG", "GET", "save"))
	if err != nil || cfg[1] != "" {
		t.Errorf("CONFIG GET save = %q, %v; want no persistence", cfg, err)
	}

	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	c2 := s.Conn(t)
	if n, err := redis.Int(c2.Do("DBSIZE")); err != nil || n != 0 {
		t.Errorf("DBSIZE after Restart = %d, %v; want an empty server on the same port", n, err)
	}
	u, err := redis.Dial("unix", s.Socket)
	if err != nil {
		t.Fatalf("dialing the unix socket: %v", err)
	}
	u.Close()

	s.Kill()
	if _, err := s.Dial(); err == nil {
		t.Error("Dial after Kill succeeded")
	}
	s.Stop()
	s.Stop() // idempotent
}

func TestStartFailsWithTheServerLog(t *testing.T) {
	_, err := Start(Options{Args: []string{"--no-such-option", "1"}})
	if err == nil {
		t.Fatal("Start with a bad option succeeded")
	}
	t.Log(err)
}
