package server

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/hammer-go/hammerredis/protocol"
)

// nullConn answers every command at once with 1: it measures what the
// server and its callers cost, without Redis or a network.
type nullConn struct{}

func (nullConn) Do(string, ...any) (any, error) { return "PONG", nil }
func (nullConn) Send(string, ...any) error      { return nil }
func (nullConn) Flush() error                   { return nil }
func (nullConn) Receive() (any, error)          { return int64(1), nil }
func (nullConn) Err() error                     { return nil }
func (nullConn) Close() error                   { return nil }

// BenchmarkOverhead is the cost of one CountHit through the server
// goroutine, from 1 and from 64 callers, with a connection that costs
// nothing.
func BenchmarkOverhead(b *testing.B) {
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprint("callers=", callers), func(b *testing.B) {
			s, err := New(testConfig(dialConn(nullConn{})))
			if err != nil {
				b.Fatal(err)
			}
			go s.Serve(context.Background())
			defer s.Stop()
			if err := s.WaitConnected(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetParallelism(max(callers/runtime.GOMAXPROCS(0), 1))
			b.RunParallel(func(pb *testing.PB) {
				key := protocol.BucketKey{Bucket: 28333334, ID: "user:1234"}
				for pb.Next() {
					if _, err := s.CountHit(context.Background(), key, 1700000040000, 1); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
