package mqtt_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// fakeBroker is a scripted MQTT server for tests that need to see or shape
// the exact packets: it answers CONNECT with a CONNACK whose session-present
// flag the test sets, then hands each connection to the test.
type fakeBroker struct {
	l              net.Listener
	sessionPresent atomic.Bool
	refuse         atomic.Uint32 // a packet.ConnackCode to refuse CONNECTs with; 0 accepts
	conns          chan *fakeConn
}

type fakeConn struct {
	t       testing.TB
	c       net.Conn
	r       *packet.Reader
	connect *packet.Connect
}

func newFakeBroker(t testing.TB) *fakeBroker {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fb := &fakeBroker{l: l, conns: make(chan *fakeConn, 16)}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			r := packet.NewReader(c, 0)
			_ = c.SetReadDeadline(time.Now().Add(testTimeout))
			p, err := r.ReadPacket()
			if err != nil {
				c.Close()
				continue
			}
			cp, ok := p.(*packet.Connect)
			if !ok {
				c.Close()
				continue
			}
			ack := &packet.Connack{SessionPresent: fb.sessionPresent.Load() && !cp.CleanSession}
			if code := packet.ConnackCode(fb.refuse.Load()); code != packet.ConnackAccepted {
				ack = &packet.Connack{ReturnCode: code}
			}
			b, _ := ack.MarshalBinary()
			if _, err := c.Write(b); err != nil || ack.ReturnCode != packet.ConnackAccepted {
				c.Close()
				continue
			}
			fb.conns <- &fakeConn{t: t, c: c, r: r, connect: cp}
		}
	}()
	return fb
}

func (fb *fakeBroker) dialer() func(ctx context.Context) (net.Conn, error) {
	return tcpDialer(fb.l.Addr().String())
}

// accept returns the next connection that completed CONNECT.
func (fb *fakeBroker) accept(t testing.TB) *fakeConn {
	t.Helper()
	select {
	case fc := <-fb.conns:
		return fc
	case <-time.After(testTimeout):
		t.Fatal("no connection")
		return nil
	}
}

// next reads the next packet, skipping PINGREQs.
func (fc *fakeConn) next() packet.Packet {
	fc.t.Helper()
	for {
		_ = fc.c.SetReadDeadline(time.Now().Add(testTimeout))
		p, err := fc.r.ReadPacket()
		if err != nil {
			fc.t.Fatalf("fake broker read: %v", err)
		}
		if _, ping := p.(*packet.Pingreq); ping {
			fc.send(&packet.Pingresp{})
			continue
		}
		return p
	}
}

func (fc *fakeConn) send(p packet.Packet) {
	fc.t.Helper()
	b, err := p.MarshalBinary()
	if err != nil {
		fc.t.Fatal(err)
	}
	_ = fc.c.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := fc.c.Write(b); err != nil {
		fc.t.Fatalf("fake broker write: %v", err)
	}
}

func (fc *fakeConn) publish() *packet.Publish {
	fc.t.Helper()
	p := fc.next()
	pub, ok := p.(*packet.Publish)
	if !ok {
		fc.t.Fatalf("got %s, want PUBLISH", p.Type())
	}
	return pub
}

// autoAck answers every packet as a broker would (PUBACK, PUBREC, PUBCOMP,
// SUBACK, UNSUBACK, PINGRESP) until the connection closes. It allocates
// nothing per packet, so allocation tests count only the client.
func (fc *fakeConn) autoAck() {
	go func() {
		_ = fc.c.SetReadDeadline(time.Time{})
		out := make([]byte, 0, 256)
		var (
			p packet.Publish
			s packet.Subscribe
		)
		for {
			f, err := fc.r.Next()
			if err != nil {
				return
			}
			out = out[:0]
			switch f.Type() {
			case packet.TypePublish:
				if p.Decode(f) != nil {
					return
				}
				switch p.QoS {
				case packet.QoS1:
					out = append(out, 0x40, 2, byte(p.ID>>8), byte(p.ID))
				case packet.QoS2:
					out = append(out, 0x50, 2, byte(p.ID>>8), byte(p.ID))
				}
			case packet.TypePubrel:
				out = append(out, 0x70, 2, f[2], f[3])
			case packet.TypePingreq:
				out = append(out, 0xd0, 0)
			case packet.TypeSubscribe:
				if s.Decode(f) != nil {
					return
				}
				out = append(out, 0x90, byte(2+len(s.Filters)), byte(s.ID>>8), byte(s.ID))
				for _, sub := range s.Filters {
					out = append(out, byte(sub.QoS))
				}
			case packet.TypeUnsubscribe:
				out = append(out, 0xb0, 2, f[2], f[3])
			case packet.TypeDisconnect:
				fc.c.Close()
				return
			}
			if len(out) > 0 {
				if _, err := fc.c.Write(out); err != nil {
					return
				}
			}
		}
	}()
}

// fakeClient connects a client to fb and returns it with the broker side.
func fakeClient(t *testing.T, fb *fakeBroker, cfg mqtt.Config) (*mqtt.Client, *fakeConn) {
	t.Helper()
	cfg.Dialer = fb.dialer()
	if cfg.ClientID == "" {
		cfg.ClientID = clientID(t)
	}
	if cfg.Reconnect.Min == 0 {
		cfg.Reconnect.Min, cfg.Reconnect.Max = 5*time.Millisecond, 20*time.Millisecond
	}
	c, err := mqtt.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	connected := make(chan error, 1)
	go func() { _, err := c.Connect(ctxT(t)); connected <- err }()
	fc := fb.accept(t)
	if err := <-connected; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c, fc
}
