package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// rawFrame encodes one frame with gobwas/ws, an encoder independent of
// WSConn's, masked when masked is true.
func rawFrame(t testing.TB, op ws.OpCode, fin bool, payload []byte, masked bool) []byte {
	t.Helper()
	f := ws.NewFrame(op, fin, append([]byte(nil), payload...))
	if masked {
		f = ws.MaskFrameWith(f, [4]byte{0x12, 0x34, 0x56, 0x78})
	}
	b, err := ws.CompileFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func closeBody(code int, reason string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(code))
	return append(b, reason...)
}

// readFrame reads one frame written by a WSConn from raw and unmasks it.
func readFrame(t *testing.T, raw net.Conn) ws.Frame {
	t.Helper()
	_ = raw.SetReadDeadline(time.Now().Add(testTimeout))
	f, err := readOneFrame(raw)
	if err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	return f
}

func readOneFrame(r io.Reader) (ws.Frame, error) {
	h, err := ws.ReadHeader(r)
	if err != nil {
		return ws.Frame{}, err
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(r, p); err != nil {
		return ws.Frame{}, err
	}
	if h.Masked {
		ws.Cipher(p, h.Mask, 0)
	}
	return ws.Frame{Header: h, Payload: p}, nil
}

// serverWS returns a server-role WSConn on one end of a loopback TCP
// connection and the raw other end.
func serverWS(t *testing.T) (*WSConn, net.Conn) {
	t.Helper()
	raw, s := tcpPair(t)
	return NewWSConn(s, nil, false), raw
}

// readN reads exactly n stream bytes from c with reads of at most bufSize.
func readN(t *testing.T, c net.Conn, n, bufSize int) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	out := make([]byte, 0, n)
	buf := make([]byte, bufSize)
	for len(out) < n {
		k, err := c.Read(buf[:min(bufSize, n-len(out))])
		out = append(out, buf[:k]...)
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", len(out), n, err)
		}
	}
	return out
}

func TestWSConnFraming(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 70000/16)
	mid := bytes.Repeat([]byte{0xa5}, 300)
	type fr struct {
		op      ws.OpCode
		fin     bool
		payload string
	}
	for _, tc := range []struct {
		name   string
		frames []fr
		want   string
		pongs  []string
	}{
		{
			name:   "packet-split-across-frames",
			frames: []fr{{ws.OpBinary, true, "\x30\x0b\x00\x03a/b"}, {ws.OpBinary, true, "hel"}, {ws.OpBinary, true, "lo"}},
			want:   "\x30\x0b\x00\x03a/bhello",
		},
		{
			name:   "packets-in-one-frame",
			frames: []fr{{ws.OpBinary, true, "\xc0\x00\xc0\x00\xd0\x00\x40\x02\x00\x01"}},
			want:   "\xc0\x00\xc0\x00\xd0\x00\x40\x02\x00\x01",
		},
		{
			name:   "fragmented-message",
			frames: []fr{{ws.OpBinary, false, "abc"}, {ws.OpContinuation, false, "def"}, {ws.OpContinuation, true, "gh"}, {ws.OpBinary, true, "ij"}},
			want:   "abcdefghij",
		},
		{
			name:   "ping-interleaved",
			frames: []fr{{ws.OpBinary, true, "abc"}, {ws.OpPing, true, "p1"}, {ws.OpBinary, true, "def"}, {ws.OpPing, true, ""}},
			want:   "abcdef",
			pongs:  []string{"p1", ""},
		},
		{
			name:   "ping-inside-fragmented-message",
			frames: []fr{{ws.OpBinary, false, "ab"}, {ws.OpPing, true, "x"}, {ws.OpContinuation, true, "cd"}},
			want:   "abcd",
			pongs:  []string{"x"},
		},
		{
			name:   "pongs-and-empty-frames-ignored",
			frames: []fr{{ws.OpBinary, true, ""}, {ws.OpPong, true, "unsolicited"}, {ws.OpBinary, true, "z"}, {ws.OpBinary, true, ""}},
			want:   "z",
		},
		{
			name:   "16-bit-length",
			frames: []fr{{ws.OpBinary, true, string(mid)}},
			want:   string(mid),
		},
		{
			name:   "64-bit-length",
			frames: []fr{{ws.OpBinary, true, string(big)}, {ws.OpPing, true, "after"}},
			want:   string(big),
			pongs:  []string{"after"},
		},
	} {
		for _, bufSize := range []int{1, 7, 4096} {
			t.Run(tc.name+"/read="+strconv.Itoa(bufSize), func(t *testing.T) {
				c, raw := serverWS(t)
				var wire []byte
				for _, f := range tc.frames {
					wire = append(wire, rawFrame(t, f.op, f.fin, []byte(f.payload), true)...)
				}
				wire = append(wire, rawFrame(t, ws.OpClose, true, closeBody(closeNormal, "bye"), true)...)
				go raw.Write(wire)

				got := readN(t, c, len(tc.want), bufSize)
				if string(got) != tc.want {
					t.Fatalf("stream differs: got %d bytes %.40q, want %d bytes %.40q", len(got), got, len(tc.want), tc.want)
				}
				if n, err := c.Read(make([]byte, bufSize)); n != 0 || err != io.EOF {
					t.Fatalf("after the close frame: Read = %d, %v; want 0, io.EOF", n, err)
				}
				if _, err := c.Read(make([]byte, 1)); err != io.EOF {
					t.Fatalf("EOF is not sticky: %v", err)
				}
				for _, want := range tc.pongs {
					f := readFrame(t, raw)
					if f.Header.OpCode != ws.OpPong || string(f.Payload) != want || f.Header.Masked {
						t.Fatalf("got %v frame %q (masked %v), want unmasked pong %q", f.Header.OpCode, f.Payload, f.Header.Masked, want)
					}
				}
				f := readFrame(t, raw)
				if f.Header.OpCode != ws.OpClose || !bytes.Equal(f.Payload, closeBody(closeNormal, "")) {
					t.Fatalf("close answer: %v %q, want close with status 1000", f.Header.OpCode, f.Payload)
				}
				if _, err := c.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
					t.Errorf("Write after the close handshake = %v, want net.ErrClosed", err)
				}
			})
		}
	}
}

func TestWSConnProtocolErrors(t *testing.T) {
	long := bytes.Repeat([]byte{'p'}, 126)
	for _, tc := range []struct {
		name     string
		wire     func(t *testing.T) []byte
		client   bool // WSConn in the client role
		wantCode int
	}{
		{name: "text-frame", wantCode: closeUnsupportedData, wire: func(t *testing.T) []byte {
			return rawFrame(t, ws.OpText, true, []byte("hi"), true)
		}},
		{name: "unmasked-client-frame", wantCode: closeProtocolError, wire: func(t *testing.T) []byte {
			return rawFrame(t, ws.OpBinary, true, []byte("hi"), false)
		}},
		{name: "masked-server-frame", client: true, wantCode: closeProtocolError, wire: func(t *testing.T) []byte {
			return rawFrame(t, ws.OpBinary, true, []byte("hi"), true)
		}},
		{name: "reserved-bit", wantCode: closeProtocolError, wire: func(t *testing.T) []byte {
			b := rawFrame(t, ws.OpBinary, true, []byte("hi"), true)
			b[0] |= 0x40
			return b
		}},
		{name: "reserved-opcode", wantCode: closeProtocolError, wire: func(t *testing.T) []byte {
			return rawFrame(t, ws.OpCode(0x3), true, []byte("hi"), true)
		}},
		{name: "control-over-125", wantCode: closeProtocolError, wire: func(t *testing.T) []byte {
			return rawFrame(t, ws.OpPing, true, long, true)
		}},
		{name: "fragmented-ping", wantCode: closeProtocolError, wire: func(t *testing.T) []byte {
			return rawFrame(t, ws.OpPing, false, []byte("x"), true)
		}},
		{name: "continuation-without-message", wantCode: closeProtocolError, wire: func(t *testing.T) []byte {
			return rawFrame(t, ws.OpContinuation, true, []byte("x"), true)
		}},
		{name: "binary-inside-message", wantCode: closeProtocolError, wire: func(t *testing.T) []byte {
			return append(rawFrame(t, ws.OpBinary, false, []byte("a"), true), rawFrame(t, ws.OpBinary, true, []byte("b"), true)...)
		}},
		{name: "close-1-byte-body", wantCode: closeProtocolError, wire: func(t *testing.T) []byte {
			return rawFrame(t, ws.OpClose, true, []byte{3}, true)
		}},
		{name: "close-reason-not-utf8", wantCode: closeProtocolError, wire: func(t *testing.T) []byte {
			return rawFrame(t, ws.OpClose, true, closeBody(1000, "\xff"), true)
		}},
		{name: "64-bit-length-top-bit", wantCode: closeProtocolError, wire: func(t *testing.T) []byte {
			return []byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, s := tcpPair(t)
			c := NewWSConn(s, nil, tc.client)
			go raw.Write(tc.wire(t))
			_ = c.SetReadDeadline(time.Now().Add(testTimeout))
			var err error
			buf := make([]byte, 64)
			for err == nil {
				_, err = c.Read(buf)
			}
			if !errors.Is(err, ErrWebSocketProtocol) {
				t.Fatalf("Read error = %v, want ErrWebSocketProtocol", err)
			}
			if _, err2 := c.Read(buf); err2 != err {
				t.Errorf("error not sticky: %v then %v", err, err2)
			}
			f := readFrame(t, raw)
			if f.Header.OpCode != ws.OpClose || len(f.Payload) < 2 || int(binary.BigEndian.Uint16(f.Payload)) != tc.wantCode {
				t.Errorf("sent %v %q, want close with status %d", f.Header.OpCode, f.Payload, tc.wantCode)
			}
			if f.Header.Masked != tc.client {
				t.Errorf("close frame masked = %v, want %v", f.Header.Masked, tc.client)
			}
		})
	}
}

// errInvalidClose marks the close-status cases that must fail with
// ErrWebSocketProtocol.
var errInvalidClose = errors.New("invalid close code")

func TestWSConnCloseStatus(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    []byte
		want    error
		wantErr *CloseError
		echo    []byte
	}{
		{name: "normal", body: closeBody(closeNormal, ""), want: io.EOF, echo: closeBody(closeNormal, "")},
		{name: "going-away", body: closeBody(closeGoingAway, "restart"), want: io.EOF, echo: closeBody(closeGoingAway, "")},
		{name: "no-status", body: nil, want: io.EOF, echo: []byte{}},
		{name: "internal-error", body: closeBody(1011, "oops"), wantErr: &CloseError{Code: 1011, Reason: "oops"}, echo: closeBody(1011, "")},
		{name: "application-code", body: closeBody(4000, ""), wantErr: &CloseError{Code: 4000}, echo: closeBody(4000, "")},
		// Codes that must never be sent are a protocol error, answered
		// with 1002 rather than echoed (RFC 6455 §7.4.1).
		{name: "reserved-1005", body: closeBody(1005, ""), want: errInvalidClose, echo: closeBody(closeProtocolError, "")},
		{name: "reserved-1006", body: closeBody(1006, ""), want: errInvalidClose, echo: closeBody(closeProtocolError, "")},
		{name: "reserved-1015", body: closeBody(1015, ""), want: errInvalidClose, echo: closeBody(closeProtocolError, "")},
		{name: "unassigned-999", body: closeBody(999, ""), want: errInvalidClose, echo: closeBody(closeProtocolError, "")},
		{name: "unassigned-2000", body: closeBody(2000, ""), want: errInvalidClose, echo: closeBody(closeProtocolError, "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, raw := serverWS(t)
			go raw.Write(rawFrame(t, ws.OpClose, true, tc.body, true))
			_ = c.SetReadDeadline(time.Now().Add(testTimeout))
			_, err := c.Read(make([]byte, 16))
			if tc.wantErr != nil {
				var ce *CloseError
				if !errors.As(err, &ce) || *ce != *tc.wantErr {
					t.Fatalf("Read = %v, want %v", err, tc.wantErr)
				}
			} else if tc.want == errInvalidClose {
				if !errors.Is(err, ErrWebSocketProtocol) {
					t.Fatalf("Read = %v, want ErrWebSocketProtocol", err)
				}
			} else if err != tc.want {
				t.Fatalf("Read = %v, want %v", err, tc.want)
			}
			f := readFrame(t, raw)
			if f.Header.OpCode != ws.OpClose || !bytes.Equal(f.Payload, tc.echo) {
				t.Errorf("answer %v %q, want close %q", f.Header.OpCode, f.Payload, tc.echo)
			}
		})
	}
}

func TestWSConnWrite(t *testing.T) {
	for _, size := range []int{0, 1, 125, 126, 65535, 65536, wsDirectMax, wsDirectMax + 1, 200_000} {
		for _, client := range []bool{true, false} {
			name := "server"
			if client {
				name = "client"
			}
			t.Run(name+"/size="+strconv.Itoa(size), func(t *testing.T) {
				raw, s := tcpPair(t)
				c := NewWSConn(s, nil, client)
				p := make([]byte, size)
				for i := range p {
					p[i] = byte(i * 7)
				}
				orig := append([]byte(nil), p...)
				errc := make(chan error, 1)
				go func() {
					n, err := c.Write(p)
					if err == nil && n != len(p) {
						err = io.ErrShortWrite
					}
					errc <- err
				}()
				if size == 0 {
					if err := <-errc; err != nil {
						t.Fatal(err)
					}
					return // an empty Write sends nothing
				}
				f := readFrame(t, raw)
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				if f.Header.OpCode != ws.OpBinary || !f.Header.Fin {
					t.Errorf("frame %v fin=%v, want one final binary frame", f.Header.OpCode, f.Header.Fin)
				}
				if f.Header.Masked != client {
					t.Errorf("masked = %v, want %v", f.Header.Masked, client)
				}
				if !bytes.Equal(f.Payload, orig) {
					t.Errorf("payload differs from what was written")
				}
				if !bytes.Equal(p, orig) {
					t.Errorf("Write modified the caller's buffer")
				}
			})
		}
	}
}

// TestWSConnShutdown runs the closing handshake between two WSConns.
func TestWSConnShutdown(t *testing.T) {
	a, b := tcpPair(t)
	client, server := NewWSConn(a, nil, true), NewWSConn(b, nil, false)
	got := make(chan error, 1)
	go func() {
		_ = server.SetReadDeadline(time.Now().Add(testTimeout))
		buf := make([]byte, 64)
		var data []byte
		for {
			n, err := server.Read(buf)
			data = append(data, buf[:n]...)
			if err != nil {
				if string(data) != "last words" {
					err = errors.New("server read " + string(data))
				}
				got <- err
				server.Close()
				return
			}
		}
	}()
	if _, err := client.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := client.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v; the server's close frame did not arrive", err)
	}
	if err := <-got; err != io.EOF {
		t.Fatalf("server Read ended with %v, want io.EOF", err)
	}
	if err := client.Close(); err != nil {
		t.Errorf("Close after Shutdown = %v, want the first result (nil)", err)
	}
}

// TestWSConnShutdownWithReader: a Read in progress receives the peer's close
// and Shutdown returns when it does.
func TestWSConnShutdownWithReader(t *testing.T) {
	a, b := tcpPair(t)
	client, server := NewWSConn(a, nil, true), NewWSConn(b, nil, false)
	go io.Copy(io.Discard, server) // answers the close frame
	readErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, client)
		readErr <- err
	}()
	time.Sleep(10 * time.Millisecond) // let the reader block; correctness does not depend on it
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := client.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if err := <-readErr; err != nil && !errors.Is(err, net.ErrClosed) {
		t.Errorf("reader ended with %v, want EOF (nil from io.Copy) or net.ErrClosed", err)
	}
	server.Close()
}

// TestWSConnReadTimeout stops a Read in the middle of a frame header with a
// deadline, then resumes once the rest arrives.
func TestWSConnReadTimeout(t *testing.T) {
	c, raw := serverWS(t)
	wire := rawFrame(t, ws.OpBinary, true, []byte("resumed"), true)
	if _, err := raw.Write(wire[:3]); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := c.Read(make([]byte, 64))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read = %v, want a net.Error timeout", err)
	}
	if _, err := raw.Write(wire[3:]); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, c, 7, 64); string(got) != "resumed" {
		t.Fatalf("after the timeout read %q, want %q", got, "resumed")
	}
}

// TestWSConnBuffered decodes bytes a handshake read ahead into a
// bufio.Reader before reading from the connection.
func TestWSConnBuffered(t *testing.T) {
	raw, s := tcpPair(t)
	first := rawFrame(t, ws.OpBinary, true, []byte("early"), true)
	br := bufio.NewReader(io.MultiReader(bytes.NewReader(first), s))
	if _, err := br.Peek(len(first)); err != nil {
		t.Fatal(err)
	}
	c := NewWSConn(s, br, false)
	go raw.Write(rawFrame(t, ws.OpBinary, true, []byte("+late"), true))
	if got := readN(t, c, 10, 3); string(got) != "early+late" {
		t.Fatalf("read %q, want %q", got, "early+late")
	}
}

func TestWSConnUnexpectedEOF(t *testing.T) {
	c, raw := serverWS(t)
	wire := rawFrame(t, ws.OpBinary, true, []byte("truncated"), true)
	raw.Write(wire[:len(wire)-3])
	raw.Close()
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	buf := make([]byte, 64)
	var err error
	for err == nil {
		_, err = c.Read(buf)
	}
	if err != io.ErrUnexpectedEOF {
		t.Errorf("Read = %v, want io.ErrUnexpectedEOF", err)
	}
}

// TestWSConnClientRole: a client reads the server's unmasked frames and
// answers pings with masked pongs.
func TestWSConnClientRole(t *testing.T) {
	raw, s := tcpPair(t)
	c := NewWSConn(s, nil, true)
	var wire []byte
	wire = append(wire, rawFrame(t, ws.OpBinary, false, []byte("\x20\x02"), false)...)
	wire = append(wire, rawFrame(t, ws.OpPing, true, []byte("hb"), false)...)
	wire = append(wire, rawFrame(t, ws.OpContinuation, true, []byte("\x00\x00"), false)...)
	go raw.Write(wire)
	if got := readN(t, c, 4, 4096); string(got) != "\x20\x02\x00\x00" {
		t.Fatalf("read %q", got)
	}
	f := readFrame(t, raw)
	if f.Header.OpCode != ws.OpPong || !f.Header.Masked || string(f.Payload) != "hb" {
		t.Errorf("answer %v masked=%v %q, want masked pong %q", f.Header.OpCode, f.Header.Masked, f.Payload, "hb")
	}
}

// TestWSConnConcurrentReadWrite: both ends read and write at once, then one
// side closes while the other is still reading and writing; a Read and a
// Write after Close fail with net.ErrClosed. Run with -race.
func TestWSConnConcurrentReadWrite(t *testing.T) {
	a, b := tcpPair(t)
	client, server := NewWSConn(a, nil, true), NewWSConn(b, nil, false)
	const msgs, size = 200, 3000
	msg := bytes.Repeat([]byte{0x5a}, size)
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for _, c := range []*WSConn{client, server} {
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range msgs {
				if _, err := c.Write(msg); err != nil {
					errc <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, 1500)
			for got := 0; got < msgs*size; {
				n, err := c.Read(buf)
				for _, x := range buf[:n] {
					if x != 0x5a {
						errc <- errors.New("stream corrupted")
						return
					}
				}
				got += n
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}

	// Close while the peer reads and writes: both sides end, neither hangs.
	done := make(chan error, 2)
	go func() {
		_, err := io.Copy(io.Discard, server)
		done <- err
	}()
	go func() {
		for {
			if _, err := server.Write(msg); err != nil {
				done <- err
				return
			}
		}
	}()
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-done:
		case <-time.After(testTimeout):
			t.Fatal("peer still blocked after Close")
		}
	}
	if _, err := client.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close = %v, want net.ErrClosed", err)
	}
	if _, err := client.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close = %v, want net.ErrClosed", err)
	}
}

// hugeFrameConn serves one masked binary frame header declaring 2^62
// payload bytes, then payload bytes forever.
type hugeFrameConn struct {
	net.Conn // nil; only Read, Write and Close are called
	hdr      []byte
}

func (c *hugeFrameConn) Read(p []byte) (int, error) {
	if len(c.hdr) > 0 {
		n := copy(p, c.hdr)
		c.hdr = c.hdr[n:]
		return n, nil
	}
	clear(p) // zeros, masked with a zero key below
	return len(p), nil
}
func (c *hugeFrameConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *hugeFrameConn) Close() error                { return nil }

// TestWSConnHugeDeclaredLength: a frame that declares 2^62 bytes is
// streamed through the caller's buffer as it arrives; nothing is sized by
// the declared length.
func TestWSConnHugeDeclaredLength(t *testing.T) {
	hdr := []byte{0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	c := NewWSConn(&hugeFrameConn{hdr: hdr}, nil, false)
	buf := make([]byte, 4096)
	total := 0
	for total < 64<<20 {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if c.remain != 1<<62-uint64(total) {
		t.Errorf("remain = %d after %d bytes of a 2^62-byte frame", c.remain, total)
	}
}
