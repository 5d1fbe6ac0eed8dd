// Package sfv serializes Structured Field Values for HTTP (RFC 9651): the
// Lists of parameterized Items that header fields such as RateLimit and
// RateLimit-Policy hold.
//
// # Types
//
// A bare item's Go type says what it is: int64 (or int) an Integer, string
// a String, [Token] a Token, []byte a Byte Sequence, bool a Boolean.
// Decimals, Dates, Display Strings, Inner Lists and Dictionaries are not
// supported: no field of this module needs them.
//
// # Errors
//
// A value RFC 9651 cannot carry is refused, never altered: an Integer out
// of ±999,999,999,999,999, a String with a byte outside printable ASCII
// (0x20–0x7E), a Token or a key of characters it may not hold, a key given
// twice in one item's parameters. The errors wrap protocol.ErrInvalid.
package sfv

import (
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/hammer-go/hammerredis/protocol"
)

// Token is a bare item serialized as an sf-token (RFC 9651, Section
// 3.3.4), unquoted: it starts with a letter or "*", then holds tchar, ":"
// and "/".
type Token string

// Param is one parameter of an Item: Key, then Value as a bare item. A
// Value of true is serialized as the key alone.
type Param struct {
	Key   string
	Value any
}

// Item is a bare item with its parameters, in order.
type Item struct {
	Value  any
	Params []Param
}

// MaxInteger bounds an Integer: RFC 9651 allows at most 15 digits.
const MaxInteger int64 = 999_999_999_999_999

// List returns the serialization of items as an sf-list (RFC 9651,
// Section 4.1.1): the items separated by ", ". An empty list serializes as
// "", which a sender leaves out of the message.
func List(items ...Item) (string, error) {
	b, err := AppendList(nil, items...)
	return string(b), err
}

// AppendList appends the sf-list of items to dst; on error, dst is
// returned as it came.
func AppendList(dst []byte, items ...Item) ([]byte, error) {
	out := dst
	for i, it := range items {
		if i > 0 {
			out = append(out, ", "...)
		}
		var err error
		if out, err = AppendItem(out, it); err != nil {
			return dst, fmt.Errorf("list member %d: %w", i, err)
		}
	}
	return out, nil
}

// AppendItem appends the sf-item it (RFC 9651, Section 4.1.3) to dst; on
// error, dst is returned as it came.
func AppendItem(dst []byte, it Item) ([]byte, error) {
	out, err := appendBare(dst, it.Value)
	if err != nil {
		return dst, err
	}
	for i, p := range it.Params {
		if err := checkKey(p.Key); err != nil {
			return dst, err
		}
		for _, q := range it.Params[:i] {
			if q.Key == p.Key {
				return dst, fmt.Errorf("%w: sfv: parameter %q is given twice", protocol.ErrInvalid, p.Key)
			}
		}
		out = append(append(out, ';'), p.Key...)
		if p.Value == true {
			continue
		}
		out = append(out, '=')
		if out, err = appendBare(out, p.Value); err != nil {
			return dst, fmt.Errorf("parameter %q: %w", p.Key, err)
		}
	}
	return out, nil
}

// appendBare appends the bare item v (RFC 9651, Section 4.1.3.1).
func appendBare(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case int64:
		return appendInteger(dst, v)
	case int:
		return appendInteger(dst, int64(v))
	case string:
		return appendString(dst, v)
	case Token:
		return appendToken(dst, v)
	case []byte:
		dst = append(dst, ':')
		dst = base64.StdEncoding.AppendEncode(dst, v)
		return append(dst, ':'), nil
	case bool:
		if v {
			return append(dst, "?1"...), nil
		}
		return append(dst, "?0"...), nil
	}
	return dst, fmt.Errorf("%w: sfv: a bare item cannot be a %T", protocol.ErrInvalid, v)
}

func appendInteger(dst []byte, n int64) ([]byte, error) {
	if n < -MaxInteger || n > MaxInteger {
		return dst, fmt.Errorf("%w: sfv: integer %d is out of range ±%d", protocol.ErrInvalid, n, MaxInteger)
	}
	return strconv.AppendInt(dst, n, 10), nil
}

// appendString quotes s, escaping '"' and '\' (Section 4.1.6).
func appendString(dst []byte, s string) ([]byte, error) {
	out := append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return dst, fmt.Errorf("%w: sfv: string %q has byte %#x at %d, outside printable ASCII",
				protocol.ErrInvalid, s, c, i)
		}
		if c == '"' || c == '\\' {
			out = append(out, '\\')
		}
		out = append(out, c)
	}
	return append(out, '"'), nil
}

// appendToken appends t unquoted (Section 4.1.7).
func appendToken(dst []byte, t Token) ([]byte, error) {
	if t == "" || !(isAlpha(t[0]) || t[0] == '*') {
		return dst, fmt.Errorf("%w: sfv: token %q must start with a letter or '*'", protocol.ErrInvalid, string(t))
	}
	for i := 1; i < len(t); i++ {
		if c := t[i]; !isTchar(c) && c != ':' && c != '/' {
			return dst, fmt.Errorf("%w: sfv: token %q may not hold %q", protocol.ErrInvalid, string(t), c)
		}
	}
	return append(dst, t...), nil
}

// checkKey checks a parameter key (Section 4.1.1.3): a lowercase letter or
// "*", then lowercase letters, digits, "_", "-", "." and "*".
func checkKey(k string) error {
	if k == "" || !(isLower(k[0]) || k[0] == '*') {
		return fmt.Errorf("%w: sfv: key %q must start with a lowercase letter or '*'", protocol.ErrInvalid, k)
	}
	for i := 1; i < len(k); i++ {
		c := k[i]
		if !isLower(c) && !isDigit(c) && c != '_' && c != '-' && c != '.' && c != '*' {
			return fmt.Errorf("%w: sfv: key %q may not hold %q", protocol.ErrInvalid, k, c)
		}
	}
	return nil
}

func isLower(c byte) bool { return 'a' <= c && c <= 'z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return isLower(c) || 'A' <= c && c <= 'Z' }

// isTchar reports a tchar of RFC 9110, Section 5.6.2.
func isTchar(c byte) bool {
	if isAlpha(c) || isDigit(c) {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
