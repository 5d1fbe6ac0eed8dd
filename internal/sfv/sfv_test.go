package sfv_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dunglas/httpsfv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hammer-go/hammerredis/internal/sfv"
	"github.com/hammer-go/hammerredis/protocol"
)

func TestList(t *testing.T) {
	tests := []struct {
		name  string
		items []sfv.Item
		want  string
	}{
		{"empty", nil, ""},
		{"strings and integers", []sfv.Item{
			{Value: "burst", Params: []sfv.Param{{"q", int64(100)}, {"w", 60}}},
			{Value: "daily", Params: []sfv.Param{{"q", int64(1000)}, {"w", 86400}}},
		}, `"burst";q=100;w=60, "daily";q=1000;w=86400`},
		{"escapes", []sfv.Item{{Value: `a "b" \c`}}, `"a \"b\" \\c"`},
		{"token, bytes and booleans", []sfv.Item{
			{Value: sfv.Token("quota"), Params: []sfv.Param{{"t", 1}, {"pk", []byte("App-999")}, {"x-on", true}, {"off", false}}},
		}, `quota;t=1;pk=:QXBwLTk5OQ==:;x-on;off=?0`},
		{"boolean item", []sfv.Item{{Value: true}, {Value: false}}, `?1, ?0`},
		{"integer bounds", []sfv.Item{{Value: sfv.MaxInteger}, {Value: -sfv.MaxInteger}}, `999999999999999, -999999999999999`},
		{"empty byte sequence", []sfv.Item{{Value: []byte{}}}, `::`},
		{"token of every kind of character", []sfv.Item{{Value: sfv.Token("*a1!#$%&'*+-.^_`|~:/")}}, "*a1!#$%&'*+-.^_`|~:/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sfv.List(tt.items...)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestListRefusesWhatRFC9651CannotCarry(t *testing.T) {
	tests := []struct {
		name string
		item sfv.Item
		want string
	}{
		{"integer too large", sfv.Item{Value: sfv.MaxInteger + 1}, "out of range"},
		{"integer too small", sfv.Item{Value: -sfv.MaxInteger - 1}, "out of range"},
		{"parameter out of range", sfv.Item{Value: "a", Params: []sfv.Param{{"q", int64(1) << 50}}}, `parameter "q"`},
		{"control character", sfv.Item{Value: "a\tb"}, "outside printable ASCII"},
		{"DEL", sfv.Item{Value: "a\x7f"}, "outside printable ASCII"},
		{"non-ASCII", sfv.Item{Value: "café"}, "outside printable ASCII"},
		{"empty token", sfv.Item{Value: sfv.Token("")}, "must start with"},
		{"token starting with a digit", sfv.Item{Value: sfv.Token("1a")}, "must start with"},
		{"token with a space", sfv.Item{Value: sfv.Token("a b")}, "may not hold"},
		{"token with a quote", sfv.Item{Value: sfv.Token(`a"`)}, "may not hold"},
		{"empty key", sfv.Item{Value: 1, Params: []sfv.Param{{"", 1}}}, "must start with"},
		{"uppercase key", sfv.Item{Value: 1, Params: []sfv.Param{{"Q", 1}}}, "must start with"},
		{"key with a space", sfv.Item{Value: 1, Params: []sfv.Param{{"a b", 1}}}, "may not hold"},
		{"key given twice", sfv.Item{Value: 1, Params: []sfv.Param{{"q", 1}, {"q", 2}}}, "given twice"},
		{"unsupported type", sfv.Item{Value: 1.5}, "cannot be a float64"},
		{"nil", sfv.Item{}, "cannot be a <nil>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sfv.List(sfv.Item{Value: "ok"}, tt.item)
			assert.Empty(t, got)
			assert.ErrorIs(t, err, protocol.ErrInvalid)
			assert.ErrorContains(t, err, tt.want)
			assert.ErrorContains(t, err, "list member 1")

			dst := []byte("kept")
			dst, err = sfv.AppendList(dst, tt.item)
			assert.Error(t, err)
			assert.Equal(t, "kept", string(dst), "dst as it came")
		})
	}
}

// toSFV returns items as httpsfv's List.
func toSFV(items []sfv.Item) httpsfv.List {
	bare := func(v any) any {
		switch v := v.(type) {
		case sfv.Token:
			return httpsfv.Token(v)
		case int:
			return int64(v)
		}
		return v
	}
	var l httpsfv.List
	for _, it := range items {
		p := httpsfv.NewParams()
		for _, kv := range it.Params {
			p.Add(kv.Key, bare(kv.Value))
		}
		l = append(l, httpsfv.Item{Value: bare(it.Value), Params: p})
	}
	return l
}

// fromSFV returns httpsfv's list as items, failing the test on a member
// this package cannot write (inner lists, decimals, dates).
func fromSFV(t testing.TB, l httpsfv.List) []sfv.Item {
	t.Helper()
	bare := func(v any) any {
		switch v := v.(type) {
		case httpsfv.Token:
			return sfv.Token(v)
		case int64, string, []byte, bool:
			return v
		}
		t.Fatalf("a bare item of type %T", v)
		return nil
	}
	var items []sfv.Item
	for _, m := range l {
		it, ok := m.(httpsfv.Item)
		require.True(t, ok, "an inner list")
		out := sfv.Item{Value: bare(it.Value)}
		for _, k := range it.Params.Names() {
			v, _ := it.Params.Get(k)
			out.Params = append(out.Params, sfv.Param{Key: k, Value: bare(v)})
		}
		items = append(items, out)
	}
	return items
}

// TestDraftExamplesRoundTrip: the field values of the examples of
// draft-ietf-httpapi-ratelimit-headers-10 and -11 (the same in both but
// for Section 8.5's, and B.3.1 of draft 10), parsed by httpsfv, serialize
// to httpsfv's own serialization: the canonical form of RFC 9651, Section
// 4.1 (", " between members; the drafts sometimes write ",").
func TestDraftExamplesRoundTrip(t *testing.T) {
	for _, field := range draftExamples {
		l, err := httpsfv.UnmarshalList([]string{field})
		require.NoError(t, err, "%s", field)
		want, err := httpsfv.Marshal(l)
		require.NoError(t, err)
		got, err := sfv.List(fromSFV(t, l)...)
		require.NoError(t, err, "%s", field)
		assert.Equal(t, want, got, "%s", field)
	}
}

// draftExamples are the RateLimit-Policy and RateLimit field values of the
// examples of draft-ietf-httpapi-ratelimit-headers-10 and -11 (Sections
// 3, 3.2, 4, 4.2, 6, 7, 8.5 and Appendix B), copied as they stand.
var draftExamples = []string{
	`"burst";q=100;w=60,"daily";q=1000;w=86400`,
	`"default";q=100;w=10`,
	`"permin";q=50;w=60,"perhr";q=1000;w=3600`,
	`"peruser";q=100;w=60;pk=:cHsdsRa894==:`,
	`"peruser";q=65535;qu="content-bytes";w=10;pk=:sdfjLJUOUH==:`,
	`"default";r=50;t=30`,
	`"default";r=999;pk=:dHJpYWwxMjEzMjM=:`,
	`"default";r=300000000;t=60;pk=:QXBwLTk5OQ==:`,
	`"problemPolicy";r=0;t=10`,
	`"default";r=1;t=7`,
	`"daily";r=1;t=36400`, // draft 10, Section 8.5
	`"daily";r=1;t=86400`, // draft 11, Section 8.5
	`"somepolicy";q=10000;w=1000`,
	`"somepolicy";r=10000;t=10`,
	`"default";r=0;t=50`,
	`"default";r=0;t=48`,
	`"dayLimit";r=100;t=36000`,
	`"basic";q=100;w=60`,
	`"basic";r=60;t=58`,
	`"basic";r=20;t=56`,
	`"default";r=0;t=5`,
	`"fixedwindow";r=99;t=50`,
	`"fixedwindow";q=100;w=60`,
	`"dynamic";q=100;w=60`,
	`"dynamic";r=9;t=50`,
	`"dynamic";q=15;w=20`,
	`"dynamic";r=0;t=20`,
	`"dynamic";r=15;t=40`,
	`quota;q=100;w=1`, // draft 10 only, B.3.1: a Token, though Section 3 wants a String
	`quota;t=1`,
	`quota;q=10`,
	`"hour";q=1000;w=3600, "day";q=5000;w=86400`,
	`"default";r=50;t=60`,
	`"sliding";q=100;w=60;burst=1000`,
	`"fixed";q=5000;w=3600;burst=0`,
	`"sliding";r=50;t=44`,
	`"sliding";q=12;w=1`,
	`"sliding";q=12;r=6;t=1`,
	`"sliding";q=12;r=1;t=1`,
}

// FuzzList: whatever the name, numbers, key, token and bytes, List either
// refuses the item with protocol.ErrInvalid, as httpsfv refuses to
// serialize it, or writes what httpsfv writes, which httpsfv parses back
// to the same values.
func FuzzList(f *testing.F) {
	f.Add("default", int64(100), int64(60), "acme-burst", "quota", []byte("App-999"), true)
	f.Add(`a "quoted" \ name`, int64(-1), sfv.MaxInteger, "*k", "*/:x", []byte{}, false)
	f.Add("caf\u00e9", sfv.MaxInteger+1, int64(0), "Q", "1a", []byte{0, 255}, true)
	f.Add("tab\there", int64(0), -sfv.MaxInteger-1, "q", "a b", []byte(nil), false)
	f.Fuzz(func(t *testing.T, name string, q, w int64, key, token string, pk []byte, flag bool) {
		items := []sfv.Item{
			{Value: name, Params: []sfv.Param{{"q", q}, {"w", w}, {key, sfv.Token(token)}, {"pk", pk}, {"f", flag}}},
			{Value: sfv.Token(token), Params: []sfv.Param{{"r", q}}},
			{Value: w},
		}
		got, err := sfv.List(items...)
		if key == "q" || key == "w" || key == "pk" || key == "f" {
			require.ErrorIs(t, err, protocol.ErrInvalid, "a key given twice") // or something else first
			return
		}
		want, wantErr := httpsfv.Marshal(toSFV(items))
		if wantErr != nil {
			require.ErrorIs(t, err, protocol.ErrInvalid, "httpsfv refuses it: %v", wantErr)
			require.Empty(t, got)
			return
		}
		require.NoError(t, err)
		require.Equal(t, want, got)

		l, err := httpsfv.UnmarshalList([]string{got})
		require.NoError(t, err, "%s", got)
		back := fromSFV(t, l)
		require.Len(t, back, 3)
		require.Equal(t, name, back[0].Value)
		wantParams := []sfv.Param{{"q", q}, {"w", w}, {key, sfv.Token(token)}, {"pk", pk}, {"f", flag}}
		require.Len(t, back[0].Params, len(wantParams), "%s", got)
		for i, p := range wantParams {
			require.Equal(t, p.Key, back[0].Params[i].Key)
			if b, ok := p.Value.([]byte); ok {
				require.True(t, bytes.Equal(b, back[0].Params[i].Value.([]byte)), "%s", got)
				continue
			}
			require.Equal(t, p.Value, back[0].Params[i].Value, "%s", got)
		}
		require.Equal(t, sfv.Token(token), back[1].Value)
		require.Equal(t, w, back[2].Value)
		require.False(t, strings.ContainsAny(got, "\r\n\x00"), "a field value never holds CR, LF or NUL")
	})
}
