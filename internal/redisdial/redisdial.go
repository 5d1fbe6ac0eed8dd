// Package redisdial makes the Dial functions of servers (server.Config.Dial)
// that connect to one fixed address.
package redisdial

import (
	"context"

	"github.com/gomodule/redigo/redis"
)

// To returns a dial function that connects to address over network with
// opts, within the dial's context.
func To(network, address string, opts []redis.DialOption) func(ctx context.Context) (redis.Conn, error) {
	return func(ctx context.Context) (redis.Conn, error) {
		return redis.DialContext(ctx, network, address, opts...)
	}
}
