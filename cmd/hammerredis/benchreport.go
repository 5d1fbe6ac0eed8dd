package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hammer-go/hammerredis/protocol"
)

// benchReport is the outcome of a bench run, as --json prints it.
type benchReport struct {
	Redis         string      `json:"redis"` // without credentials
	PrivateServer bool        `json:"private_server"`
	KeyPrefix     string      `json:"key_prefix"`
	Workload      string      `json:"workload"`
	DurationMs    int64       `json:"duration_ms"`
	Pool          int         `json:"pool"`
	MaxPipeline   int         `json:"max_pipeline"`
	Coalescing    bool        `json:"coalescing"`
	ExpiryMs      int64       `json:"expiry_ms"`
	KeysDeleted   int         `json:"keys_deleted"`
	Interrupted   bool        `json:"interrupted"`
	Cells         []benchCell `json:"cells"`
	Error         string      `json:"error,omitempty"`

	desc       string // how the workload picks ids
	cleanUpErr error  // why the run's keys could not be deleted
}

// benchCell is one row of the report.
type benchCell struct {
	Callers        int               `json:"callers"`
	Checks         int64             `json:"checks"`
	ElapsedMs      float64           `json:"elapsed_ms"`
	ChecksPerSec   float64           `json:"checks_per_sec"`
	P50Us          float64           `json:"p50_us"`
	P99Us          float64           `json:"p99_us"`
	AllocsPerCheck float64           `json:"allocs_per_check"`
	Errors         uint64            `json:"errors"`
	ErrorsByKind   map[string]uint64 `json:"errors_by_kind"`
	FirstError     string            `json:"first_error,omitempty"`

	res cellResult
}

// newBenchReport returns the report of a run with flags f and key prefix
// prefix, with no cell yet.
func newBenchReport(f benchFlags, prefix string) *benchReport {
	return &benchReport{
		KeyPrefix:   prefix,
		Workload:    f.workload.name,
		DurationMs:  f.duration.Milliseconds(),
		Pool:        f.pool,
		MaxPipeline: f.maxPipeline,
		Coalescing:  !f.noCoalesce,
		ExpiryMs:    benchExpiryMs,
		Cells:       []benchCell{},
		desc:        f.workload.desc,
	}
}

// add appends a finished cell.
func (rep *benchReport) add(r cellResult) {
	c := benchCell{
		Callers:        r.callers,
		Checks:         r.checks,
		ElapsedMs:      float64(r.elapsed) / float64(time.Millisecond),
		ChecksPerSec:   r.rate(),
		P50Us:          float64(r.p50) / float64(time.Microsecond),
		P99Us:          float64(r.p99) / float64(time.Microsecond),
		AllocsPerCheck: r.allocs,
		Errors:         r.stats.Errors.Total(),
		ErrorsByKind:   map[string]uint64{},
		FirstError:     r.firstErr,
		res:            r,
	}
	for _, k := range errorKinds(r.stats.Errors) {
		c.ErrorsByKind[k.key] = k.n
	}
	rep.Cells = append(rep.Cells, c)
}

// errorKind is one kind of the backend's errors and its count.
type errorKind struct {
	name, key string // as the table and the JSON show it
	n         uint64
}

// errorKinds lists the backend's error counts by the sentinel they match.
func errorKinds(e protocol.ErrorCounts) []errorKind {
	return []errorKind{
		{"ErrClosed", "closed", e.Closed}, {"ErrDisconnected", "disconnected", e.Disconnected},
		{"ErrTimeout", "timeout", e.Timeout}, {"canceled", "canceled", e.Canceled},
		{"ErrStopped", "stopped", e.Stopped}, {"ErrInvalid", "invalid", e.Invalid},
		{"ErrRedis", "redis", e.Redis}, {"ErrBadReply", "bad_reply", e.BadReply}, {"other", "other", e.Other},
	}
}

// cellSummary is the progress line of a finished cell.
func cellSummary(r cellResult) string {
	return fmt.Sprintf("callers %d  done: %s checks/s, p50 %v, p99 %v, errors %s",
		r.callers, shortRate(r.rate()), shortDuration(r.p50), shortDuration(r.p99), errorText(r.stats.Errors))
}

// errorText shows the backend's errors: "0", or their total and kinds, such
// as "12 (ErrClosed 10, ErrTimeout 2)".
func errorText(e protocol.ErrorCounts) string {
	if e.Total() == 0 {
		return "0"
	}
	var kinds []string
	for _, k := range errorKinds(e) {
		if k.n > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", k.name, k.n))
		}
	}
	return fmt.Sprintf("%d (%s)", e.Total(), strings.Join(kinds, ", "))
}

// printBenchTable prints the report as aligned columns.
func printBenchTable(w io.Writer, rep *benchReport) {
	coalescing := "on"
	if !rep.Coalescing {
		coalescing = "off"
	}
	where := rep.Redis
	if rep.PrivateServer {
		where += " (private redis-server)"
	}
	fmt.Fprintf(w, "hammerredis bench: %s, %s workload (%s), %v per row\n",
		where, rep.Workload, rep.desc, time.Duration(rep.DurationMs)*time.Millisecond)
	fmt.Fprintf(w, "backend: pool %d, max pipeline %d, coalescing %s; CheckRate(id, %v, no limit reached)\n\n",
		rep.Pool, rep.MaxPipeline, coalescing, benchWindow)
	fmt.Fprintf(w, "%7s  %10s  %10s  %9s  %9s  %12s  %s\n",
		"callers", "checks", "checks/s", "p50", "p99", "allocs/check", "errors")
	for _, c := range rep.Cells {
		fmt.Fprintf(w, "%7d  %10d  %10.0f  %s  %s  %12.1f  %s\n",
			c.Callers, c.Checks, c.ChecksPerSec, padLeft(shortDuration(c.res.p50).String(), 9),
			padLeft(shortDuration(c.res.p99).String(), 9),
			c.AllocsPerCheck, errorText(c.res.stats.Errors))
	}
	if len(rep.Cells) == 0 {
		fmt.Fprintln(w, "(no row finished)")
	}
}

// printBenchJSON prints the report as one JSON object.
func printBenchJSON(w io.Writer, rep *benchReport) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(rep) // cannot fail: plain structs
}

// padLeft right-aligns s in n columns, counting runes rather than bytes:
// "µs" is one column but two bytes, so %9s would misalign it.
func padLeft(s string, n int) string {
	return strings.Repeat(" ", max(n-utf8.RuneCountInString(s), 0)) + s
}

// shortDuration rounds d to three significant digits: 98.3µs, 201µs,
// 1.23ms.
func shortDuration(d time.Duration) time.Duration {
	unit := time.Duration(1)
	for d/unit >= 1000 {
		unit *= 10
	}
	return d.Round(unit)
}
