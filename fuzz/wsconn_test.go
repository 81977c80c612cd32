package fuzz

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/hubwire/hubwire/transport"
)

// chunkConn is a net.Conn reading from r at most max bytes per Read and
// recording what is written to it (pongs and close frames).
type chunkConn struct {
	net.Conn // nil; the methods WSConn uses are defined below
	r        *bytes.Reader
	max      int
	written  bytes.Buffer
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(p) > c.max {
		p = p[:c.max]
	}
	return c.r.Read(p)
}
func (c *chunkConn) Write(p []byte) (int, error)      { return c.written.Write(p) }
func (c *chunkConn) Close() error                     { return nil }
func (c *chunkConn) SetWriteDeadline(time.Time) error { return nil }
func (c *chunkConn) SetReadDeadline(time.Time) error  { return nil }
func (c *chunkConn) LocalAddr() net.Addr              { return nil }
func (c *chunkConn) RemoteAddr() net.Addr             { return nil }
func (c *chunkConn) SetDeadline(t time.Time) error    { return nil }

func maskedFrame(op ws.OpCode, fin bool, p []byte) []byte {
	f := ws.MaskFrameWith(ws.NewFrame(op, fin, append([]byte(nil), p...)), [4]byte{0xde, 0xad, 0xbe, 0xef})
	b, err := ws.CompileFrame(f)
	if err != nil {
		panic(err)
	}
	return b
}

// readControl reads one control frame (payload at most 125 bytes) that a
// WSConn wrote.
func readControl(r io.Reader) (ws.Frame, error) {
	h, err := ws.ReadHeader(r)
	if err != nil {
		return ws.Frame{}, err
	}
	if h.Length > 125 {
		return ws.Frame{}, errors.New("control frame too long")
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(r, p); err != nil {
		return ws.Frame{}, err
	}
	return ws.Frame{Header: h, Payload: p}, nil
}

// FuzzWSFrames checks transport.WSConn (server role) two ways:
//
//  1. Re-framing: stream is cut into binary and continuation frames, with
//     pings and empty frames in between, as plan dictates, and read back
//     through reads of plan-chosen sizes. The bytes read must equal stream,
//     every ping must get its pong, the final close its answer.
//  2. Hostile input: stream itself is fed as raw frame bytes. Reading must
//     not panic, must not return more bytes than it was given, and must end
//     with io.EOF, io.ErrUnexpectedEOF, a *CloseError or
//     ErrWebSocketProtocol.
func FuzzWSFrames(f *testing.F) {
	// A CONNECT, a PUBLISH, and a PINGREQ, as an MQTT client would send.
	mqtt := []byte("\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x32\x0a\x00\x03a/b\x00\x01hi!\xc0\x00")
	f.Add(mqtt, []byte{})
	f.Add(mqtt, []byte{3, 5, 0x83, 0xc2, 0x02, 0x00, 0x01})
	f.Add(mqtt, []byte{0, 0, 0x81, 0x81, 0x81, 0xcf, 0x01})
	f.Add(bytes.Repeat([]byte{0xab}, 300), []byte{63, 7, 0x3f, 0xc0, 0x9f})
	f.Add(maskedFrame(ws.OpBinary, true, mqtt), []byte{1})
	f.Add(maskedFrame(ws.OpText, true, []byte("x")), []byte{})
	f.Add([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}, []byte{})
	f.Add(append(maskedFrame(ws.OpPing, true, []byte("p")), maskedFrame(ws.OpClose, true, []byte{0x03, 0xf3, 'x'})...), []byte{2, 2})

	f.Fuzz(func(t *testing.T, stream, plan []byte) {
		readSize, maxRead := 4096, 1<<20
		if len(plan) >= 2 {
			readSize, maxRead = 1+int(plan[0])%64, 1+int(plan[1])%32
			plan = plan[2:]
		}

		// 1. Re-framing.
		var wire []byte
		var pings [][]byte
		pos, inMessage := 0, false
		for _, b := range plan {
			if pos >= len(stream) {
				break
			}
			n := min(int(b&0x3f), len(stream)-pos)
			switch b & 0xc0 {
			case 0xc0:
				p := bytes.Repeat([]byte{b}, int(b&0x0f))
				pings = append(pings, p)
				wire = append(wire, maskedFrame(ws.OpPing, true, p)...)
				continue
			case 0x80: // a non-final data frame
				op := ws.OpBinary
				if inMessage {
					op = ws.OpContinuation
				}
				wire = append(wire, maskedFrame(op, false, stream[pos:pos+n])...)
				inMessage = true
			default: // a final data frame
				op := ws.OpBinary
				if inMessage {
					op = ws.OpContinuation
				}
				wire = append(wire, maskedFrame(op, true, stream[pos:pos+n])...)
				inMessage = false
			}
			pos += n
		}
		if pos < len(stream) || inMessage {
			op := ws.OpBinary
			if inMessage {
				op = ws.OpContinuation
			}
			wire = append(wire, maskedFrame(op, true, stream[pos:])...)
		}
		wire = append(wire, maskedFrame(ws.OpClose, true, []byte{0x03, 0xe8})...)

		cc := &chunkConn{r: bytes.NewReader(wire), max: maxRead}
		c := transport.NewWSConn(cc, nil, false)
		var got []byte
		buf := make([]byte, readSize)
		var err error
		for err == nil {
			var n int
			n, err = c.Read(buf)
			got = append(got, buf[:n]...)
		}
		if err != io.EOF {
			t.Fatalf("re-framed stream ended with %v, want io.EOF", err)
		}
		if !bytes.Equal(got, stream) {
			t.Fatalf("re-framed stream differs:\n got %x\nwant %x", got, stream)
		}
		out := bytes.NewReader(cc.written.Bytes())
		for i, want := range pings {
			fr, err := readControl(out)
			if err != nil || fr.Header.OpCode != ws.OpPong || !bytes.Equal(fr.Payload, want) || fr.Header.Masked {
				t.Fatalf("answer %d: %v %v %x, want unmasked pong %x", i, err, fr.Header.OpCode, fr.Payload, want)
			}
		}
		if fr, err := readControl(out); err != nil || fr.Header.OpCode != ws.OpClose || !bytes.Equal(fr.Payload, []byte{0x03, 0xe8}) {
			t.Fatalf("close answer: %v %v %x", err, fr.Header.OpCode, fr.Payload)
		}

		// 2. Hostile input.
		hc := transport.NewWSConn(&chunkConn{r: bytes.NewReader(stream), max: maxRead}, nil, false)
		total := 0
		err = nil
		for err == nil {
			var n int
			n, err = hc.Read(buf)
			total += n
		}
		if total > len(stream) {
			t.Fatalf("read %d payload bytes from %d input bytes", total, len(stream))
		}
		var ce *transport.CloseError
		if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.As(err, &ce) && !errors.Is(err, transport.ErrWebSocketProtocol) {
			t.Fatalf("raw input ended with unexpected error %v", err)
		}
	})
}
