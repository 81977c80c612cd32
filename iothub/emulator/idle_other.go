//go:build !linux

package emulator

import "net"

// readIdler is only implemented on Linux; elsewhere a connection keeps its
// read buffer while blocked in Read.
type readIdler struct{}

func newReadIdler(net.Conn) *readIdler { return nil }

func (*readIdler) wait() error { return nil }
