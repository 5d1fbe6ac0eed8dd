# Developer tasks. The tests and the demo start their own private
# redis-server processes on free ports; nothing here uses the system Redis.

GO       ?= go
FUZZTIME ?= 30s
# Extra flags for make bench, e.g. BENCHFLAGS='-quick' or '-libs hammer,redigo'.
BENCHFLAGS ?=
# Nested modules (own go.mod) that ./... does not reach; vet and test run
# in each too.
MODULES  := contrib/prometheus contrib/otel contrib/grpc bench

# Length of make chaos (a Go duration).
CHAOS    ?= 20s

.PHONY: all help test check check-fmt vet fmt ensure-redis demo fuzz bench chaos charts

all: test

## help: list the targets.
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

## test: gofmt -s, go vet, then the race-enabled, shuffled tests (nested modules too).
test: ensure-redis check-fmt vet
	$(GO) test -race -shuffle=on -count=1 ./...
	@set -e; for m in $(MODULES); do \
		echo "cd $$m && $(GO) test -race -shuffle=on -count=1 ./..."; \
		(cd $$m && $(GO) test -race -shuffle=on -count=1 ./...); \
	done

## check: the fast inner loop (under a minute): gofmt -s, go vet, then go test -short, which skips the tests that take seconds each (faults and chaos, the cluster and sentinel harnesses, the largest keyspaces); make test runs everything.
check: ensure-redis check-fmt vet
	$(GO) test -short -shuffle=on -count=1 ./...
	@set -e; for m in $(MODULES); do \
		echo "cd $$m && $(GO) test -short -shuffle=on -count=1 ./..."; \
		(cd $$m && $(GO) test -short -shuffle=on -count=1 ./...); \
	done

## chaos: 64 callers under random faults for CHAOS (20s) each, with -race, printing the figures: TestChaos (cuts, resets, blackholes, latency, redis-server SIGKILL and SIGSTOP, SCRIPT FLUSH, ACL rights taken away, DeleteBuckets through 300k keys; keys of another type among the hot keys), then TestChaosCluster (slot migrations, a master frozen, SCRIPT FLUSH); make test runs 3s and 2s of them, make check none.
chaos: ensure-redis
	HAMMERREDIS_CHAOS=$(CHAOS) $(GO) test -race -count=1 -run '^TestChaos(Cluster)?$$' -v ./faults

## ensure-redis: install redis-server when it is missing and apt-get can.
ensure-redis:
	@./scripts/ensure-redis.sh

## check-fmt: fail, listing the files, when gofmt -s would change any.
check-fmt:
	@files="$$(gofmt -s -l .)"; \
	if [ -n "$$files" ]; then \
		echo "gofmt -s would change these files (run make fmt):"; \
		echo "$$files"; \
		exit 1; \
	fi

## vet: go vet ./..., in the nested modules too.
vet:
	$(GO) vet ./...
	@set -e; for m in $(MODULES); do \
		echo "cd $$m && $(GO) vet ./..."; \
		(cd $$m && $(GO) vet ./...); \
	done

## fmt: rewrite the sources with gofmt -s.
fmt:
	gofmt -s -w .

## demo: walk through the backend, on a private redis-server or $REDIS_URL.
demo: ensure-redis
	$(GO) run ./cmd/hammerredis demo

## fuzz: run every fuzz target of every package for FUZZTIME (30s) each.
fuzz: ensure-redis
	@set -e; \
	for pkg in $$($(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...); do \
		list="$$($(GO) test -list '^Fuzz' "$$pkg")" || { echo "$$list"; exit 1; }; \
		for target in $$(echo "$$list" | grep '^Fuzz' || true); do \
			echo "== $$pkg $$target ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
		done; \
	done

## bench: compare with other Go rate limiters on a private redis-server (bench/, its own module; about 7 min); writes docs/bench.md and docs/bench*.png.
bench: ensure-redis
	cd bench && $(GO) run . -out ../docs $(BENCHFLAGS)

## charts: draw docs/algorithms.svg, the hits Hammer 7's four algorithms allow and deny under one traffic pattern (internal/cmd/algochart: package memory's backend, a stepped clock, the same output on every run), and print the allowed counts.
charts:
	$(GO) run ./internal/cmd/algochart -out docs/algorithms.svg
