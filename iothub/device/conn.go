package device

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hubwire/hubwire/packet"
)

// wireConn wraps each network connection the client hands the mqtt engine.
// It lets the device layer
//   - see when data last arrived, to find a dead link even while the
//     engine keeps writing (its keep-alive pings only when it has written
//     nothing; azure-iot-sdk-c#1617), and
//   - end a connection on purpose (token renewal, dead link) with a
//     DISCONNECT or by closing it, after which the engine reconnects.
//
// The engine writes whole packets in each Write call, so packets the
// device layer injects (PINGREQ, DISCONNECT), written under the same lock,
// never interleave with the engine's.
type wireConn struct {
	net.Conn

	lastRead  atomic.Int64 // unix nanoseconds of the last Read that returned data
	lastWrite atomic.Int64 // unix nanoseconds of the last Write
	pingSent  atomic.Int64 // unix nanoseconds of an injected PINGREQ awaiting data; 0 if none
	cause     atomic.Pointer[error]

	wmu    sync.Mutex
	closed bool // guarded by wmu: nothing more may be written

	// The first bytes read are the CONNACK; onConnack is told its return
	// code (the engine reports only the outcome of the first Connect).
	head      [4]byte
	headN     int // owned by the reader
	onConnack func(code packet.ConnackCode)
}

func newWireConn(nc net.Conn, onConnack func(packet.ConnackCode)) *wireConn {
	w := &wireConn{Conn: nc, onConnack: onConnack}
	now := time.Now().UnixNano()
	w.lastRead.Store(now)
	w.lastWrite.Store(now)
	return w
}

// Read records the time data arrived.
func (w *wireConn) Read(b []byte) (int, error) {
	n, err := w.Conn.Read(b)
	if n > 0 {
		w.lastRead.Store(time.Now().UnixNano())
		if w.headN < len(w.head) {
			w.sniff(b[:n])
		}
	}
	return n, err
}

// Write writes b unless the device layer ended the connection.
func (w *wireConn) Write(b []byte) (int, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.closed {
		return 0, net.ErrClosed
	}
	n, err := w.Conn.Write(b)
	w.lastWrite.Store(time.Now().UnixNano())
	return n, err
}

// sniff collects the first four bytes, a CONNACK, and reports its code.
func (w *wireConn) sniff(b []byte) {
	k := copy(w.head[w.headN:], b)
	w.headN += k
	if w.headN < len(w.head) || w.onConnack == nil {
		return
	}
	var ack packet.Connack
	if ack.Decode(w.head[:]) == nil {
		w.onConnack(ack.ReturnCode)
	}
}

// SyscallConn exposes the descriptor of a plain TCP connection so the
// engine can wait for data without holding a read buffer.
func (w *wireConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := w.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, syscall.EINVAL
}

// inject writes one packet between the engine's writes.
func (w *wireConn) inject(p interface {
	AppendBinary([]byte) ([]byte, error)
}) error {
	var buf [8]byte
	b, err := p.AppendBinary(buf[:0])
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// end closes the connection with cause; with goodbye it first sends
// DISCONNECT, so the hub discards any will and the session stays clean.
func (w *wireConn) end(cause error, goodbye bool) {
	w.cause.CompareAndSwap(nil, &cause)
	if goodbye {
		_ = w.inject(&packet.Disconnect{})
	}
	w.wmu.Lock()
	w.closed = true
	w.wmu.Unlock()
	_ = w.Conn.Close()
}

// endCause returns why the device layer ended the connection, or nil.
func (w *wireConn) endCause() error {
	if p := w.cause.Load(); p != nil {
		return *p
	}
	return nil
}

// check runs the dead-link detection once: when data was written after the
// last data arrived and nothing has arrived for keepAlive, it sends a
// PINGREQ (answered by a PINGRESP the engine reads); when nothing arrives
// within pingTimeout of that, it ends the connection. It reports whether
// it ended it.
func (w *wireConn) check(now time.Time, keepAlive, pingTimeout time.Duration) bool {
	lr, lw := w.lastRead.Load(), w.lastWrite.Load()
	if ps := w.pingSent.Load(); ps != 0 {
		if lr >= ps {
			w.pingSent.Store(0)
			return false
		}
		if now.UnixNano()-ps > int64(pingTimeout) {
			w.end(errDeadLink, false)
			return true
		}
		return false
	}
	if lw > lr && now.UnixNano()-lr > int64(keepAlive) {
		w.pingSent.Store(now.UnixNano())
		if err := w.inject(&packet.Pingreq{}); err != nil {
			w.end(errDeadLink, false)
			return true
		}
	}
	return false
}
