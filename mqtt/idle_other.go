//go:build !linux

package mqtt

import "net"

// readIdler is only implemented on Linux; elsewhere the reader keeps its
// buffer while blocked in Read.
type readIdler struct{}

func newReadIdler(net.Conn) *readIdler { return nil }

func (*readIdler) wait() error { return nil }
