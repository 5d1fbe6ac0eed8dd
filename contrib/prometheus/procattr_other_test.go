//go:build !linux

package hammerprom_test

import "syscall"

// procAttr has nothing to add outside Linux: the tests' cleanup kills the
// redis-server.
func procAttr() *syscall.SysProcAttr { return nil }
