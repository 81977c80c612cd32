//go:build !linux

package mqtt

import "net"

// readIdler is only implemented on Linux; elsewhere the reader waits in a
// read of a few bytes, as on TLS (see headReader.waitHead).
type readIdler struct{}

func newReadIdler(net.Conn) *readIdler { return nil }

func (*readIdler) wait() error { return nil }
