package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/hubwire/hubwire/internal/bufpool"
	"github.com/hubwire/hubwire/internal/ctxio"
)

// WebSocket frame constants from RFC 6455 §5.2.
const (
	wsMaxHeader      = 14  // 2 + 8 (64-bit length) + 4 (mask key)
	wsMaxControl     = 125 // control frame payload limit (§5.5)
	wsFin            = 0x80
	wsRsvMask        = 0x70
	wsMaskBit        = 0x80
	wsCloseWriteWait = time.Second
)

// WebSocket close status codes used here (RFC 6455 §7.4.1).
const (
	closeNormal          = 1000
	closeGoingAway       = 1001
	closeProtocolError   = 1002
	closeUnsupportedData = 1003
	closeNoStatus        = 1005
)

// WSConn is a net.Conn carrying a byte stream in WebSocket binary frames
// (RFC 6455), the framing MQTT over WebSocket uses (MQTT 3.1.1 §6).
//
// Read returns payload bytes of binary frames as one continuous stream: a
// packet split across frames and several packets in one frame read the same
// as over TCP. Fragmented messages (continuation frames) are accepted. Pings
// are answered with pongs from inside Read, pongs are dropped, and a close
// frame is answered with a close frame and ends the stream with io.EOF (or a
// *CloseError for an abnormal status). Text frames are a protocol violation
// for MQTT [MQTT-6.0.0-1] and end the stream with ErrWebSocketProtocol.
//
// Read decodes frames in place in the caller's buffer: it reads raw bytes
// into p and moves payload bytes over the headers, so WSConn holds no read
// buffer of its own (only a 14-byte partial header and a 125-byte control
// payload). Read does no allocation. Give it a buffer of a few KiB (a
// bufio.Reader or packet.Reader does): each Read makes at most one Read on
// the underlying connection.
//
// Each Write sends exactly one binary frame with one Write on the underlying
// connection when p is at most 32 KiB (the frame is assembled in a pooled
// buffer, masked on the client side); larger writes are still one frame but
// reach the connection in several Writes. Write does no allocation in the
// steady state. A failed Write leaves the frame stream unusable, so the
// first write error is returned by every later Write (as crypto/tls does).
//
// Deadlines are those of the underlying connection, and its errors are
// returned unchanged, so timeouts remain net.Error timeouts and a Read that
// timed out can be retried after extending the deadline.
//
// WSConn is safe for concurrent use by multiple goroutines: Reads are
// serialised with each other, Writes with each other and with the pongs and
// close frames Read sends.
type WSConn struct {
	conn     net.Conn
	isClient bool

	rmu sync.Mutex // guards the read state below
	pre []byte     // bytes the handshake read past its end; decoded first
	hdr [wsMaxHeader]byte
	// hdrN counts header bytes collected in hdr while inPayload is false.
	hdrN      int
	inPayload bool   // a header was decoded; remain payload bytes follow
	remain    uint64 // payload bytes left in the current frame
	op        ws.OpCode
	fin       bool
	masked    bool
	mask      [4]byte
	maskPos   int  // position in mask of the next payload byte
	inMessage bool // a fragmented binary message awaits continuation frames
	ctrl      [wsMaxControl]byte
	ctrlN     int
	rerr      error // sticky read error

	wmu       sync.Mutex // guards the write state below and every frame write
	werr      error      // sticky write error
	closeSent bool

	closeSendOnce sync.Once
	closeOnce     sync.Once
	closeErr      error
	readDone      chan struct{} // closed when rerr is set
}

// NewWSConn wraps c, on which a WebSocket opening handshake has completed,
// as a stream of binary frames. isClient selects the client role: frames
// sent are masked and frames received must not be, and the reverse for the
// server role. Bytes already buffered in br (read from c past the end of the
// handshake) are copied and decoded first; br is not retained and may be
// nil.
//
// Closing the WSConn closes c.
func NewWSConn(c net.Conn, br *bufio.Reader, isClient bool) *WSConn {
	w := &WSConn{conn: c, isClient: isClient, readDone: make(chan struct{})}
	if br != nil && br.Buffered() > 0 {
		b, _ := br.Peek(br.Buffered())
		w.pre = append([]byte(nil), b...)
	}
	return w
}

// NetConn returns the underlying connection (a *tls.Conn for wss).
func (c *WSConn) NetConn() net.Conn { return c.conn }

// LocalAddr returns the local network address.
func (c *WSConn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr returns the remote network address.
func (c *WSConn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// SetDeadline sets the read and write deadlines of the underlying connection.
func (c *WSConn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline sets the read deadline of the underlying connection.
func (c *WSConn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline of the underlying connection.
func (c *WSConn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// Read reads stream bytes carried by binary frames into p. See WSConn for
// the framing rules; p is used as scratch space beyond the n bytes returned.
func (c *WSConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if c.rerr != nil {
			return 0, c.rerr
		}
		var (
			n   int
			err error
		)
		if len(c.pre) > 0 {
			n = copy(p, c.pre)
			c.pre = c.pre[n:]
			if len(c.pre) == 0 {
				c.pre = nil
			}
		} else {
			n, err = c.conn.Read(p)
		}
		out, perr := c.decode(p[:n])
		if perr != nil {
			c.endRead(perr)
		}
		if out > 0 {
			// Hand over the data now; a sticky error comes with the next
			// call and an I/O error recurs on it.
			return out, nil
		}
		if perr != nil {
			return 0, perr
		}
		if err != nil {
			if errors.Is(err, io.EOF) && (c.inPayload || c.hdrN > 0) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
}

// decode consumes raw frame bytes b in place: payload bytes of data frames
// are moved to the front of b (never past the bytes consumed, so the copy is
// safe) and their count returned. Partial headers and control payloads are
// kept in c between calls. A non-nil error ends the stream.
func (c *WSConn) decode(b []byte) (int, error) {
	out, i := 0, 0
	for i < len(b) {
		if !c.inPayload {
			need := 2
			if c.hdrN >= 2 {
				need = wsHeaderLen(c.hdr[1])
			}
			k := copy(c.hdr[c.hdrN:need], b[i:])
			c.hdrN += k
			i += k
			if c.hdrN < need {
				continue
			}
			if need == 2 {
				if full := wsHeaderLen(c.hdr[1]); full > 2 {
					continue // collect the extended length and mask key
				}
			}
			if err := c.beginFrame(); err != nil {
				return out, err
			}
			if c.remain == 0 {
				if err := c.endFrame(); err != nil {
					return out, err
				}
			}
			continue
		}
		k := len(b) - i
		if uint64(k) > c.remain {
			k = int(c.remain)
		}
		chunk := b[i : i+k]
		if c.masked {
			ws.Cipher(chunk, c.mask, c.maskPos)
			c.maskPos = (c.maskPos + k) & 3
		}
		if c.op.IsControl() {
			c.ctrlN += copy(c.ctrl[c.ctrlN:], chunk)
		} else {
			out += copy(b[out:], chunk)
		}
		i += k
		c.remain -= uint64(k)
		if c.remain == 0 {
			if err := c.endFrame(); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// endRead makes err the sticky read error: the stream has ended (the
// peer's close frame or a protocol violation). The caller holds c.rmu.
func (c *WSConn) endRead(err error) {
	c.rerr = err
	close(c.readDone)
}

// wsHeaderLen returns the length of a frame header from its second byte
// (mask bit and length code).
func wsHeaderLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&wsMaskBit != 0 {
		n += 4
	}
	return n
}

// beginFrame validates the header collected in c.hdr and enters the payload.
func (c *WSConn) beginFrame() error {
	h := c.hdr[:c.hdrN]
	c.hdrN = 0
	c.fin = h[0]&wsFin != 0
	c.op = ws.OpCode(h[0] & 0x0f)
	c.masked = h[1]&wsMaskBit != 0
	length := uint64(h[1] & 0x7f)
	rest := h[2:]
	switch length {
	case 126:
		length = uint64(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
	case 127:
		length = binary.BigEndian.Uint64(rest)
		rest = rest[8:]
		if length>>63 != 0 {
			return c.protocolError(closeProtocolError, "64-bit payload length has its top bit set")
		}
	}
	if c.masked {
		copy(c.mask[:], rest)
	}
	c.maskPos = 0
	switch {
	case h[0]&wsRsvMask != 0:
		return c.protocolError(closeProtocolError, "reserved bits set without a negotiated extension")
	case c.masked == c.isClient:
		if c.isClient {
			return c.protocolError(closeProtocolError, "server sent a masked frame")
		}
		return c.protocolError(closeProtocolError, "client sent an unmasked frame")
	}
	switch c.op {
	case ws.OpBinary:
		if c.inMessage {
			return c.protocolError(closeProtocolError, "new data frame inside a fragmented message")
		}
		c.inMessage = !c.fin
	case ws.OpContinuation:
		if !c.inMessage {
			return c.protocolError(closeProtocolError, "continuation frame without a message")
		}
		c.inMessage = !c.fin
	case ws.OpText:
		return c.protocolError(closeUnsupportedData, "text frame; MQTT travels in binary frames [MQTT-6.0.0-1]")
	case ws.OpClose, ws.OpPing, ws.OpPong:
		if !c.fin {
			return c.protocolError(closeProtocolError, "fragmented control frame")
		}
		if length > wsMaxControl {
			return c.protocolError(closeProtocolError, "control frame payload over 125 bytes")
		}
		c.ctrlN = 0
	default:
		return c.protocolError(closeProtocolError, "reserved opcode")
	}
	c.remain = length
	c.inPayload = true
	return nil
}

// endFrame acts on a completed frame: control frames are answered here.
func (c *WSConn) endFrame() error {
	c.inPayload = false
	switch c.op {
	case ws.OpPing:
		// A failed pong write is sticky on the write side; the reader
		// goes on and sees the connection fail on its own.
		c.writeControl(ws.OpPong, c.ctrl[:c.ctrlN])
	case ws.OpClose:
		return c.peerClosed(c.ctrl[:c.ctrlN])
	}
	return nil
}

// peerClosed answers a close frame (RFC 6455 §5.5.1) and returns the error
// that ends the stream.
func (c *WSConn) peerClosed(body []byte) error {
	code := closeNoStatus
	var reason string
	switch {
	case len(body) == 1:
		return c.protocolError(closeProtocolError, "close frame with a 1-byte body")
	case len(body) >= 2:
		code = int(binary.BigEndian.Uint16(body))
		if !validCloseCode(code) {
			return c.protocolError(closeProtocolError, "invalid close status code")
		}
		if !utf8.Valid(body[2:]) {
			return c.protocolError(closeProtocolError, "close reason is not UTF-8")
		}
		reason = string(body[2:])
		body = body[:2] // echo the status code only
	}
	c.writeControl(ws.OpClose, body)
	if code == closeNormal || code == closeGoingAway || code == closeNoStatus {
		return io.EOF
	}
	return &CloseError{Code: code, Reason: reason}
}

// validCloseCode reports whether a peer may send code in a close frame
// (RFC 6455 §7.4): the defined codes other than 1004 and the three that
// must never be sent (1005, 1006, 1015), the later-registered 1012–1014, and
// the ranges for libraries and applications (3000–4999). Echoing a code that
// may not be sent would break the RFC ourselves.
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// protocolError closes the WebSocket with status code and returns the read
// error for reason. It allocates, but only on this failure path.
func (c *WSConn) protocolError(code int, reason string) error {
	var body [2]byte
	binary.BigEndian.PutUint16(body[:], uint16(code))
	c.writeControl(ws.OpClose, body[:])
	return &wsProtocolError{reason: reason}
}

type wsProtocolError struct{ reason string }

func (e *wsProtocolError) Error() string { return ErrWebSocketProtocol.Error() + ": " + e.reason }
func (e *wsProtocolError) Unwrap() error { return ErrWebSocketProtocol }

// writeControl sends a control frame unless a close frame has been sent.
func (c *WSConn) writeControl(op ws.OpCode, payload []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent || c.werr != nil {
		return
	}
	if op == ws.OpClose {
		c.closeSent = true
	}
	if err := c.writeFrame(op, payload); err != nil {
		c.werr = err
	}
}

// Write sends p as one binary frame. See WSConn for the number of writes on
// the underlying connection.
func (c *WSConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if c.closeSent {
		return 0, &net.OpError{Op: "write", Net: "websocket", Source: c.conn.LocalAddr(), Addr: c.conn.RemoteAddr(), Err: net.ErrClosed}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := c.writeFrame(ws.OpBinary, p); err != nil {
		c.werr = err
		return 0, err
	}
	return len(p), nil
}

// wsDirectMax is the largest payload assembled with its header in one
// pooled buffer and written with a single Write.
const wsDirectMax = 32 << 10

// writeFrame writes one final frame. The caller holds c.wmu.
func (c *WSConn) writeFrame(op ws.OpCode, p []byte) error {
	var hdr [wsMaxHeader]byte
	hdr[0] = wsFin | byte(op)
	n := 2
	switch {
	case len(p) < 126:
		hdr[1] = byte(len(p))
	case len(p) <= 0xffff:
		hdr[1] = 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(len(p)))
		n = 4
	default:
		hdr[1] = 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(len(p)))
		n = 10
	}
	var mask [4]byte
	if c.isClient {
		hdr[1] |= wsMaskBit
		binary.LittleEndian.PutUint32(mask[:], rand.Uint32())
		copy(hdr[n:], mask[:])
		n += 4
	}
	if len(p) <= wsDirectMax {
		bp := bufpool.Get(n + len(p))
		buf := append((*bp)[:0], hdr[:n]...)
		buf = append(buf, p...)
		if c.isClient {
			ws.Cipher(buf[n:], mask, 0)
		}
		_, err := c.conn.Write(buf)
		*bp = buf
		bufpool.Put(bp)
		return err
	}
	// The header goes through a pooled buffer too: passing hdr itself to
	// the Write interface call would move it to the heap on every call.
	hp := bufpool.Get(wsMaxHeader)
	_, err := c.conn.Write(append((*hp)[:0], hdr[:n]...))
	bufpool.Put(hp)
	if err != nil {
		return err
	}
	if !c.isClient {
		_, err := c.conn.Write(p)
		return err
	}
	bp := bufpool.Get(wsDirectMax)
	defer bufpool.Put(bp)
	for off := 0; off < len(p); off += wsDirectMax {
		chunk := p[off:min(off+wsDirectMax, len(p))]
		buf := append((*bp)[:0], chunk...)
		ws.Cipher(buf, mask, off)
		if _, err := c.conn.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// Close sends a close frame (status 1000) unless one was sent already and
// closes the underlying connection at once, without waiting for the peer's
// answer; Shutdown waits for it. Sending is bounded by one second even if a
// Write is blocked on a peer that stopped reading. Later calls return the
// first call's result.
func (c *WSConn) Close() error {
	c.sendClose()
	return c.closeConn()
}

// Shutdown performs the closing handshake of RFC 6455 §7: it sends a close
// frame (status 1000) unless one was sent already, waits until the peer's
// close frame arrives or ctx is done, and closes the underlying connection.
// Data frames arriving meanwhile are discarded when no Read is in progress
// (a Read in progress receives them and sees the close). It returns
// ctx.Err() if the peer did not answer in time, else the Close result.
func (c *WSConn) Shutdown(ctx context.Context) error {
	c.sendClose()
	var err error
	if c.rmu.TryLock() {
		err = ctxio.Do(ctx, c.conn, c.awaitClose)
		c.rmu.Unlock()
	} else {
		select {
		case <-c.readDone:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if cerr := c.closeConn(); err == nil {
		err = cerr
	}
	return err
}

func (c *WSConn) sendClose() {
	c.closeSendOnce.Do(func() {
		// Unblock a Write stuck on a peer that stopped reading, so the
		// close frame gets its turn; the connection is going away anyway.
		_ = c.conn.SetWriteDeadline(time.Now().Add(wsCloseWriteWait))
		var body [2]byte
		binary.BigEndian.PutUint16(body[:], closeNormal)
		c.writeControl(ws.OpClose, body[:])
	})
}

func (c *WSConn) closeConn() error {
	c.closeOnce.Do(func() { c.closeErr = c.conn.Close() })
	return c.closeErr
}

// awaitClose reads and discards frames until the peer's close frame or an
// error. The caller holds c.rmu and bounds the wait with a deadline.
func (c *WSConn) awaitClose() error {
	if c.rerr != nil {
		return nil // the peer's close (or a failure) was already read
	}
	bp := bufpool.Get(512)
	defer bufpool.Put(bp)
	buf := (*bp)[:512]
	for c.rerr == nil {
		var n int
		var err error
		if len(c.pre) > 0 {
			n = copy(buf, c.pre)
			c.pre = c.pre[n:]
		} else {
			n, err = c.conn.Read(buf)
		}
		if _, perr := c.decode(buf[:n]); perr != nil {
			c.endRead(perr)
		}
		if err != nil && c.rerr == nil {
			return err
		}
	}
	return nil
}

var _ net.Conn = (*WSConn)(nil)
