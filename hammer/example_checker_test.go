package hammer_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/hammer-go/hammerredis/hammer"
	"github.com/hammer-go/hammerredis/hammer7"
	"github.com/hammer-go/hammerredis/memory"
)

// exampleNow is the examples' clock, 250 ms into a second, so that their
// output does not depend on when they run.
func exampleNow() time.Time { return time.UnixMilli(1_700_000_000_250) }

// Two limits on every request to an API: a burst of 2 a second and 10 a
// minute. All or nothing: a request the burst limit denies does not use
// up the minute's.
func ExampleChecker() {
	backend, err := memory.New(memory.Options{ExpiryMs: 60_000, Clock: exampleNow}) // or hammerredis.Start(...)
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	checker, err := hammer.NewChecker(backend, hammer.Config{
		Limits: []hammer.Limit{
			{Name: "burst", Scale: time.Second, Max: 2},
			{Name: "minute", Policy: hammer7.SlidingWindow{Prefix: "api", Window: time.Minute, Limit: 10}},
		},
		AllOrNothing: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	checker = checker.WithClock(exampleNow)

	ctx := context.Background()
	for range 3 {
		d, err := checker.Check(ctx, "api-key-42")
		if err != nil {
			log.Fatal(err) // the backend failed: fail open or closed (or set Config.Fallback)
		}
		burst, minute := d.Limits[0], d.Limits[1]
		if d.Allowed {
			fmt.Printf("allowed: %d left this second, %d this minute\n", burst.Remaining, minute.Remaining)
			continue
		}
		wait, _ := d.RetryAfter()
		fmt.Printf("denied: retry after %v; still %d left this minute\n", wait, minute.Remaining)
	}
	// Output:
	// allowed: 1 left this second, 9 this minute
	// allowed: 0 left this second, 8 this minute
	// denied: retry after 750ms; still 8 left this minute
}

// A new, stricter limit runs in shadow mode beside the one in force: it
// is counted and reported, and logged (a line a second at most), but
// denies nothing.
func ExampleChecker_shadow() {
	backend, err := memory.New(memory.Options{ExpiryMs: 60_000, Clock: exampleNow})
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // for a stable output
			}
			return a
		},
	}))
	checker, err := hammer.NewChecker(backend, hammer.Config{
		Limits: []hammer.Limit{
			{Name: "current", Scale: time.Second, Max: 100},
			{Name: "proposed", Scale: time.Second, Max: 1, Shadow: true},
		},
		Logger: logger,
	})
	if err != nil {
		log.Fatal(err)
	}
	checker = checker.WithClock(exampleNow)

	for range 3 {
		d, err := checker.Check(context.Background(), "10.0.0.7")
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("allowed %t; the proposed limit would allow it: %t\n", d.Allowed, d.Limits[1].Allowed)
	}
	// Output:
	// allowed true; the proposed limit would allow it: true
	// level=INFO msg="hammer: a shadow limit would have denied a request" limits=[proposed] allowed=true suppressed=0
	// allowed true; the proposed limit would allow it: false
	// allowed true; the proposed limit would allow it: false
}
