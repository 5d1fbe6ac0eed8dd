package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// goBenchLine is one result line of go test -bench -benchmem.
type goBenchLine struct {
	name                   string
	nsPerOp, bytesPerOp    float64
	allocsPerOp            float64
	hasBytes, hasAllocsCol bool
}

// goBench is the library's own hot-path benchmark, run in the library's
// module: the allocation target is stated for it.
type goBench struct {
	// command is the command line and the directory it ran in.
	command, dir string
	lines        []goBenchLine
	err          error
}

// runGoBench runs go test -bench pattern -benchmem in dir (the library's
// module) and parses its result lines.
func runGoBench(ctx context.Context, dir, pattern, benchtime string) goBench {
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	args := []string{"test", "-run", "^$", "-bench", pattern, "-benchmem", "-benchtime", benchtime, "-count", "1", "."}
	gb := goBench{command: "go " + strings.Join(args, " "), dir: dir}
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		gb.err = fmt.Errorf("%v: %s", err, lastLines(out.String(), 15))
		return gb
	}
	gb.lines = parseGoBench(out.String())
	if len(gb.lines) == 0 {
		gb.err = fmt.Errorf("no benchmark matched %q: %s", pattern, lastLines(out.String(), 15))
	}
	return gb
}

// parseGoBench reads "BenchmarkX-2  N  123 ns/op  45 B/op  3 allocs/op"
// lines.
func parseGoBench(out string) []goBenchLine {
	var lines []goBenchLine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		l := goBenchLine{name: f[0]}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				l.nsPerOp = v
			case "B/op":
				l.bytesPerOp, l.hasBytes = v, true
			case "allocs/op":
				l.allocsPerOp, l.hasAllocsCol = v, true
			}
		}
		if l.nsPerOp > 0 {
			lines = append(lines, l)
		}
	}
	return lines
}

// lastLines returns the last n lines of s, trimmed.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
