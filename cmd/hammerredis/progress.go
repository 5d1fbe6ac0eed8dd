package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progressWidth is the number of cells of the progress bar.
const progressWidth = 18

// progressEvery is how often the progress bar is redrawn.
const progressEvery = 100 * time.Millisecond

// progressLine is the progress bar of a bench cell: callers, how much of the
// cell is done (frac, clamped to 0-1) as a bar of width cells and a
// percentage, the time left and the rate so far. For example, with width
// 18:
//
//	callers 64  [#########.........]  52%  3.1s left  81.2k checks/s
func progressLine(callers int, frac float64, width int, left time.Duration, rate float64) string {
	frac = min(max(frac, 0), 1)
	done := int(frac * float64(width))
	return fmt.Sprintf("callers %d  [%s%s]  %2d%%  %.1fs left  %s checks/s",
		callers, strings.Repeat("#", done), strings.Repeat(".", width-done),
		int(frac*100), max(left, 0).Seconds(), shortRate(rate))
}

// shortRate shows a rate with about three significant digits: 812, 81.2k,
// 1.23M.
func shortRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2fM", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1fk", r/1e3)
	default:
		return fmt.Sprintf("%.0f", r)
	}
}

// progress shows how a bench run advances on stderr: on a terminal a single
// line redrawn in place ten times a second, replaced by a summary when a
// cell ends; elsewhere (pipes, files, CI logs) only that summary, one plain
// line per cell, with no carriage returns.
type progress struct {
	w    io.Writer
	live bool // w is a terminal: redraw the bar
}

// newProgress returns the progress display for w.
func newProgress(w io.Writer) *progress {
	return &progress{w: w, live: isTerminal(w)}
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// draw redraws the bar, on a terminal only.
func (p *progress) draw(line string) {
	if p.live {
		// \x1b[K erases what a longer previous line left.
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
	}
}

// done ends a cell with its summary line.
func (p *progress) done(line string) {
	if p.live {
		fmt.Fprintf(p.w, "\r%s\x1b[K\n", line)
		return
	}
	fmt.Fprintln(p.w, line)
}

// clear erases the bar, on a terminal only, before other output.
func (p *progress) clear() {
	if p.live {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}
