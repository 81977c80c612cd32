package mqtt_test

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// opaqueConn hides the connection's file descriptor, as TLS and WebSocket
// connections do, and records the size of the buffer of a Read in
// progress.
type opaqueConn struct {
	net.Conn
	blocked atomic.Int64 // len(p) of the Read in progress, -1 when none
}

func (o *opaqueConn) Read(p []byte) (int, error) {
	o.blocked.Store(int64(len(p)))
	n, err := o.Conn.Read(p)
	o.blocked.Store(-1)
	return n, err
}

// TestIdleReadHoldsNoBuffer checks that on a connection without a file
// descriptor the idle reader waits in a read of a few bytes rather than
// into a pooled read buffer, and that messages split anywhere around those
// first bytes still arrive whole.
func TestIdleReadHoldsNoBuffer(t *testing.T) {
	fb := newFakeBroker(t)
	var oc atomic.Pointer[opaqueConn]
	got := make(chan string, 8)
	cfg := mqtt.Config{
		ClientID:  clientID(t),
		KeepAlive: -1,
		Dialer: func(ctx context.Context) (net.Conn, error) {
			c, err := fb.dialer()(ctx)
			if err != nil {
				return nil, err
			}
			o := &opaqueConn{Conn: c}
			o.blocked.Store(-1)
			oc.Store(o)
			return o, nil
		},
		OnMessage: func(m *mqtt.Message) { got <- string(m.Topic) + "=" + string(m.Payload) },
	}
	c, err := mqtt.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctxT(t))
	if _, err := c.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	fc := fb.accept(t)
	waitIdle := func() {
		t.Helper()
		deadline := time.Now().Add(testTimeout)
		for {
			if n := oc.Load().blocked.Load(); n >= 0 {
				if n > 16 {
					t.Fatalf("idle reader blocked in a Read of %d bytes, want a small one", n)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("reader never blocked")
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitIdle()
	// A message in pieces: 1 byte, then the rest of the head, then the body.
	b, err := (&packet.Publish{Topic: []byte("a/b"), Payload: []byte("a payload longer than the head")}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range [][2]int{{1, 5}, {8, 9}, {len(b) - 1, len(b)}} {
		for _, part := range [][]byte{b[:cut[0]], b[cut[0]:cut[1]], b[cut[1]:]} {
			if len(part) == 0 {
				continue
			}
			if _, err := fc.c.Write(part); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		select {
		case m := <-got:
			if m != "a/b=a payload longer than the head" {
				t.Fatalf("cut %v: got %q", cut, m)
			}
		case <-time.After(testTimeout):
			t.Fatalf("cut %v: message not delivered", cut)
		}
		waitIdle()
	}
	// Two packets in one write, the second shorter than the head.
	two := append(append([]byte(nil), b...), byte(packet.TypePublish)<<4, 3, 0, 1, 'x')
	if _, err := fc.c.Write(two); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a/b=a payload longer than the head", "x="} {
		select {
		case m := <-got:
			if m != want {
				t.Fatalf("got %q, want %q", m, want)
			}
		case <-time.After(testTimeout):
			t.Fatalf("%q not delivered", want)
		}
	}
}

// TestIdleNoDeliveryGoroutine checks that the goroutine running handlers
// returns once the handler queue is empty, so that an idle connection
// keeps only its reader and writer, and that it starts again, in order,
// for the next messages.
func TestIdleNoDeliveryGoroutine(t *testing.T) {
	fb := newFakeBroker(t)
	got := make(chan string, 16)
	_, fc := fakeClient(t, fb, mqtt.Config{OnMessage: func(m *mqtt.Message) { got <- string(m.Payload) }})
	deliveryRuns := func() bool {
		buf := make([]byte, 1<<20)
		return bytes.Contains(buf[:runtime.Stack(buf, true)], []byte("mqtt.(*Client).deliverLoop"))
	}
	for round := range 3 {
		for i := range 3 {
			fc.send(&packet.Publish{Topic: []byte("t"), Payload: []byte{byte('a' + 3*round + i)}})
		}
		for i := range 3 {
			want := string(rune('a' + 3*round + i))
			select {
			case m := <-got:
				if m != want {
					t.Fatalf("round %d: got %q, want %q", round, m, want)
				}
			case <-time.After(testTimeout):
				t.Fatalf("round %d: message %q not delivered", round, want)
			}
		}
		deadline := time.Now().Add(testTimeout)
		for deliveryRuns() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the delivery goroutine outlives an empty queue", round)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// TestIdleNoWriterGoroutine checks that the writer goroutine returns once
// the queue is written, so that an idle connection keeps only its reader,
// while publishes still leave and the keep-alive (a timer) keeps the
// connection up.
func TestIdleNoWriterGoroutine(t *testing.T) {
	fb := newFakeBroker(t)
	var states stateLog
	c, fc := fakeClient(t, fb, mqtt.Config{KeepAlive: time.Second, OnStateChange: states.record})
	fc.autoAck() // answers PUBLISH and PINGREQ
	writerRuns := func() bool {
		buf := make([]byte, 1<<20)
		return bytes.Contains(buf[:runtime.Stack(buf, true)], []byte("mqtt.(*Client).writeLoop"))
	}
	waitNoWriter := func(what string) {
		t.Helper()
		deadline := time.Now().Add(testTimeout)
		for writerRuns() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the writer goroutine outlives an empty queue", what)
			}
			time.Sleep(2 * time.Millisecond)
		}
		if n := states.count(mqtt.StateReconnecting); n != 0 {
			t.Fatalf("%s: the connection was lost", what)
		}
	}
	waitNoWriter("after CONNECT")
	for i := range 3 {
		if err := c.Publish(ctxT(t), &mqtt.Message{Topic: []byte("w"), QoS: packet.QoS1, Payload: []byte{byte('0' + i)}}); err != nil {
			t.Fatal(err)
		}
		waitNoWriter("after a publish")
	}
	// Two keep-alive periods: pings leave and are answered.
	time.Sleep(2 * time.Second)
	waitNoWriter("after the pings")
	if st := c.State(); st != mqtt.StateConnected {
		t.Fatalf("state %v, want connected", st)
	}
}
