package server

import (
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/hammer-go/hammerredis/protocol"
)

func TestDecodeBucket(t *testing.T) {
	key := protocol.BucketKey{Bucket: 1, ID: "a"}
	b := func(s string) []byte { return []byte(s) }
	info, err := decodeBucket(key, []any{b("3"), b("10"), b("-20")})
	if err != nil || *info != (protocol.BucketInfo{Key: key, Count: 3, Created: 10, Updated: -20}) {
		t.Errorf("decodeBucket(3, 10, -20) = %+v, %v", info, err)
	}
	if info, err := decodeBucket(key, []any{nil, nil, nil}); info != nil || err != nil {
		t.Errorf("decodeBucket(nil, nil, nil) = %+v, %v, want nil, nil", info, err)
	}
	for _, reply := range []any{
		nil, "x", int64(1), []any{}, []any{nil, nil}, []any{b("1"), nil, nil},
		[]any{b("1"), b("2"), int64(3)}, []any{b("1"), b("2"), b("3.5")}, []any{b(""), b("2"), b("3")},
	} {
		if _, err := decodeBucket(key, reply); !errors.Is(err, protocol.ErrBadReply) {
			t.Errorf("decodeBucket(%#v) error = %v, want ErrBadReply", reply, err)
		}
	}
}

func TestDecodeScan(t *testing.T) {
	cursor, keys, err := decodeScan([]any{[]byte("17"), []any{[]byte("k1"), []byte("k2")}})
	if err != nil || cursor != "17" || len(keys) != 2 || keys[1] != "k2" {
		t.Errorf("decodeScan = %q, %q, %v", cursor, keys, err)
	}
	for _, reply := range []any{
		nil, []any{[]byte("0")}, []any{int64(0), []any{}}, []any{[]byte("x"), []any{}},
		[]any{[]byte("0"), "k"}, []any{[]byte("0"), []any{int64(1)}},
	} {
		if _, _, err := decodeScan(reply); !errors.Is(err, protocol.ErrBadReply) {
			t.Errorf("decodeScan(%#v) error = %v, want ErrBadReply", reply, err)
		}
	}
}

// replyFrom builds an arbitrary reply shape from fuzz input.
func replyFrom(shape uint8, a, b, c []byte) any {
	elem := func(k uint8, v []byte) any {
		switch k % 4 {
		case 0:
			return nil
		case 1:
			return v
		case 2:
			n, _ := strconv.ParseInt(string(v), 10, 64)
			return n
		default:
			return []any{v}
		}
	}
	switch shape % 5 {
	case 0:
		return []any{elem(shape>>2, a), elem(shape>>4, b), elem(shape>>6, c)}
	case 1:
		return []any{elem(shape>>3, a), []any{elem(shape>>5, b), elem(shape>>6, c)}}
	case 2:
		return []any{a}
	case 3:
		return a
	default:
		return nil
	}
}

// FuzzDecode checks that no reply, however odd, makes a decoder panic, and
// that every failure is an ErrBadReply.
func FuzzDecode(f *testing.F) {
	f.Add(uint8(0x54), []byte("1"), []byte("2"), []byte("3"))
	f.Add(uint8(0), []byte(""), []byte(""), []byte(""))
	f.Add(uint8(0x21), []byte("0"), []byte("k"), []byte("x"))
	f.Add(uint8(3), []byte("99999999999999999999"), []byte("-1"), []byte("\x00"))
	f.Fuzz(func(t *testing.T, shape uint8, a, b, c []byte) {
		reply := replyFrom(shape, a, b, c)
		if _, err := decodeBucket(protocol.BucketKey{}, reply); err != nil && !errors.Is(err, protocol.ErrBadReply) {
			t.Errorf("decodeBucket: %v is not ErrBadReply", err)
		}
		if _, _, err := decodeScan(reply); err != nil && !errors.Is(err, protocol.ErrBadReply) {
			t.Errorf("decodeScan: %v is not ErrBadReply", err)
		}
		if _, err := decodeCount(reply); err != nil && !errors.Is(err, protocol.ErrBadReply) {
			t.Errorf("decodeCount: %v is not ErrBadReply", err)
		}
		for _, op := range []string{"hit", "get"} {
			if _, err := decodeCount7(op, reply); err != nil && !errors.Is(err, protocol.ErrBadReply) {
				t.Errorf("decodeCount7(%s): %v is not ErrBadReply", op, err)
			}
		}
		for a := protocol.FixWindow; a <= protocol.TokenBucket; a++ {
			h := &protocol.Hit{Policy: protocol.Policy{Algorithm: a, Prefix: "P", ScaleMs: 1000, Limit: 5, Rate: 1}, Cost: 1, Now: 1}
			got, err := decodeHit(h, reply)
			switch {
			case err != nil && !errors.Is(err, protocol.ErrBadReply):
				t.Errorf("decodeHit(%s): %v is not ErrBadReply", a, err)
			case err == nil && !got.Allowed && got.RetryAfterMs < 1 && got.RetryAfterMs != protocol.Never:
				t.Errorf("decodeHit(%s) = %+v: a deny without a wait", a, got)
			case err == nil && got.Allowed && got.RetryAfterMs != 0:
				t.Errorf("decodeHit(%s) = %+v: allowed with a wait", a, got)
			}
		}
		// The check script's reply, for a check of one or two limits: the
		// shape above, alone and as the element of a one-limit check, and
		// a pair of any two integers.
		chk := testCheck()
		x, _ := strconv.ParseInt(string(a), 10, 64)
		y, _ := strconv.ParseInt(string(b), 10, 64)
		for _, r := range []any{reply, []any{reply}, []any{[]any{x, y}}} {
			for n := 1; n <= 2; n++ {
				chk.Limits = chk.Limits[:n]
				got, err := decodeCheck(&chk, r)
				switch {
				case err != nil && !errors.Is(err, protocol.ErrBadReply):
					t.Errorf("decodeCheck: %v is not ErrBadReply", err)
				case err == nil && len(got) != n:
					t.Errorf("decodeCheck = %d decisions for %d limits", len(got), n)
				}
				for _, d := range got {
					if d.Allowed != (d.RetryAfterMs == 0) || (d.RetryAfterMs < 1 && d.RetryAfterMs != 0 && d.RetryAfterMs != protocol.Never) {
						t.Errorf("decodeCheck decided %+v", d)
					}
				}
			}
		}
	})
}

func TestScriptsBoundTheTTLAsOptionsDo(t *testing.T) {
	want := protocol.ExpirySeconds(protocol.MaxExpiryMs)
	assert.Equal(t, want, int64(maxTTL))
	for _, src := range []string{CountHitLua, coalescedLua, CheckLua} {
		assert.Contains(t, src, fmt.Sprintf("ttl > %d", want))
	}
	assert.Contains(t, coalescedLua, "'"+notRunCode+" '")
}
