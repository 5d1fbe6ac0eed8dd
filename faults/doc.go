// Package faults holds no code: its tests inject faults between a backend
// and redis-server (connections cut, reset, blackholed or slowed; the
// server killed, frozen, its scripts flushed, ACL rights taken away) and run
// the chaos tests, through the public API of hammerredis only, with the
// harnesses of internal/testenv, internal/faultproxy and internal/redistest.
// make test runs them; make chaos runs the chaos tests longer; make check
// (go test -short) skips them.
package faults
