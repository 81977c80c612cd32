package transport

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"runtime"
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

// BenchmarkIdleConn opens b.N connection pairs over loopback (both ends in
// this process), moves one 256-byte message each way on each, and reports
// the live heap per pair once they sit idle: what an emulator holding
// thousands of device connections pays per connection in transport, TLS
// and WebSocket state (no goroutines, no application buffers). Run it with
// a fixed count, e.g. -benchtime 500x.
func BenchmarkIdleConn(b *testing.B) {
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
			d, err := NewDialer(l.URL(), Config{TLS: ca.ClientConfig(nil)})
			if err != nil {
				b.Fatal(err)
			}
			msg, buf := make([]byte, 256), make([]byte, 256)
			conns := make([]net.Conn, 0, 2*b.N)
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for range b.N {
				accepted := make(chan net.Conn, 1)
				go func() {
					c, err := l.Accept()
					if err != nil {
						close(accepted)
						return
					}
					accepted <- c
				}()
				c, err := d.DialContext(ctx)
				if err != nil {
					b.Fatal(err)
				}
				s, ok := <-accepted
				if !ok {
					b.Fatal("accept failed")
				}
				conns = append(conns, c, s)
				for _, pair := range [][2]net.Conn{{c, s}, {s, c}} {
					if _, err := pair[0].Write(msg); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(pair[1], buf); err != nil {
						b.Fatal(err)
					}
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/float64(b.N), "heapB/pair")
		})
	}
}
