// Package testmain holds the TestMain shared by the packages whose tests use
// one private redis-server. It is apart from redistest so that the programs
// that use redistest (the demo, the benchmarks) do not link goleak.
package testmain

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/hammer-go/hammerredis/internal/redistest"
)

// Main is a TestMain body for packages whose tests share one private server:
// it starts the server, hands it to ready, runs the tests, stops the server,
// and fails the run if goroutines were left behind. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(testmain.Main(m, func(s *redistest.Server) { srv = s })) }
func Main(m *testing.M, ready func(*redistest.Server)) int {
	s, err := redistest.Start(redistest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ready(s)
	code := m.Run()
	s.Stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines leaked: %v\n", err)
			code = 1
		}
	}
	return code
}
