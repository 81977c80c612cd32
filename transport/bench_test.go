package transport

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/hubwire/hubwire/internal/testcert"
)

// BenchmarkThroughput moves 256-byte messages (one Write each, so one
// WebSocket frame each) over loopback and reads them on the other side with
// a 4 KiB buffer, as an MQTT reader would. Compare transport=ws with
// transport=tcp for the WebSocket layer's overhead, wss with tls for the
// same over TLS.
func BenchmarkThroughput(b *testing.B) {
	const size = 256
	ca := testcert.New(b, testcert.Options{})
	server := ca.MustServer(b)
	for _, scheme := range []string{"tcp", "ws", "tls", "wss"} {
		b.Run("transport="+scheme, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			l, err := Listen(ctx, scheme+"://127.0.0.1:0/", ListenConfig{TLS: ca.ServerConfig(server, tls.NoClientCert)})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			accepted := make(chan net.Conn, 1)
			go func() {
				c, err := l.Accept()
				if err == nil {
					accepted <- c
				}
			}()
			c, err := Dial(ctx, l.URL(), Config{TLS: ca.ClientConfig(nil)})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			s := <-accepted
			defer s.Close()

			msg := make([]byte, size)
			buf := make([]byte, 4096)
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			errc := make(chan error, 1)
			go func() {
				for range b.N {
					if _, err := c.Write(msg); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			for total := b.N * size; total > 0; {
				n, err := s.Read(buf[:min(len(buf), total)])
				if err != nil {
					b.Fatal(err)
				}
				total -= n
			}
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// loopConn is a net.Conn whose Read returns wire over and over and whose
// Write discards, to measure WSConn's framing without the network.
type loopConn struct {
	net.Conn // nil; only Read, Write and Close are called
	wire     []byte
	off      int
}

func (c *loopConn) Read(p []byte) (int, error) {
	n := copy(p, c.wire[c.off:])
	c.off = (c.off + n) % len(c.wire)
	return n, nil
}

func (c *loopConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *loopConn) Close() error                { return nil }

// newLoopWS returns a server-role WSConn reading 256-byte masked binary
// frames forever.
func newLoopWS(tb testing.TB) *WSConn {
	tb.Helper()
	var wire []byte
	for range 16 {
		wire = append(wire, rawFrame(tb, ws.OpBinary, true, make([]byte, 256), true)...)
	}
	return NewWSConn(&loopConn{wire: wire}, nil, false)
}

// BenchmarkWSConnRead decodes 256-byte masked frames (the server's side)
// with a 4 KiB read buffer, without a network.
func BenchmarkWSConnRead(b *testing.B) {
	c := newLoopWS(b)
	buf := make([]byte, 4096)
	b.SetBytes(256)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := io.ReadFull(c, buf[:256]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWSConnWrite frames and masks 256-byte writes (the client's side)
// into a connection that discards them.
func BenchmarkWSConnWrite(b *testing.B) {
	c := NewWSConn(&loopConn{}, nil, true)
	msg := make([]byte, 256)
	b.SetBytes(256)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
	}
}
