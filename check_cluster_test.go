package hammerredis_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/logtest"
	"github.com/hammer-go/hammerredis/internal/redistest"
	"github.com/hammer-go/hammerredis/internal/testenv"
	"github.com/hammer-go/hammerredis/protocol"
)

// testClusterCheck runs checks on a Redis Cluster (TestClusterShared): a
// check whose keys share a slot runs on its master and follows it when it
// moves; across slots, all-or-nothing is refused and a check of each
// limit's own rules is split over the masters.
func testClusterCheck(t *testing.T, c *redistest.Cluster) {
	opts := clusterOpts(t, c, logtest.New())
	b := startCluster(t, opts)
	ctx := context.Background()
	layout := protocol.Layout{Prefix: opts.KeyPrefix}
	prefix := fmt.Sprintf("H7:%d", testenv.Unique())
	now := checkStart().Now().UnixMilli() // fix windows whose keys outlive the test
	// limits returns a Hammer 6 window and the three Hammer 7 algorithms
	// that read no clock but Now or count exactly within the test, on ids
	// made of id; their keys, and each key's master.
	limits := func(id string) (ls []protocol.CheckLimit, keys []string, masters []*redistest.Server) {
		ls = []protocol.CheckLimit{
			{Hammer6: true, Policy: protocol.Policy{ScaleMs: 60_000, Limit: 2}, ID: "h6:" + id, Cost: 1},
			{Policy: protocol.Policy{Algorithm: protocol.FixWindow, Prefix: prefix, ScaleMs: 60_000, Limit: 5}, ID: "fix:" + id, Cost: 1},
			{Policy: protocol.Policy{Algorithm: protocol.SlidingWindow, Prefix: prefix, ScaleMs: 60_000, Limit: 5}, ID: "sw:" + id, Cost: 1},
			{Policy: protocol.Policy{Algorithm: protocol.TokenBucket, Prefix: prefix, Limit: 100, Rate: 1}, ID: "tb:" + id, Cost: 1},
		}
		for _, l := range ls {
			k := l.Policy.Key(l.ID, now)
			if l.Hammer6 {
				bucket, _ := l.Bucket6(now)
				k = layout.Key(hammerredis.BucketKey{Bucket: bucket, ID: l.ID})
			}
			keys = append(keys, k)
			masters = append(masters, mustMasterOf(t, c, k))
		}
		return ls, keys, masters
	}
	exists := func(keys []string, masters []*redistest.Server) []int64 {
		var out []int64
		for i, k := range keys {
			out = append(out, testenv.Do(t, masters[i].Conn(t), "EXISTS", k).(int64))
		}
		return out
	}
	counts := func(r protocol.CheckReply) []int64 {
		var out []int64
		for _, d := range r.Decisions[:3] { // the windows: exact counts
			out = append(out, d.Count)
		}
		return out
	}
	calls := b.Stats().Calls.Check

	t.Run("OneSlot", func(t *testing.T) {
		ls, keys, masters := limits("{api-key-42}")
		for _, k := range keys[1:] {
			require.Equal(t, protocol.Slot(keys[0]), protocol.Slot(k), "the hash tag puts every key in one slot")
		}
		check := protocol.Check{Now: now, AllOrNothing: true, Limits: ls}
		for want := int64(1); want <= 2; want++ {
			r, err := b.Check(ctx, check)
			require.NoError(t, err)
			assert.True(t, check.Allowed(r.Decisions))
			assert.Equal(t, []int64{want, want, want}, counts(r))
		}
		assert.Equal(t, []int64{1, 1, 1, 1}, exists(keys, masters), "written on the master of the slot")
		r, err := b.Check(ctx, check)
		require.NoError(t, err)
		assert.False(t, check.Charged(r.Decisions), "the Hammer 6 window denies")
		assert.Equal(t, []byte("2"), testenv.Do(t, masters[1].Conn(t), "GET", keys[1]), "nothing written")

		// The slot moves: the check follows the MOVED, to its data.
		moveSlot(t, c, protocol.Slot(keys[0]), otherMaster(t, c, masters[0]))
		check.AllOrNothing = false
		r, err = b.Check(ctx, check)
		require.NoError(t, err)
		assert.Equal(t, []int64{3, 3, 3}, counts(r), "counted where the slot went, after the 2 counted before")
	})

	t.Run("AllOrNothingAcrossSlotsIsRefused", func(t *testing.T) {
		ls, keys, masters := limits("user")
		require.NotEqual(t, protocol.Slot(keys[0]), protocol.Slot(keys[1]))
		_, err := b.Check(ctx, protocol.Check{Now: now, AllOrNothing: true, Limits: ls})
		assert.ErrorIs(t, err, hammerredis.ErrInvalid)
		assert.ErrorContains(t, err, `hash tag, such as "{api-key-42}"`)
		assert.Equal(t, []int64{0, 0, 0, 0}, exists(keys, masters), "nothing sent")
	})

	t.Run("EachAcrossSlotsIsSplit", func(t *testing.T) {
		// Three ids of a hash tag each, whose four limits share its slot,
		// their limits interleaved: the first of each, then the second...
		check := protocol.Check{Now: now, Limits: make([]protocol.CheckLimit, 12)}
		keys, masters := make([]string, 12), make([]*redistest.Server, 12)
		on := map[*redistest.Server]bool{}
		for i, tag := range []string{"{a}", "{b}", "{c}"} {
			ls, ks, ms := limits(tag)
			for j := range ls {
				check.Limits[3*j+i], keys[3*j+i], masters[3*j+i] = ls[j], ks[j], ms[j]
			}
			on[ms[0]] = true
		}
		require.Len(t, on, 3, "the tags' slots are on every master")
		for want := int64(1); want <= 3; want++ {
			r, err := b.Check(ctx, check)
			require.NoError(t, err)
			for i, d := range r.Decisions {
				switch i / 3 {
				case 0: // the Hammer 6 window allows 2
					assert.Equal(t, protocol.HitReply{Allowed: want <= 2, Count: want, RetryAfterMs: d.RetryAfterMs}, d, "limit %d", i)
				case 3:
					assert.True(t, d.Allowed, "limit %d", i)
				default:
					assert.Equal(t, protocol.HitReply{Allowed: true, Count: want}, d, "limit %d: in order", i)
				}
			}
		}
		assert.Equal(t, []int64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, exists(keys, masters), "each key on its slot's master")

		// A key of another type fails its master's part; the others count.
		testenv.Do(t, masters[5].Conn(t), "DEL", keys[5])
		testenv.Do(t, masters[5].Conn(t), "SADD", keys[5], "m")
		_, err := b.Check(ctx, check)
		assert.ErrorIs(t, err, hammerredis.ErrRedis)
		assert.ErrorContains(t, err, "WRONGTYPE")
	})

	assert.Equal(t, calls+9, b.Stats().Calls.Check, "each check counts once, however many masters it ran on")
}
