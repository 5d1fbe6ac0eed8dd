package hammerredis_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hammer-go/hammerredis"
	"github.com/hammer-go/hammerredis/internal/redistest"
)

const (
	// chaosDefault is TestChaos's length when HAMMERREDIS_CHAOS is unset:
	// short, for make test; make chaos runs it longer.
	chaosDefault = 3 * time.Second
	chaosCallers = 64
	// chaosHeapGrowth bounds the growth of the heap in use over the run.
	chaosHeapGrowth = 64 << 20
)

// chaosLength reads HAMMERREDIS_CHAOS, a Go duration.
func chaosLength(t *testing.T) time.Duration {
	s := os.Getenv("HAMMERREDIS_CHAOS")
	if s == "" {
		return chaosDefault
	}
	d, err := time.ParseDuration(s)
	require.NoError(t, err, "HAMMERREDIS_CHAOS")
	return d
}

// chaosSeed reads HAMMERREDIS_CHAOS_SEED, to replay a run's fault schedule
// (not its timing), or picks one.
func chaosSeed(t *testing.T) uint64 {
	if s := os.Getenv("HAMMERREDIS_CHAOS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "HAMMERREDIS_CHAOS_SEED")
		return n
	}
	return rand.Uint64()
}

// The faults of TestChaos.
const (
	chaosCut = iota
	chaosBlackhole
	chaosLatency
	chaosReset
	chaosKill
	chaosStop
	chaosKinds
)

var chaosNames = [chaosKinds]string{"cut", "blackhole", "latency", "reset mid-reply", "SIGKILL+restart", "SIGSTOP/SIGCONT"}

// heapInUse returns the heap in use after a garbage collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestChaos runs 64 callers against a backend while random faults strike
// one after another: connections cut, reset mid-reply, blackholed or slowed
// past the read timeout, redis-server frozen or killed (and restarted with
// its append-only file, appendfsync always). Each call has a deadline of
// 100-400ms; the callers' account of their hits is checked against Redis at
// the end, with the call durations, the time to serve again after each
// heal, goroutine leaks and heap growth.
func TestChaos(t *testing.T) {
	length := chaosLength(t)
	seed := chaosSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	// The backend's options are the defaults: recovery within 1s must hold
	// with them.
	e := newFaultEnv(t, chaosCallers, redistest.Options{AppendOnly: true}, hammerredis.Options{})
	heapStart := heapInUse()
	heapPeak := heapStart
	ld := e.load(t, func(i int) time.Duration { return time.Duration(100+100*(i%4)) * time.Millisecond })
	var (
		faults [chaosKinds]int
		recs   [chaosKinds][]time.Duration
	)
	began := time.Now()
	for time.Since(began) < length {
		kind := rng.IntN(chaosKinds)
		hold := time.Duration(50+rng.IntN(500)) * time.Millisecond
		switch kind {
		case chaosCut:
			e.proxy.Cut()
		case chaosBlackhole:
			e.proxy.SetBlackhole(true)
			time.Sleep(hold)
			e.proxy.SetBlackhole(false)
		case chaosLatency:
			// A round trip of 100-600ms against a 250ms read timeout.
			e.proxy.SetLatency(time.Duration(50+rng.IntN(250)) * time.Millisecond)
			time.Sleep(hold)
			e.proxy.SetLatency(0)
		case chaosReset:
			select {
			case <-e.proxy.ResetNextReply():
			case <-time.After(waitLong):
				t.Fatal("no reply went through the proxy")
			}
		case chaosKill:
			e.srv.Kill()
			time.Sleep(hold)
			require.NoError(t, e.srv.Restart())
		case chaosStop:
			require.NoError(t, e.srv.Signal(syscall.SIGSTOP))
			time.Sleep(hold)
			require.NoError(t, e.srv.Signal(syscall.SIGCONT))
		}
		healed := time.Now()
		faults[kind]++
		recs[kind] = append(recs[kind], e.recovered(t, chaosNames[kind], healed)) // checked by finish

		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		heapPeak = max(heapPeak, m.HeapInuse)
		time.Sleep(time.Duration(50+rng.IntN(250)) * time.Millisecond) // calm between faults
	}
	ran := time.Since(began)
	ld.halt()
	heapEnd := heapInUse()
	st := e.f.b.Stats()
	e.finish(t)

	growth := int64(heapEnd) - int64(heapStart)
	assert.Less(t, growth, int64(chaosHeapGrowth), "heap in use grew from %d to %d bytes", heapStart, heapEnd)

	var all []time.Duration
	var lines []string
	total := 0
	for k := range chaosKinds {
		total += faults[k]
		all = append(all, recs[k]...)
		p50, most := quantiles(recs[k])
		lines = append(lines, fmt.Sprintf("  %-16s %3d, served again after p50 %v, max %v", chaosNames[k], faults[k], p50, most))
	}
	p50, most := quantiles(all)
	t.Logf("chaos: %v, %d callers, seed %d (HAMMERREDIS_CHAOS_SEED replays the schedule)\n"+
		"%s, %.0f calls/s\n"+
		"faults %d, served again after p50 %v, max %v (limit %v + scheduling lag):\n%s\n"+
		"backend: %d connects, %d connections lost, %d failed dials, %d pauses of restarts\n"+
		"heap in use: %.1f MiB at the start, %.1f MiB peak, %.1f MiB at the end (growth %+.1f MiB, limit %d MiB)",
		ran.Round(time.Millisecond), chaosCallers, seed,
		e.led.summary(), float64(e.led.calls.Load())/ran.Seconds(),
		total, p50, most, recoveryLimit, strings.Join(lines, "\n"),
		st.Connects, st.Restarts, st.DialFailures, e.f.log.Count("pausing restarts"),
		mib(heapStart), mib(heapPeak), mib(heapEnd), float64(growth)/(1<<20), chaosHeapGrowth>>20)
}

// quantiles returns the median and the maximum of ds, rounded to the ms.
func quantiles(ds []time.Duration) (p50, most time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Sorted(slices.Values(ds))
	return s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond)
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }
