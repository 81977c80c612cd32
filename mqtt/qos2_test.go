package mqtt_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// TestIncomingQoS2ResumeAckAfterHandler checks incoming exactly-once across
// a reconnect with the session resumed, when the PUBREC waits for the
// handler (Config.AckAfterHandler): the broker re-sends the PUBLISH (DUP) on
// the new connection while the handler still runs; it is not delivered
// again, and the PUBREC goes out on the new connection once the handler
// returns.
func TestIncomingQoS2ResumeAckAfterHandler(t *testing.T) {
	fb := newFakeBroker(t)
	fb.sessionPresent.Store(true)
	release := make(chan struct{})
	got := make(chan string, 8)
	c, fc := fakeClient(t, fb, mqtt.Config{
		AckAfterHandler: true,
		OnMessage: func(m *mqtt.Message) {
			got <- string(m.Payload)
			if string(m.Payload) == "once" {
				<-release
			}
		},
	})
	pub := &packet.Publish{QoS: packet.QoS2, Topic: []byte("q2"), ID: 7, Payload: []byte("once")}
	fc.send(pub)
	if p := <-got; p != "once" {
		t.Fatalf("got %q", p)
	}
	fc.c.Close() // lost before the handler returned: no PUBREC yet

	fc2 := fb.accept(t)
	// One of our own QoS 2 publishes, to learn when the client has read
	// the re-sent PUBLISH: its PUBREC is sent after it, and the client's
	// PUBREL proves both were read.
	if err := c.PublishAsync(ctxT(t), &mqtt.Message{Topic: []byte("out"), QoS: packet.QoS2}, nil); err != nil {
		t.Fatal(err)
	}
	out := fc2.publish()
	pub.Dup = true
	fc2.send(pub)
	fc2.send(&packet.Pubrec{ID: out.ID})
	if p, ok := fc2.next().(*packet.Pubrel); !ok || p.ID != out.ID {
		t.Fatalf("got %v, want PUBREL %d", p, out.ID)
	}
	fc2.send(&packet.Pubcomp{ID: out.ID})
	close(release)
	// A later QoS 1 message: its PUBACK follows the PUBREC in arrival order.
	fc2.send(&packet.Publish{QoS: packet.QoS1, Topic: []byte("q1"), ID: 8, Payload: []byte("next")})
	if p := fc2.next(); wireOf(p) != (wireMsg{Type: packet.TypePubrec}) || p.(*packet.Pubrec).ID != 7 {
		t.Fatalf("got %s, want PUBREC 7 on the resumed session", p.Type())
	}
	if p, ok := fc2.next().(*packet.Puback); !ok || p.ID != 8 {
		t.Fatalf("got %v, want PUBACK 8", p)
	}
	if p := <-got; p != "next" {
		t.Fatalf("delivered %q, want next (the re-sent QoS 2 message only once)", p)
	}
	fc2.send(&packet.Pubrel{ID: 7})
	if p, ok := fc2.next().(*packet.Pubcomp); !ok || p.ID != 7 {
		t.Fatalf("got %v, want PUBCOMP 7", p)
	}
}

// TestIncomingQoS2AcrossReconnect checks incoming exactly-once when the
// connection drops after our PUBREC: a resumed session's re-sent PUBLISH
// (DUP) is acknowledged again but not delivered again, while after a
// reconnect without a session the same id is a new message.
func TestIncomingQoS2AcrossReconnect(t *testing.T) {
	for _, session := range []bool{true, false} {
		t.Run(fmt.Sprintf("session=%v", session), func(t *testing.T) {
			fb := newFakeBroker(t)
			fb.sessionPresent.Store(session)
			s := newSink(8)
			_, fc := fakeClient(t, fb, mqtt.Config{OnMessage: s.handle})
			pub := &packet.Publish{QoS: packet.QoS2, Topic: []byte("q2"), ID: 9, Payload: []byte("a")}
			fc.send(pub)
			if p, ok := fc.next().(*packet.Pubrec); !ok || p.ID != 9 {
				t.Fatal("want PUBREC 9")
			}
			if r := s.next(t); r.Payload != "a" {
				t.Fatalf("got %+v", r)
			}
			fc.c.Close()

			fc2 := fb.accept(t)
			pub.Dup = true
			fc2.send(pub)
			if p, ok := fc2.next().(*packet.Pubrec); !ok || p.ID != 9 {
				t.Fatal("want PUBREC 9 on the new connection")
			}
			fc2.send(&packet.Pubrel{ID: 9})
			if p, ok := fc2.next().(*packet.Pubcomp); !ok || p.ID != 9 {
				t.Fatal("want PUBCOMP 9")
			}
			if session {
				s.none(t, 50*time.Millisecond)
			} else if r := s.next(t); r.Payload != "a" || !r.Dup {
				t.Fatalf("got %+v, want the message as new to this session", r)
			}
		})
	}
}
