package transport

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// DefaultPipeBuffer is the per-direction capacity of a Pipe when
// PipeOptions.BufferSize is zero.
const DefaultPipeBuffer = 64 << 10

// PipeOptions configures Pipe. The zero value gives DefaultPipeBuffer bytes
// of buffering in each direction and reads of any size.
type PipeOptions struct {
	// BufferSize is the capacity of each direction. A Write blocks while
	// the buffer is full, like a socket whose peer does not read.
	BufferSize int
	// MaxRead caps the bytes one Read returns, to exercise readers with
	// short reads (a packet arriving in pieces). Zero means no cap.
	MaxRead int
}

// PipeConn is one end of an in-memory, buffered, full-duplex connection made
// by Pipe, for tests of the layers above transport. Unlike net.Pipe, a Write
// returns once its bytes are buffered, so a test can write a whole exchange
// before the other side reads it.
//
// Deadlines work as on a socket: a Read or Write that passes its deadline
// fails with an error for which os.ErrDeadlineExceeded matches and
// Timeout() is true. Closing one end gives the other io.EOF after the
// buffered bytes and makes its Writes fail with io.ErrClosedPipe. Reset
// breaks both ends at once, as a TCP reset would.
//
// A PipeConn is safe for concurrent use by multiple goroutines.
type PipeConn struct {
	rd, wr     *pipeBuf // bytes arriving here; bytes leaving for the peer
	maxRead    int
	local      pipeAddr
	remote     pipeAddr
	peer       *PipeConn
	rDeadline  deadline
	wDeadline  deadline
	closeOnce  sync.Once
	closedChan chan struct{}
}

// Pipe returns the two ends of an in-memory connection. Their addresses are
// "client" and "server", on network "pipe".
func Pipe(opts PipeOptions) (client, server *PipeConn) {
	size := opts.BufferSize
	if size <= 0 {
		size = DefaultPipeBuffer
	}
	c2s, s2c := newPipeBuf(size), newPipeBuf(size)
	client = &PipeConn{rd: s2c, wr: c2s, maxRead: opts.MaxRead, local: "client", remote: "server", closedChan: make(chan struct{})}
	server = &PipeConn{rd: c2s, wr: s2c, maxRead: opts.MaxRead, local: "server", remote: "client", closedChan: make(chan struct{})}
	client.peer, server.peer = server, client
	client.rDeadline.init()
	client.wDeadline.init()
	server.rDeadline.init()
	server.wDeadline.init()
	return client, server
}

// Read reads buffered bytes, waiting for some when none are buffered.
func (c *PipeConn) Read(p []byte) (int, error) {
	if c.isClosed() {
		return 0, c.opError("read", net.ErrClosed)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if c.maxRead > 0 && len(p) > c.maxRead {
		p = p[:c.maxRead]
	}
	b := c.rd
	for {
		b.mu.Lock()
		switch {
		case b.reset:
			b.mu.Unlock()
			return 0, c.opError("read", syscall.ECONNRESET)
		case b.len() > 0:
			n := copy(p, b.data[b.off:])
			b.off += n
			if b.off == len(b.data) {
				b.data, b.off = b.data[:0], 0
			}
			b.mu.Unlock()
			signal(b.writable)
			return n, nil
		case b.writerClosed:
			b.mu.Unlock()
			return 0, io.EOF
		}
		b.mu.Unlock()
		select {
		case <-b.readable:
		case <-c.closedChan:
			return 0, c.opError("read", net.ErrClosed)
		case <-c.rDeadline.wait():
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		}
	}
}

// Write buffers p, waiting for room while the buffer is full.
func (c *PipeConn) Write(p []byte) (int, error) {
	if c.isClosed() {
		return 0, c.opError("write", net.ErrClosed)
	}
	b := c.wr
	n := 0
	for {
		b.mu.Lock()
		switch {
		case b.reset:
			b.mu.Unlock()
			return n, c.opError("write", syscall.ECONNRESET)
		case b.readerClosed:
			b.mu.Unlock()
			return n, c.opError("write", io.ErrClosedPipe)
		}
		if room := b.size - b.len(); room > 0 && n < len(p) {
			if b.off > 0 && cap(b.data)-len(b.data) < min(room, len(p)-n) {
				b.data = b.data[:copy(b.data, b.data[b.off:])]
				b.off = 0
			}
			k := min(room, len(p)-n)
			b.data = append(b.data, p[n:n+k]...)
			n += k
			signal(b.readable)
		}
		b.mu.Unlock()
		if n == len(p) {
			return n, nil
		}
		select {
		case <-b.writable:
		case <-c.closedChan:
			return n, c.opError("write", net.ErrClosed)
		case <-c.wDeadline.wait():
			return n, c.opError("write", os.ErrDeadlineExceeded)
		}
	}
}

// Close closes this end: the peer reads the buffered bytes then io.EOF, and
// its Writes fail. Blocked calls on this end return net.ErrClosed.
func (c *PipeConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closedChan)
		c.wr.mu.Lock()
		c.wr.writerClosed = true
		c.wr.mu.Unlock()
		signal(c.wr.readable)
		c.rd.mu.Lock()
		c.rd.readerClosed = true
		c.rd.mu.Unlock()
		signal(c.rd.writable)
	})
	return nil
}

// Reset breaks the connection in both directions: buffered bytes are lost
// and every Read and Write on either end fails with syscall.ECONNRESET.
func (c *PipeConn) Reset() {
	for _, b := range [...]*pipeBuf{c.rd, c.wr} {
		b.mu.Lock()
		b.reset = true
		b.data, b.off = nil, 0
		b.mu.Unlock()
		signal(b.readable)
		signal(b.writable)
	}
}

// LocalAddr returns this end's address.
func (c *PipeConn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's address.
func (c *PipeConn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines.
func (c *PipeConn) SetDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opError("set deadline", net.ErrClosed)
	}
	c.rDeadline.set(t)
	c.wDeadline.set(t)
	return nil
}

// SetReadDeadline sets the read deadline.
func (c *PipeConn) SetReadDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opError("set deadline", net.ErrClosed)
	}
	c.rDeadline.set(t)
	return nil
}

// SetWriteDeadline sets the write deadline.
func (c *PipeConn) SetWriteDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opError("set deadline", net.ErrClosed)
	}
	c.wDeadline.set(t)
	return nil
}

func (c *PipeConn) isClosed() bool {
	select {
	case <-c.closedChan:
		return true
	default:
		return false
	}
}

func (c *PipeConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "pipe", Source: c.local, Addr: c.remote, Err: err}
}

type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }

// pipeBuf is one direction of a Pipe. data[off:] is unread.
type pipeBuf struct {
	mu           sync.Mutex
	data         []byte
	off          int
	size         int
	writerClosed bool
	readerClosed bool
	reset        bool
	readable     chan struct{} // signalled when bytes arrive or state changes
	writable     chan struct{} // signalled when room appears or state changes
}

func newPipeBuf(size int) *pipeBuf {
	return &pipeBuf{size: size, readable: make(chan struct{}, 1), writable: make(chan struct{}, 1)}
}

func (b *pipeBuf) len() int { return len(b.data) - b.off }

// signal wakes a waiter on ch without blocking; a pending signal suffices.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// deadline is a settable deadline whose wait channel is closed when it
// passes (the shape of net.Pipe's).
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{}
}

func (d *deadline) init() { d.cancel = make(chan struct{}) }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired and closed cancel; wait is done
	}
	d.timer = nil
	closed := isClosedChan(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		ch := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosedChan(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

var _ net.Conn = (*PipeConn)(nil)
