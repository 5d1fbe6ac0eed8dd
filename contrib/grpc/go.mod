module github.com/hammer-go/hammerredis/contrib/grpc

go 1.26.0

// The library itself, from this repository.
replace github.com/hammer-go/hammerredis => ../..

require (
	github.com/dunglas/httpsfv v1.1.2
	github.com/grpc-ecosystem/go-grpc-middleware/v2 v2.3.4
	github.com/hammer-go/hammerredis v0.0.0-00010101000000-000000000000
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261110000943-09e21b237f2c
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/gomodule/redigo v1.9.3 // indirect
	github.com/thejerf/suture/v4 v4.0.6 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
)
