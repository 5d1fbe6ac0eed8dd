package hammerotel_test

import (
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/hammer-go/hammerredis"
	hammerotel "github.com/hammer-go/hammerredis/contrib/otel"
)

// stubSource serves a Stats snapshot and counts the reads.
type stubSource struct {
	stats hammerredis.Stats
	reads atomic.Int64
}

func (s *stubSource) Stats() hammerredis.Stats {
	s.reads.Add(1)
	return s.stats
}

// TestObserveBackend exports a source's Stats once per collection, with
// the backend's name, until Unregister.
func TestObserveBackend(t *testing.T) {
	m, r := setup(t)
	src := &stubSource{}
	s := &src.stats
	s.Connected, s.QueueDepth, s.QueueCapacity = true, 3, 1024
	s.Calls.CountHit, s.Calls.Hit, s.Calls.Check = 5, 6, 7
	s.Errors.Timeout, s.Errors.Redis, s.Errors.Other = 1, 2, 3
	reg, err := m.ObserveBackend("ratelimit", src)
	if err != nil {
		t.Fatal(err)
	}
	ms := collect(t, r)
	if sum, ok := ms[hammerotel.CallsName].Data.(metricdata.Sum[int64]); !ok || !sum.IsMonotonic {
		t.Errorf("calls: %T, want a monotonic sum", ms[hammerotel.CallsName].Data)
	}
	if _, ok := ms[hammerotel.ConnectedName].Data.(metricdata.Gauge[int64]); !ok {
		t.Errorf("connected: %T, want a gauge", ms[hammerotel.ConnectedName].Data)
	}
	if n := src.reads.Load(); n != 1 {
		t.Errorf("%d Stats reads for one collection, want 1", n)
	}
	for name, want := range map[string]map[string]int64{
		hammerotel.ConnectedName:     {"backend=ratelimit": 1},
		hammerotel.QueueDepthName:    {"backend=ratelimit": 3},
		hammerotel.QueueCapacityName: {"backend=ratelimit": 1024},
		hammerotel.CallsName: {
			"backend=ratelimit,op=count_hit": 5, "backend=ratelimit,op=get_bucket": 0,
			"backend=ratelimit,op=delete_buckets": 0, "backend=ratelimit,op=hit": 6,
			"backend=ratelimit,op=inc": 0, "backend=ratelimit,op=set": 0,
			"backend=ratelimit,op=get": 0, "backend=ratelimit,op=check": 7,
		},
		hammerotel.ErrorsName: {
			"backend=ratelimit,error.type=closed": 0, "backend=ratelimit,error.type=disconnected": 0,
			"backend=ratelimit,error.type=timeout": 1, "backend=ratelimit,error.type=canceled": 0,
			"backend=ratelimit,error.type=stopped": 0, "backend=ratelimit,error.type=invalid": 0,
			"backend=ratelimit,error.type=redis": 2, "backend=ratelimit,error.type=bad_reply": 0,
			"backend=ratelimit,error.type=other": 3,
		},
	} {
		if got := int64Points(t, ms[name]); !mapsEqual(got, want) {
			t.Errorf("%s\n got %v\nwant %v", name, got, want)
		}
	}

	// The next collection reads the source again.
	s.Connected = false
	if got := int64Points(t, collect(t, r)[hammerotel.ConnectedName]); got["backend=ratelimit"] != 0 {
		t.Errorf("connected after the connection went: %v, want 0", got)
	}

	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	reads := src.reads.Load()
	if _, ok := collect(t, r)[hammerotel.ConnectedName]; ok || src.reads.Load() != reads {
		t.Error("the source is still read after Unregister")
	}
}
