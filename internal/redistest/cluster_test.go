package redistest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

func TestSlotKnownValues(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want int
	}{
		{"", 0},
		{"foo", 12182},
		{"bar", 5061},
		{"123456789", 0x31C3 % SlotCount}, // the CRC-16/XMODEM check value
		{"{foo}", 12182},
		{"x{foo}y", 12182},
	} {
		if got := Slot(tc.key); got != tc.want {
			t.Errorf("Slot(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
	if a, b := Slot("{user1000}.following"), Slot("{user1000}.followers"); a != b {
		t.Errorf("Slot of keys with the hash tag {user1000} = %d and %d, want equal", a, b)
	}
	// An empty tag hashes the whole key.
	if a, b := Slot("{}foo"), Slot("foo"); a == b {
		t.Errorf("Slot(%q) = Slot(%q) = %d, want the empty tag not to count", "{}foo", "foo", a)
	}
	if a, b := Slot("foo{}{bar}"), Slot("bar"); a == b {
		t.Errorf("Slot(%q) = Slot(%q) = %d, want only the first { to count", "foo{}{bar}", "bar", a)
	}
}

func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a Redis Cluster takes seconds to start: make test runs it")
	}
	t.Parallel()
	c := NewCluster(t)
	if n := len(c.Nodes()); n != 6 {
		t.Fatalf("len(Nodes()) = %d, want 6", n)
	}
	for _, s := range c.Nodes() {
		if s.Port == 6379 || s.Port+clusterBusOffset > 65535 {
			t.Errorf("node on port %d: want a private port with a bus port", s.Port)
		}
	}
	masters, err := c.Masters()
	if err != nil {
		t.Fatal(err)
	}
	if len(masters) != 3 || !slices.Equal(masters, c.Nodes()[:3]) {
		t.Fatalf("Masters() = %v, want the first 3 of Nodes() %v", addrs(masters), c.Addrs())
	}

	// The masters own all slots between them.
	for _, slot := range []int{0, 5460, 5461, 10922, 10923, SlotCount - 1} {
		if m, err := c.MasterOf(slot); err != nil || !slices.Contains(masters, m) {
			t.Errorf("MasterOf(%d) = %v, %v; want one of the masters", slot, m, err)
		}
	}
	nodes, err := c.liveView()
	if err != nil {
		t.Fatal(err)
	}
	var covered [SlotCount]bool
	for _, n := range nodes {
		for _, r := range n.slots {
			if !n.has("master") || !slices.Contains(masters, c.byAddr(n.addr)) {
				t.Errorf("%s serves slots %d-%d but is not one of the masters", n.addr, r[0], r[1])
			}
			for s := r[0]; s <= r[1]; s++ {
				if covered[s] {
					t.Errorf("slot %d is served twice", s)
				}
				covered[s] = true
			}
		}
	}
	if i := slices.Index(covered[:], false); i >= 0 {
		t.Errorf("slot %d is served by no master", i)
	}

	// Slot agrees with CLUSTER KEYSLOT.
	conn := masters[0].Conn(t)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		b := make([]byte, r.IntN(20))
		for j := range b {
			b[j] = byte(r.IntN(256))
		}
		if i%3 == 0 { // with hash tags, some empty
			b = fmt.Appendf(nil, "%s{%s}%s", b[:len(b)/3], b[len(b)/3:2*len(b)/3], b[2*len(b)/3:])
		}
		key := string(b)
		want, err := redis.Int(conn.Do("CLUSTER", "KEYSLOT", key))
		if err != nil {
			t.Fatal(err)
		}
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d (CLUSTER KEYSLOT)", key, got, want)
		}
	}

	// A key set through its master is readable from it, and only there.
	for i := range 10 {
		key := fmt.Sprintf("key:%d", i)
		m, err := c.MasterOf(Slot(key))
		if err != nil {
			t.Fatal(err)
		}
		mc := m.Conn(t)
		if _, err := mc.Do("SET", key, i); err != nil {
			t.Fatalf("SET %s on %s: %v", key, m.Addr(), err)
		}
		if got, err := redis.Int(mc.Do("GET", key)); err != nil || got != i {
			t.Errorf("GET %s on %s = %d, %v; want %d", key, m.Addr(), got, err, i)
		}
		for _, o := range masters {
			if o == m {
				continue
			}
			if _, err := o.Conn(t).Do("GET", key); err == nil {
				t.Errorf("GET %s on %s, which does not serve slot %d, succeeded; want MOVED", key, o.Addr(), Slot(key))
			}
		}
	}
}

func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("a Redis Cluster takes seconds to start: make test runs it")
	}
	t.Parallel()
	c := NewCluster(t)
	key := "failover"
	old, err := c.MasterOf(Slot(key))
	if err != nil {
		t.Fatal(err)
	}
	conn := old.Conn(t)
	if _, err := conn.Do("SET", key, "v"); err != nil {
		t.Fatal(err)
	}
	// Make sure the replica has it before the master dies.
	if n, err := redis.Int(conn.Do("WAIT", 1, 5000)); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v; want 1", n, err)
	}

	start := time.Now()
	old.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("failed over in %v", time.Since(start).Round(time.Millisecond))

	masters, err := c.Masters()
	if err != nil {
		t.Fatal(err)
	}
	if len(masters) != 3 || slices.Contains(masters, old) {
		t.Errorf("Masters() after killing %s = %v, want 3 others", old.Addr(), addrs(masters))
	}
	m, err := c.MasterOf(Slot(key))
	if err != nil {
		t.Fatal(err)
	}
	if m == old {
		t.Fatalf("MasterOf(%d) = the killed %s", Slot(key), old.Addr())
	}
	if got, err := redis.String(m.Conn(t).Do("GET", key)); err != nil || got != "v" {
		t.Errorf("GET %s on the new master %s = %q, %v; want %q", key, m.Addr(), got, err, "v")
	}
}

func addrs(servers []*Server) []string {
	a := make([]string, len(servers))
	for i, s := range servers {
		a[i] = s.Addr()
	}
	return a
}
