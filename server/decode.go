package server

import (
	"fmt"
	"strconv"

	"github.com/hammer-go/hammerredis/protocol"
)

// The decoders below never assert a reply's type without checking it: a
// reply of an unexpected shape becomes an ErrBadReply error naming its type.

// decodeCount decodes the integer reply of the count_hit script.
func decodeCount(reply any) (int64, error) {
	switch v := reply.(type) {
	case int64:
		return v, nil
	case []byte:
		return parseInt(v, "count")
	default:
		return 0, fmt.Errorf("%w: count_hit replied %T, want an integer", protocol.ErrBadReply, reply)
	}
}

// decodeBucket decodes the reply of HMGET key count created updated. All
// three fields missing is no bucket (nil, nil); a partly filled or
// non-integer hash is an error.
func decodeBucket(key protocol.BucketKey, reply any) (*protocol.BucketInfo, error) {
	vals, ok := reply.([]any)
	if !ok || len(vals) != 3 {
		return nil, fmt.Errorf("%w: HMGET replied %T of %d elements, want 3 values", protocol.ErrBadReply, reply, lenOf(reply))
	}
	if vals[0] == nil && vals[1] == nil && vals[2] == nil {
		return nil, nil
	}
	names := [3]string{protocol.FieldCount, protocol.FieldCreated, protocol.FieldUpdated}
	var n [3]int64
	for i, v := range vals {
		b, ok := v.([]byte)
		if !ok {
			if v == nil {
				return nil, fmt.Errorf("%w: bucket hash has no %q field", protocol.ErrBadReply, names[i])
			}
			return nil, fmt.Errorf("%w: field %q is %T, want a bulk string", protocol.ErrBadReply, names[i], v)
		}
		var err error
		if n[i], err = parseInt(b, names[i]); err != nil {
			return nil, err
		}
	}
	return &protocol.BucketInfo{Key: key, Count: n[0], Created: n[1], Updated: n[2]}, nil
}

// decodeScan decodes a SCAN reply: [cursor, [key, ...]].
func decodeScan(reply any) (cursor string, keys []string, err error) {
	vals, ok := reply.([]any)
	if !ok || len(vals) != 2 {
		return "", nil, fmt.Errorf("%w: SCAN replied %T of %d elements, want 2", protocol.ErrBadReply, reply, lenOf(reply))
	}
	c, ok := vals[0].([]byte)
	if !ok {
		return "", nil, fmt.Errorf("%w: SCAN cursor is %T, want a bulk string", protocol.ErrBadReply, vals[0])
	}
	if _, err := strconv.ParseUint(string(c), 10, 64); err != nil {
		return "", nil, fmt.Errorf("%w: SCAN cursor %.20q is not a number", protocol.ErrBadReply, c)
	}
	list, ok := vals[1].([]any)
	if !ok {
		return "", nil, fmt.Errorf("%w: SCAN keys are %T, want an array", protocol.ErrBadReply, vals[1])
	}
	keys = make([]string, 0, len(list))
	for _, k := range list {
		b, ok := k.([]byte)
		if !ok {
			return "", nil, fmt.Errorf("%w: SCAN key is %T, want a bulk string", protocol.ErrBadReply, k)
		}
		keys = append(keys, string(b))
	}
	return string(c), keys, nil
}

// decodeInt decodes an integer reply, such as DEL's.
func decodeInt(cmd string, reply any) (int64, error) {
	if v, ok := reply.(int64); ok {
		return v, nil
	}
	return 0, fmt.Errorf("%w: %s replied %T, want an integer", protocol.ErrBadReply, cmd, reply)
}

func parseInt(b []byte, field string) (int64, error) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: field %q is %.20q, want a base-10 integer", protocol.ErrBadReply, field, b)
	}
	return n, nil
}

func lenOf(reply any) int {
	if v, ok := reply.([]any); ok {
		return len(v)
	}
	return 0
}
