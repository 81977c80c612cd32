package mqtt_test

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// writeCounter counts the Write calls a client makes on its connection.
// While hold is set, a Write first waits until hold is closed: a client
// that wrote an acknowledgement before it had read the whole burst then
// needs a second Write for the rest.
type writeCounter struct {
	net.Conn
	writes *atomic.Int64
	hold   *atomic.Pointer[chan struct{}]
}

func (c writeCounter) Write(b []byte) (int, error) {
	c.writes.Add(1)
	if h := c.hold.Load(); h != nil {
		select {
		case <-*h:
		case <-time.After(testTimeout):
		}
	}
	return c.Conn.Write(b)
}

// TestQoS1BurstAckedInOneWrite checks the QoS 1 receive path: the PUBACKs
// of the messages that arrive in one read burst leave in one write, in
// arrival order, and the messages reach the handler in that order.
func TestQoS1BurstAckedInOneWrite(t *testing.T) {
	fb := newFakeBroker(t)
	var writes atomic.Int64
	var hold atomic.Pointer[chan struct{}]
	const n = 64 // the reader batches up to 64 messages
	var handled atomic.Int64
	release := make(chan struct{})
	s := newSink(n)
	dial := fb.dialer()
	c, err := mqtt.NewClient(mqtt.Config{
		ClientID:     clientID(t),
		CleanSession: true,
		OnMessage: func(m *mqtt.Message) {
			s.handle(m)
			if handled.Add(1) == n {
				close(release) // the whole burst was read and queued
			}
		},
		Dialer: func(ctx context.Context) (net.Conn, error) {
			nc, err := dial(ctx)
			if err != nil {
				return nil, err
			}
			return writeCounter{nc, &writes, &hold}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	connected := make(chan error, 1)
	go func() { _, err := c.Connect(ctxT(t)); connected <- err }()
	fc := fb.accept(t)
	if err := <-connected; err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctxT(t))

	var burst []byte
	for i := range n {
		p := &packet.Publish{QoS: packet.QoS1, Topic: []byte("burst"), ID: packet.ID(100 + i), Payload: []byte(strconv.Itoa(i))}
		var err error
		if burst, err = p.AppendBinary(burst); err != nil {
			t.Fatal(err)
		}
	}
	hold.Store(&release)
	before := writes.Load()
	if _, err := fc.c.Write(burst); err != nil { // one write: one read burst
		t.Fatal(err)
	}
	for i := range n {
		p, ok := fc.next().(*packet.Puback)
		if !ok || p.ID != packet.ID(100+i) {
			t.Fatalf("acknowledgement %d: got %v, want PUBACK %d", i, p, 100+i)
		}
	}
	if w := writes.Load() - before; w != 1 {
		t.Fatalf("the client wrote %d times for the PUBACKs of one burst, want 1", w)
	}
	for i := range n {
		if r := s.next(t); r.Payload != strconv.Itoa(i) {
			t.Fatalf("message %d: got %q", i, r.Payload)
		}
	}
}
