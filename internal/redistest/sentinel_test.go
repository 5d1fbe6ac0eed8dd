package redistest

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

func TestFakeSentinels(t *testing.T) {
	lying := NewLyingSentinel(t, "127.0.0.1:7")
	c, err := redis.Dial("tcp", lying.Addr(), redis.DialReadTimeout(time.Second), redis.DialPassword("x"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := redis.Strings(c.Do("SENTINEL", "get-master-addr-by-name", MasterName))
	if err != nil || len(got) != 2 || net.JoinHostPort(got[0], got[1]) != "127.0.0.1:7" {
		t.Errorf("lying sentinel: SENTINEL get-master-addr-by-name = %q, %v, want [127.0.0.1 7]", got, err)
	}
	if _, err := redis.Strings(c.Do("SENTINEL", "get-master-addr-by-name", "other")); !errors.Is(err, redis.ErrNil) {
		t.Errorf("lying sentinel: another master name: error %v, want redis.ErrNil", err)
	}
	psc := redis.PubSubConn{Conn: c}
	if err := psc.Subscribe("+switch-master"); err != nil {
		t.Fatal(err)
	}
	if v, ok := psc.Receive().(redis.Subscription); !ok || v.Channel != "+switch-master" {
		t.Errorf("lying sentinel: SUBSCRIBE replied %v", v)
	}
	if err := psc.Ping(""); err != nil {
		t.Fatal(err)
	}
	if v, ok := psc.Receive().(redis.Pong); !ok {
		t.Errorf("lying sentinel: PING while subscribed replied %v", v)
	}

	frozen := NewFrozenSentinel(t)
	f, err := redis.Dial("tcp", frozen.Addr(), redis.DialReadTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ne net.Error
	if _, err := f.Do("PING"); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("frozen sentinel: PING error %v, want a timeout", err)
	}
	frozen.Close()
	frozen.Close() // idempotent
}
