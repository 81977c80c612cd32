package mqtt_test

import (
	"context"
	"testing"
	"time"

	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// TestNothingAfterDisconnect checks [MQTT-3.14.4-1]: once Close has queued
// DISCONNECT the client sends no further packet on that connection, and a
// received QoS 1 message that Close dropped before its handler saw it is not
// acknowledged (the broker must send it again).
func TestNothingAfterDisconnect(t *testing.T) {
	fb := newFakeBroker(t)
	release := make(chan struct{})
	c, fc := fakeClient(t, fb, mqtt.Config{
		HandlerQueue: 1,
		OnMessage:    func(*mqtt.Message) { <-release },
	})
	// Message 1 blocks the handler, message 2 fills the queue: both are
	// acknowledged. Message 3 stops the reader in front of the full queue.
	for id := packet.ID(1); id <= 2; id++ {
		fc.send(&packet.Publish{QoS: packet.QoS1, Topic: []byte("bp"), ID: id})
		if p, ok := fc.next().(*packet.Puback); !ok || p.ID != id {
			t.Fatalf("want PUBACK %d", id)
		}
	}
	fc.send(&packet.Publish{QoS: packet.QoS1, Topic: []byte("bp"), ID: 3})

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- c.Close(ctx) }()
	if p := fc.next(); p.Type() != packet.TypeDisconnect {
		t.Fatalf("got %s, want DISCONNECT", p.Type())
	}
	_ = fc.c.SetReadDeadline(time.Now().Add(testTimeout))
	// The connection ends (EOF, or a reset when the client closed with
	// the third message unread): no packet may come first.
	if p, err := fc.r.ReadPacket(); err == nil {
		t.Fatalf("client sent %s after DISCONNECT", p.Type())
	}
	close(release)
	select {
	case <-closed:
	case <-time.After(testTimeout):
		t.Fatal("Close did not return")
	}
}
