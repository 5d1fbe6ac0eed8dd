package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// cpuSample is a reading of the machine's and the benchmark's CPU time, in
// clock ticks, to tell how much CPU other processes took meanwhile: on a
// 2-core machine, anything else running skews every figure.
type cpuSample struct {
	ok bool
	// busy and total are the machine's non-idle and all ticks (/proc/stat).
	busy, total uint64
	// ours is this process's and redis-server's ticks.
	ours uint64
}

// sampleCPU reads /proc; redisPids are the redis-server processes whose CPU
// counts as the benchmark's own. ok is false where there is no /proc.
func sampleCPU(redisPids []int) cpuSample {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuSample{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return cpuSample{}
	}
	var s cpuSample
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return cpuSample{}
		}
		// guest and guest_nice (9, 10) are already counted in user and nice.
		if i >= 8 {
			break
		}
		s.total += n
		if i != 3 && i != 4 { // idle, iowait
			s.busy += n
		}
	}
	self, ok := procTicks("self")
	s.ours, s.ok = self, ok
	for _, pid := range redisPids {
		red, ok := procTicks(strconv.Itoa(pid))
		s.ours, s.ok = s.ours+red, s.ok && ok
	}
	return s
}

// procTicks returns the user and system ticks of process pid ("self" for
// this one), its waited-for children included.
func procTicks(pid string) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name may hold spaces: the fields start after its ")".
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, false
	}
	var sum uint64
	for _, v := range f[11:15] { // utime, stime, cutime, cstime
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, false
		}
		sum += n
	}
	return sum, true
}

// othersCores returns how many cores other processes kept busy on average
// between s and a later sample t, on a machine of nproc cores; -1 when
// unknown.
func (s cpuSample) othersCores(t cpuSample, nproc int) float64 {
	if !s.ok || !t.ok || t.total <= s.total {
		return -1
	}
	busy := float64(t.busy-s.busy) - float64(t.ours-s.ours)
	return max(busy, 0) / float64(t.total-s.total) * float64(nproc)
}

// fmtCores formats a number of cores, "?" when unknown.
func fmtCores(c float64) string {
	if c < 0 {
		return "?"
	}
	return fmt.Sprintf("%.2f", c)
}
