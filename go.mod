module github.com/hammer-go/hammerredis

go 1.25

require (
	github.com/dunglas/httpsfv v1.1.2
	github.com/gomodule/redigo v1.9.3
	github.com/stretchr/testify v1.12.1
	github.com/thejerf/suture/v4 v4.0.6
	go.uber.org/goleak v1.3.0
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect
