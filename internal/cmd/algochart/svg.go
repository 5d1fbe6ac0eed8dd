package main

import (
	"fmt"
	"strings"
	"time"
)

// The chart's geometry, in pixels. Every coordinate is an integer, so the
// output does not depend on float formatting.
const (
	left      = 200 // the row labels
	pxPerSec  = 12  // one column per second
	right     = 170 // the totals
	plotW     = int(span/time.Second) * pxPerSec
	width     = left + plotW + right
	pitch     = 8  // one mark's height in a stack
	markR     = 3  // an allowed mark's radius; a denied mark is a cross as wide
	rowGap    = 22 // between rows
	fontSize  = 12
	smallFont = 11
)

// Colours: a dark blue filled circle for allowed, an orange cross for
// denied, a grey square for a request; dark and light in grayscale, and
// told apart by shape and by side of the line anyway.
const (
	colAllowed = "#1a4f8b"
	colDenied  = "#e08214"
	colRequest = "#8c8c8c"
	colGrid    = "#d9d9d9"
	colShade   = "#f0f0f0"
	colText    = "#222222"
	colNote    = "#555555"
)

// svgWriter writes SVG elements.
type svgWriter struct{ strings.Builder }

func (w *svgWriter) printf(format string, a ...any) { fmt.Fprintf(&w.Builder, format, a...) }

// text writes s at x, y; attrs are extra attributes.
func (w *svgWriter) text(x, y int, attrs, s string) {
	w.printf(`<text x="%d" y="%d"%s>%s</text>`+"\n", x, y, attrs, escape(s))
}

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")

func escape(s string) string { return escaper.Replace(s) }

// column is the second a hit falls in.
func column(at time.Duration) int { return int(at / time.Second) }

// colX is the x of column c's centre.
func colX(c int) int { return left + c*pxPerSec + pxPerSec/2 }

// secX is the x of second s on the axis.
func secX(s int) int { return left + s*pxPerSec }

// stacks returns, per column, how many hits of hs are allowed and denied.
func stacks(hs []hit) (up, down map[int]int) {
	up, down = map[int]int{}, map[int]int{}
	for _, h := range hs {
		if h.Allowed {
			up[column(h.At)]++
		} else {
			down[column(h.At)]++
		}
	}
	return up, down
}

func maxOf(m map[int]int) int {
	n := 0
	for _, v := range m {
		n = max(n, v)
	}
	return n
}

// mostIn returns the most allowed hits of hs in any span of d (from one
// allowed hit to before at+d).
func mostIn(hs []hit, d time.Duration) int {
	most := 0
	for _, h := range hs {
		if h.Allowed {
			most = max(most, allowed(hs, func(o hit) bool { return o.At >= h.At && o.At < h.At+d }))
		}
	}
	return most
}

// render draws the chart: the traffic, then one row per algorithm over a
// shared time axis.
func render(rs []result) string {
	// Every row gets the same room above and below its line: the tallest
	// stacks of any row, and at least the limit above.
	var maxUp, maxDown int
	var requests []hit
	for i, r := range rs {
		up, down := stacks(r.Hits)
		maxUp, maxDown = max(maxUp, maxOf(up), int(r.Algo.Limit)), max(maxDown, maxOf(down))
		if i == 0 {
			for _, h := range r.Hits {
				requests = append(requests, hit{At: h.At, Phase: h.Phase, Allowed: true})
			}
		}
	}
	reqUp, _ := stacks(requests)
	above := (maxUp + 2) * pitch // room for a window's count over the stacks
	below := (maxDown + 1) * pitch

	const top = 52 // under the title
	phaseY := top + 14
	trafficBase := phaseY + 12 + (maxOf(reqUp)+1)*pitch
	firstRow := trafficBase + rowGap
	rowH := above + below
	axisY := firstRow + len(rs)*(rowH+rowGap) - rowGap + 6
	legendY := axisY + 44
	height := legendY + 4*18 + 8

	var w svgWriter
	w.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="%d" fill="%s">`+"\n",
		width, height, width, height, fontSize, colText)
	w.printf("<title>Hammer 7's four algorithms under one traffic pattern</title>\n")
	w.printf("<desc>%s</desc>\n", escape(describe(rs)))
	w.printf(`<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	w.text(left, 22, ` font-size="15" font-weight="bold"`, "Hammer 7's algorithms under one traffic pattern: allowed and denied hits over time")
	w.text(left, 40, ` fill="`+colNote+`"`, "hammerredis package hammer7 on package memory's backend (the Redis scripts' rules), stepped clock; one client, each hit costs 1")

	// Vertical grid every 10 s, through the traffic and every row.
	for s := 0; s <= int(span/time.Second); s += 10 {
		w.printf(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`+"\n", secX(s), phaseY+4, secX(s), axisY, colGrid)
	}

	// The phases and the traffic.
	for _, p := range traffic {
		x1, x2 := secX(0)+int(p.From*pxPerSec/time.Second), secX(0)+int(p.To*pxPerSec/time.Second)
		w.printf(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", x1, phaseY+4, x2, phaseY+4, colRequest)
		if x2-x1 < 80 {
			// A short phase's name ends where it ends, over the idle time
			// before it.
			w.text(x2, phaseY, ` text-anchor="end" font-size="`+fmt.Sprint(smallFont)+`"`, p.Name)
		} else {
			w.text((x1+x2)/2, phaseY, ` text-anchor="middle" font-size="`+fmt.Sprint(smallFont)+`"`, p.Name)
		}
	}
	w.text(left-10, trafficBase-4, ` text-anchor="end" font-weight="bold"`, "requests")
	w.text(left-10, trafficBase+10, ` text-anchor="end" fill="`+colNote+`" font-size="`+fmt.Sprint(smallFont)+`"`, "the same for every row")
	w.printf(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`+"\n", left, trafficBase, left+plotW, trafficBase, colText)
	drawn := map[int]int{}
	for _, h := range requests {
		c := column(h.At)
		k := drawn[c]
		drawn[c]++
		w.printf(`<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", colX(c)-markR, trafficBase-k*pitch-pitch/2-markR, 2*markR, 2*markR, colRequest)
	}
	w.text(left+plotW+12, trafficBase-4, ` font-weight="bold"`, "allowed")
	w.text(left+plotW+12, trafficBase+10, ` fill="`+colNote+`" font-size="`+fmt.Sprint(smallFont)+`"`, "most in any 10 s")

	for i, r := range rs {
		rowTop := firstRow + i*(rowH+rowGap)
		drawRow(&w, r, rowTop, rowTop+above, below)
	}

	// The time axis.
	w.printf(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`+"\n", left, axisY, left+plotW, axisY, colText)
	for s := 0; s <= int(span/time.Second); s += 5 {
		tick := 4
		if s%10 == 0 {
			tick = 7
			w.text(secX(s), axisY+20, ` text-anchor="middle"`, fmt.Sprint(s))
		}
		w.printf(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`+"\n", secX(s), axisY, secX(s), axisY+tick, colText)
	}
	w.text(left+plotW+12, axisY+20, "", "time (s)")

	// The legend and how to read the chart.
	x := left
	w.printf(`<circle cx="%d" cy="%d" r="%d" fill="%s"/>`+"\n", x+markR, legendY-4, markR, colAllowed)
	w.text(x+12, legendY, "", "allowed (stacks up from a row's line)")
	x += 250
	cross(&w, x+markR, legendY-4)
	w.text(x+12, legendY, "", "denied (stacks down)")
	x += 160
	w.printf(`<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", x, legendY-4-markR, 2*markR, 2*markR, colRequest)
	w.text(x+12, legendY, "", "request")
	x += 80
	w.printf(`<rect x="%d" y="%d" width="%d" height="%d" fill="%s" stroke="%s"/>`+"\n", x, legendY-10, 12, 12, colShade, colGrid)
	w.text(x+18, legendY, "", "every other fixed window")
	note := ` fill="` + colNote + `" font-size="` + fmt.Sprint(smallFont) + `"`
	w.text(left, legendY+20, note, "One column per second, its hits in order of arrival; dashed: the limit or capacity. fix_window's numbers: the hits allowed per fixed window.")
	w.text(left, legendY+36, note, "The clock starts at 2100-01-01 00:00:00 UTC; fixed windows are aligned on the Unix epoch, so they start every 10 s from 0.")
	w.text(left, legendY+52, note, "With the same numbers, leaky_bucket and token_bucket decide alike: one stores the level, the other the tokens left (docs/algorithms.md).")
	w.text(left, legendY+68, note, "Drawn by internal/cmd/algochart (make charts).")
	w.printf("</svg>\n")
	return w.String()
}

// drawRow draws one algorithm's hits around the line at base.
func drawRow(w *svgWriter, r result, rowTop, base, below int) {
	a := r.Algo
	if a.Name == "fix_window" {
		for s := 0; s < int(span/time.Second); s += 10 {
			if s/10%2 == 1 {
				w.printf(`<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", secX(s), rowTop, 10*pxPerSec, base+below-rowTop, colShade)
			}
			n := allowed(r.Hits, func(h hit) bool { return column(h.At)/10 == s/10 })
			w.text(secX(s+5), rowTop+10, ` text-anchor="middle" fill="`+colNote+`" font-size="`+fmt.Sprint(smallFont)+`"`, fmt.Sprint(n))
		}
		w.printf(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`+"\n", secX(0), rowTop, secX(0), base+below, colGrid)
	}
	// The limit, as a stack's height: a column can hold at most that many
	// allowed hits, whichever the algorithm.
	limitY := base - int(a.Limit)*pitch
	w.printf(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-dasharray="3 3"/>`+"\n", left, limitY, left+plotW, limitY, colGrid)
	w.text(left-4, limitY+4, ` text-anchor="end" fill="`+colNote+`" font-size="`+fmt.Sprint(smallFont)+`"`, fmt.Sprint(a.Limit))
	w.printf(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`+"\n", left, base, left+plotW, base, colText)

	w.text(left-26, base-18, ` text-anchor="end" font-weight="bold"`, a.Name)
	w.text(left-26, base-3, ` text-anchor="end"`, a.Label)
	if sub := subLabel(a.Name); sub != "" {
		w.text(left-26, base+13, ` text-anchor="end" fill="`+colNote+`" font-size="`+fmt.Sprint(smallFont)+`"`, sub)
	}

	up, down := map[int]int{}, map[int]int{}
	for _, h := range r.Hits {
		c := column(h.At)
		if h.Allowed {
			k := up[c]
			up[c]++
			w.printf(`<circle cx="%d" cy="%d" r="%d" fill="%s"/>`+"\n", colX(c), base-k*pitch-pitch/2, markR, colAllowed)
		} else {
			k := down[c]
			down[c]++
			cross(w, colX(c), base+k*pitch+pitch/2)
		}
	}

	n := allowed(r.Hits, func(hit) bool { return true })
	w.text(left+plotW+12, base-3, ` font-weight="bold"`, fmt.Sprintf("%d of %d", n, len(r.Hits)))
	w.text(left+plotW+12, base+13, ` fill="`+colNote+`" font-size="`+fmt.Sprint(smallFont)+`"`, fmt.Sprintf("%d in 10 s", mostIn(r.Hits, 10*time.Second)))
}

// subLabel is what a row's label adds in small print.
func subLabel(name string) string {
	switch name {
	case "fix_window":
		return "denied hits count too"
	case "sliding_window":
		return "counted in whole seconds"
	case "leaky_bucket":
		return "starts empty"
	case "token_bucket":
		return "starts full"
	}
	return ""
}

// cross draws a denied mark centred on x, y.
func cross(w *svgWriter, x, y int) {
	w.printf(`<path d="M%d %dL%d %dM%d %dL%d %d" stroke="%s" stroke-width="2" fill="none"/>`+"\n",
		x-markR, y-markR, x+markR, y+markR, x-markR, y+markR, x+markR, y-markR, colDenied)
}

// describe says in words what the chart shows, for its <desc>.
func describe(rs []result) string {
	var b strings.Builder
	b.WriteString("The same requests, one client at a time, against four limiters; per algorithm, hits allowed of all:")
	for _, r := range rs {
		fmt.Fprintf(&b, " %s (%s) %d of %d, at most %d in any 10 s;", r.Algo.Name, r.Algo.Label,
			allowed(r.Hits, func(hit) bool { return true }), len(r.Hits), mostIn(r.Hits, 10*time.Second))
	}
	return strings.TrimSuffix(b.String(), ";") + "."
}
