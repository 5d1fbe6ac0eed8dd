package hammerprom_test

import "syscall"

// procAttr kills the redis-server if the test binary dies without cleaning
// up.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
