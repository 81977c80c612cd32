//go:build !race

package device

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/hubwire/hubwire/internal/testcert"
	"github.com/hubwire/hubwire/packet"
	"github.com/hubwire/hubwire/transport"
)

// sinkHub accepts device connections and acknowledges everything without
// allocating, so that AllocsPerRun (which counts the whole process)
// measures the client. scheme is tls or tcp: crypto/tls allocates a little
// per record read (its atLeastReader), on both sides, so the 0-alloc
// claim is checked over tcp and the TLS figure is reported by the
// benchmark.
func sinkHub(tb testing.TB, scheme string) (addr string, pool *testcert.CA) {
	ca := testcert.New(tb, testcert.Options{})
	srv := ca.MustServer(tb, testHost, "127.0.0.1")
	l, err := transport.Listen(context.Background(), scheme+"://127.0.0.1:0", transport.ListenConfig{TLS: ca.ServerConfig(srv, tls.NoClientCert)})
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	tb.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go serveSink(nc)
		}
	}()
	return l.Addr().String(), ca
}

func serveSink(nc interface {
	Read([]byte) (int, error)
	Write([]byte) (int, error)
	Close() error
}) {
	defer nc.Close()
	r := packet.NewReader(nc, 1<<20)
	out := make([]byte, 0, 64)
	var pub packet.Publish
	var sub packet.Subscribe
	for {
		f, err := r.Next()
		if err != nil {
			return
		}
		out = out[:0]
		switch f.Type() {
		case packet.TypeConnect:
			out, _ = (&packet.Connack{}).AppendBinary(out)
		case packet.TypeSubscribe:
			if sub.Decode(f) != nil {
				return
			}
			codes := make([]byte, len(sub.Filters))
			out, _ = (&packet.Suback{ID: sub.ID, ReturnCodes: codes}).AppendBinary(out)
		case packet.TypePublish:
			if pub.Decode(f) != nil {
				return
			}
			if pub.QoS == packet.QoS1 {
				out, _ = (&packet.Puback{ID: pub.ID}).AppendBinary(out)
			}
		case packet.TypePingreq:
			out, _ = (&packet.Pingresp{}).AppendBinary(out)
		case packet.TypeDisconnect:
			return
		}
		if len(out) > 0 {
			if _, err := nc.Write(out); err != nil {
				return
			}
		}
	}
}

func sinkClient(tb testing.TB, scheme string) *Client {
	addr, ca := sinkHub(tb, scheme)
	c, err := New(Config{
		ConnectionString: "HostName=" + testHost + ";DeviceId=dev1;SharedAccessKey=" + goodKey,
		Address:          addr,
		RootCAs:          ca.Pool(),
		NoProxy:          true,
		TwinTimeout:      time.Hour, // the sink never answers the twin GET
	})
	if err != nil {
		tb.Fatal(err)
	}
	if scheme == "tcp" {
		// Plain TCP is not a transport IoT Hub offers; only this test
		// dials it, replacing the dialer before Connect.
		if c.dialer, err = transport.NewDialer("tcp://"+addr, transport.Config{}); err != nil {
			tb.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// telemetryMessage is a 256-byte message with two application properties
// and a message id, reused for every send as a steady-state loop would.
func telemetryMessage() *Message {
	m := &Message{Payload: make([]byte, 256)}
	m.Properties.ContentType = "application/json"
	m.Properties.Add("sensor", "temp")
	m.Properties.Add("unit", "C")
	return m
}

// TestSendAllocs: Send of a reused message with properties allocates
// nothing per message in steady state, at QoS 1 and QoS 0.
func TestSendAllocs(t *testing.T) {
	c := sinkClient(t, "tcp")
	ctx := context.Background()
	m := telemetryMessage()
	m.Properties.MessageID = "id-1"
	for range 100 {
		if err := c.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if a := testing.AllocsPerRun(1000, func() {
		if err := c.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}); a > 0 {
		t.Errorf("QoS 1 Send: %.2f allocs per message, want 0", a)
	}
	m.QoS0 = true
	if a := testing.AllocsPerRun(1000, func() {
		if err := c.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}); a > 0 {
		t.Errorf("QoS 0 Send: %.2f allocs per message, want 0", a)
	}
}

func BenchmarkSend(b *testing.B) {
	for _, scheme := range []string{"tcp", "tls"} {
		b.Run(scheme, func(b *testing.B) {
			c := sinkClient(b, scheme)
			ctx := context.Background()
			m := telemetryMessage()
			b.SetBytes(int64(len(m.Payload)))
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Send(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSendAsync keeps up to QueueSize messages in flight from one
// goroutine.
func BenchmarkSendAsync(b *testing.B) {
	c := sinkClient(b, "tls")
	ctx := context.Background()
	m := telemetryMessage()
	b.SetBytes(int64(len(m.Payload)))
	b.ReportAllocs()
	for b.Loop() {
		if err := c.SendAsync(ctx, m, nil); err != nil {
			b.Fatal(err)
		}
	}
	// Wait for the tail to be acknowledged before the sink closes.
	if err := c.Send(ctx, m); err != nil {
		b.Fatal(err)
	}
}
