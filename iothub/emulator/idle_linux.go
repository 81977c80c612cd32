package emulator

import (
	"net"
	"syscall"
	"unsafe"
)

// readIdler waits for a connection's socket to become readable without a
// read buffer, so an idle device connection keeps none: the approach of
// the mqtt client's idle reader, applied under TLS and WebSocket by first
// probing their buffers with a read whose deadline has passed (which never
// touches the socket and does not break the connection).
type readIdler struct {
	rc     syscall.RawConn
	called bool
	f      func(fd uintptr) bool // built once: a fresh closure per wait would allocate
}

// newReadIdler returns an idler for the socket under nc (looking through
// WebSocket and TLS), or nil when there is none.
func newReadIdler(nc net.Conn) *readIdler {
	for {
		if sc, ok := nc.(syscall.Conn); ok {
			rc, err := sc.SyscallConn()
			if err != nil {
				return nil
			}
			ri := &readIdler{rc: rc}
			ri.f = ri.ready
			return ri
		}
		u, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		nc = u.NetConn()
	}
}

// ready is called by RawConn.Read: first to test readability with a
// non-blocking one-byte MSG_PEEK (consuming nothing), then again once the
// poller reports the socket readable. Errors and end of stream count as
// readable; the next Read reports them.
func (ri *readIdler) ready(fd uintptr) bool {
	if ri.called {
		return true
	}
	ri.called = true
	var b [1]byte
	_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno != syscall.EAGAIN
}

// wait blocks until the socket is readable, closed, or past its read
// deadline (then it returns the timeout error).
func (ri *readIdler) wait() error {
	ri.called = false
	return ri.rc.Read(ri.f)
}
