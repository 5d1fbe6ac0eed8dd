package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// simulated runs the simulation and returns each algorithm's result by name.
func simulated(t *testing.T) map[string]result {
	t.Helper()
	rs, err := simulate()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 4 {
		t.Fatalf("simulate() gave %d results, want 4", len(rs))
	}
	by := map[string]result{}
	for _, r := range rs {
		if len(r.Hits) == 0 {
			t.Fatalf("%s: no hits", r.Algo.Name)
		}
		by[r.Algo.Name] = r
	}
	return by
}

// inSeconds counts the allowed hits of r in the whole seconds from..to,
// both included.
func inSeconds(r result, from, to int) int {
	return allowed(r.Hits, func(h hit) bool { c := column(h.At); return c >= from && c <= to })
}

// phaseIndex returns the index of the traffic phase named name.
func phaseIndex(t *testing.T, name string) int {
	t.Helper()
	for i, p := range traffic {
		if p.Name == name {
			return i
		}
	}
	t.Fatalf("no phase %q", name)
	return -1
}

func TestFixWindowAllowsTwiceTheLimitAcrossABoundary(t *testing.T) {
	r := simulated(t)["fix_window"]
	limit := int(r.Algo.Limit)
	burst := phaseIndex(t, "5/s over the 20 s boundary")
	if got := allowed(r.Hits, func(h hit) bool { return h.Phase == burst }); got != 2*limit {
		t.Errorf("allowed in the burst across the boundary = %d, want %d (the limit on each side)", got, 2*limit)
	}
	if got := mostIn(r.Hits, 10*time.Second); got != 2*limit {
		t.Errorf("mostIn(10s) = %d, want %d", got, 2*limit)
	}
	for w := 0; w < int(span/time.Second); w += 10 {
		if got := inSeconds(r, w, w+9); got > limit {
			t.Errorf("allowed in the window from %d s = %d, want at most %d", w, got, limit)
		}
	}
}

func TestSlidingWindowNeverExceedsTheLimit(t *testing.T) {
	r := simulated(t)["sliding_window"]
	limit := int(r.Algo.Limit)
	// A unit counted in second s counts until second s+10: any 10
	// consecutive whole seconds hold at most the limit.
	for a := -9; a < int(span/time.Second); a++ {
		if got := inSeconds(r, a, a+9); got > limit {
			t.Errorf("allowed in seconds %d..%d = %d, want at most %d", a, a+9, got, limit)
		}
	}
	burst := phaseIndex(t, "5/s over the 20 s boundary")
	if got := allowed(r.Hits, func(h hit) bool { return h.Phase == burst }); got != limit {
		t.Errorf("allowed in the burst across the boundary = %d, want %d", got, limit)
	}
	if got := mostIn(r.Hits, 10*time.Second); got != limit {
		t.Errorf("mostIn(10s) = %d, want %d", got, limit)
	}
}

func TestTokenBucketBurstsAfterIdlenessThenRefills(t *testing.T) {
	r := simulated(t)["token_bucket"]
	burst := phaseIndex(t, "10 in 1 s after idling")
	if got, want := allowed(r.Hits, func(h hit) bool { return h.Phase == burst }), int(r.Algo.Limit); got != want {
		t.Errorf("allowed in the burst after idling = %d, want the capacity %d", got, want)
	}
	// Then 2 requests a second get the refill rate, 1 a second.
	after := traffic[burst+1]
	for s := column(after.From); s < column(after.To); s++ {
		if got := inSeconds(r, s, s); got != 1 {
			t.Errorf("allowed in second %d = %d, want 1 (the refill rate)", s, got)
		}
	}
}

func TestLeakyBucketNeverExceedsItsCapacity(t *testing.T) {
	r := simulated(t)["leaky_bucket"]
	capacity := r.Algo.Limit
	for _, h := range r.Hits {
		if h.Allowed && h.Count > capacity {
			t.Errorf("hit at %v: level %d after an allowed hit, want at most the capacity %d", h.At, h.Count, capacity)
		}
	}
	// What leaks in n seconds (1 a second) plus the capacity bounds what
	// any n+1 consecutive seconds allow.
	end := int(span / time.Second)
	for a := 0; a < end; a++ {
		for b := a; b < end; b++ {
			if got, most := inSeconds(r, a, b), int(capacity)+(b-a); got > most {
				t.Errorf("allowed in seconds %d..%d = %d, want at most %d", a, b, got, most)
			}
		}
	}
	// Under a sustained 2/s it admits steadily, 1 a second, once full.
	steady := traffic[phaseIndex(t, "2/s")]
	for s := column(steady.From) + 2; s < column(steady.To); s++ {
		if got := inSeconds(r, s, s); got != 1 {
			t.Errorf("allowed in second %d = %d, want 1 (the leak rate)", s, got)
		}
	}
}

// With the same numbers a leaky bucket and a token bucket decide alike: the
// level of one is the capacity minus the tokens of the other. The docs say
// so; this keeps them honest.
func TestLeakyAndTokenBucketsDecideAlike(t *testing.T) {
	rs := simulated(t)
	leaky, token := rs["leaky_bucket"], rs["token_bucket"]
	for i, h := range leaky.Hits {
		o := token.Hits[i]
		if h.Allowed != o.Allowed {
			t.Errorf("hit at %v: leaky allowed %v, token allowed %v", h.At, h.Allowed, o.Allowed)
		}
		if h.Allowed && h.Count != token.Algo.Limit-o.Count {
			t.Errorf("hit at %v: leaky level %d, token tokens %d; want level = capacity - tokens", h.At, h.Count, o.Count)
		}
	}
}

func TestChartIsWellFormedXML(t *testing.T) {
	rs, err := simulate()
	if err != nil {
		t.Fatal(err)
	}
	svg := render(rs)
	d := xml.NewDecoder(strings.NewReader(svg))
	var root string
	var texts []string
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
				if tok.Name.Space != "http://www.w3.org/2000/svg" {
					t.Errorf("root namespace = %q, want the SVG namespace", tok.Name.Space)
				}
			}
		case xml.CharData:
			texts = append(texts, string(tok))
		}
	}
	if root != "svg" {
		t.Errorf("root element = %q, want svg", root)
	}
	all := strings.Join(texts, " ")
	for _, want := range []string{"fix_window", "sliding_window", "leaky_bucket", "token_bucket", "allowed", "denied", "time (s)"} {
		if !strings.Contains(all, want) {
			t.Errorf("the chart's text lacks %q", want)
		}
	}
}

func TestOutputIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	var outs [2][]byte
	var tables [2]string
	for i := range outs {
		path := filepath.Join(dir, "chart.svg")
		var stdout bytes.Buffer
		if err := run([]string{"-out", path}, &stdout, io.Discard); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		outs[i], tables[i] = b, stdout.String()
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Error("two runs wrote different SVGs")
	}
	if tables[0] != tables[1] {
		t.Errorf("two runs printed different tables:\n%s\n%s", tables[0], tables[1])
	}
	for _, want := range []string{"| fix_window", "| token_bucket", "| total |"} {
		if !strings.Contains(tables[0], want) {
			t.Errorf("the table lacks %q:\n%s", want, tables[0])
		}
	}
}

// The committed chart is what the program draws now.
func TestCommittedChartIsCurrent(t *testing.T) {
	committed, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "algorithms.svg"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := simulate()
	if err != nil {
		t.Fatal(err)
	}
	if string(committed) != render(rs) {
		t.Error("docs/algorithms.svg differs from what internal/cmd/algochart draws: run make charts")
	}
}

func TestRunRefusesBadArguments(t *testing.T) {
	for _, args := range [][]string{{"-nosuchflag"}, {"extra"}} {
		if err := run(args, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%q) = nil, want an error", args)
		}
	}
}
