package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// numIDs is how many distinct ids the workloads draw from.
const numIDs = 100_000

// ids are the rate-limited subjects, "user:0" to "user:99999", built once so
// that picking one allocates nothing.
var ids = func() []string {
	s := make([]string, numIDs)
	for i := range s {
		s[i] = "user:" + strconv.Itoa(i)
	}
	return s
}()

// A workload picks the id of each check.
type workload struct {
	// name is the -workloads name.
	name string
	// desc says how ids are picked, for the report.
	desc string
	// next returns the index in ids of the next check's id.
	next func(r *rand.Rand) int
}

// Hot-key mix: hotShare of the checks go to the first hotIDs ids.
const (
	hotIDs   = 10
	hotShare = 0.9
)

var workloads = []workload{
	{
		name: "random",
		desc: fmt.Sprintf("ids uniform over %d", numIDs),
		next: func(r *rand.Rand) int { return r.IntN(numIDs) },
	},
	{
		name: "hot",
		desc: fmt.Sprintf("%.0f%% of checks on %d hot ids, %.0f%% uniform over %d", hotShare*100, hotIDs, (1-hotShare)*100, numIDs),
		next: func(r *rand.Rand) int {
			if r.Float64() < hotShare {
				return r.IntN(hotIDs)
			}
			return r.IntN(numIDs)
		},
	},
}

// pickWorkloads returns the workloads named in the comma-separated list.
func pickWorkloads(list string) ([]workload, error) {
	var out []workload
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, w := range workloads {
			if w.name == name {
				out, found = append(out, w), true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown workload %q (have random, hot)", name)
		}
	}
	return out, nil
}
