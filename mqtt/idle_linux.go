package mqtt

import (
	"net"
	"syscall"
	"unsafe"
)

// readIdler lets the reader wait for the socket to become readable without
// holding a read buffer, so an idle connection keeps no 4 KiB buffer. It
// works on connections that expose their file descriptor (TCP); on others
// (TLS, WebSocket) the reader blocks in a read of a few bytes instead (see
// headReader.waitHead).
type readIdler struct {
	rc     syscall.RawConn
	called bool
	f      func(fd uintptr) bool // built once: passing a fresh closure to RawConn.Read would allocate
}

func newReadIdler(nc net.Conn) *readIdler {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	ri := &readIdler{rc: rc}
	ri.f = ri.ready
	return ri
}

// ready is called by RawConn.Read: first to test readability (a
// non-blocking one-byte MSG_PEEK, which does not consume data), and again
// after the poller reported the socket readable. Errors and end of stream
// count as readable: the following Read reports them.
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

// wait blocks until the socket is readable (or closed).
func (ri *readIdler) wait() error {
	ri.called = false
	return ri.rc.Read(ri.f)
}
