package main

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// machine describes where the benchmark ran.
type machine struct {
	nproc, gomaxprocs   int
	cpu, kernel         string
	goVersion, platform string
	redisVersion        string
	benchmarkVersion    string
	// loadavg is /proc/loadavg's 1, 5 and 15 minute load averages when the
	// run started.
	loadavg string
}

// describeMachine gathers the machine's facts; unknown ones are "unknown".
func describeMachine(srv *redisServer) machine {
	m := machine{
		nproc:      runtime.NumCPU(),
		gomaxprocs: runtime.GOMAXPROCS(0),
		goVersion:  runtime.Version(),
		platform:   runtime.GOOS + "/" + runtime.GOARCH,
		cpu:        "unknown",
		kernel:     "unknown",
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = "Linux " + strings.TrimSpace(string(b))
	}
	m.loadavg = "unknown"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.loadavg = strings.Join(f[:3], " ")
		}
	}
	m.redisVersion = "unknown"
	if v, err := srv.version(); err == nil {
		m.redisVersion = v
	}
	m.benchmarkVersion = "unknown"
	if out, err := exec.Command("redis-benchmark", "--version").Output(); err == nil {
		m.benchmarkVersion = strings.TrimSpace(string(out))
	}
	return m
}
