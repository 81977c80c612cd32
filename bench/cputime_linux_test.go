package bench

import (
	"syscall"
	"unsafe"
)

// clockProcessCPUTimeID is CLOCK_PROCESS_CPUTIME_ID from <time.h>.
const clockProcessCPUTimeID = 2

// processCPU returns the CPU time the process has used, in nanoseconds, or
// -1 if the clock cannot be read. Unlike wall time it does not grow while
// other processes hold the CPU, which keeps figures taken on a busy shared
// machine comparable.
func processCPU() int64 {
	var ts syscall.Timespec
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockProcessCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		return -1
	}
	return ts.Nano()
}
