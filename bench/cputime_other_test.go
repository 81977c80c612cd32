//go:build !linux

package bench

// processCPU is not implemented outside Linux; -1 leaves the cpu-ns/op
// metric out.
func processCPU() int64 { return -1 }
