package mqtt_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// TestPacketIDsExhausted checks that when every packet id is taken by an
// unacknowledged packet (a 65,535 window, full) a Subscribe fails with
// ErrInFlightFull instead of searching for a free id for ever while holding
// the client's lock.
func TestPacketIDsExhausted(t *testing.T) {
	fb := newFakeBroker(t)
	c, fc := fakeClient(t, fb, mqtt.Config{InFlight: 65535, FailWhenFull: true})
	go func() { _, _ = io.Copy(io.Discard, fc.c) }() // read, never acknowledge
	ctx := ctxT(t)
	m := &mqtt.Message{Topic: []byte("ids"), QoS: packet.QoS1}
	for i := range 65535 {
		if err := c.PublishAsync(ctx, m, nil); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if err := c.PublishAsync(ctx, m, nil); !errors.Is(err, mqtt.ErrInFlightFull) {
		t.Fatalf("publish into the full window = %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Subscribe(ctx, mqtt.Subscription{Filter: "f"})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, mqtt.ErrInFlightFull) {
			t.Fatalf("Subscribe with no free packet id = %v, want ErrInFlightFull", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Subscribe with no free packet id never returned")
	}
	if err := c.Unsubscribe(ctx, "f"); !errors.Is(err, mqtt.ErrInFlightFull) {
		t.Fatalf("Unsubscribe with no free packet id = %v, want ErrInFlightFull", err)
	}
}

// TestConnectFromStateCallback checks that with automatic reconnection off
// OnStateChange may reconnect by calling Connect when it sees
// StateDisconnected (a nested state report used to deadlock).
func TestConnectFromStateCallback(t *testing.T) {
	fb := newFakeBroker(t)
	var client atomic.Pointer[mqtt.Client]
	reconnected := make(chan error, 1)
	var once atomic.Bool
	var states stateLog
	c, fc := fakeClient(t, fb, mqtt.Config{
		Reconnect: mqtt.Backoff{Disabled: true},
		OnStateChange: func(from, to mqtt.State, err error) {
			states.record(from, to, err)
			if to == mqtt.StateDisconnected && once.CompareAndSwap(false, true) {
				_, err := client.Load().Connect(ctxT(t))
				reconnected <- err
			}
		},
	})
	client.Store(c)
	fc.c.Close()
	fb.accept(t)
	select {
	case err := <-reconnected:
		if err != nil {
			t.Fatalf("Connect from OnStateChange: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Connect from OnStateChange never returned")
	}
	deadline := time.Now().Add(testTimeout)
	for c.State() != mqtt.StateConnected || states.last() != mqtt.StateConnected {
		if time.Now().After(deadline) {
			t.Fatalf("state %v, last reported %v", c.State(), states.last())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestInvalidInputNoPanic checks that bad arguments give ErrInvalidMessage
// rather than a panic: a nil message, an over-long topic, an over-long
// filter.
func TestInvalidInputNoPanic(t *testing.T) {
	fb := newFakeBroker(t)
	c, _ := fakeClient(t, fb, mqtt.Config{})
	ctx := ctxT(t)
	long := strings.Repeat("x", 70000)
	for name, err := range map[string]error{
		"Publish(nil)":      c.Publish(ctx, nil),
		"PublishAsync(nil)": c.PublishAsync(ctx, nil, nil),
		"long topic QoS 0":  c.Publish(ctx, &mqtt.Message{Topic: []byte(long)}),
		"long topic QoS 1":  c.PublishAsync(ctx, &mqtt.Message{Topic: []byte(long), QoS: packet.QoS1}, nil),
		"long filter":       c.Unsubscribe(ctx, long),
	} {
		if !errors.Is(err, mqtt.ErrInvalidMessage) {
			t.Errorf("%s = %v, want ErrInvalidMessage", name, err)
		}
	}
	if _, err := c.Subscribe(ctx, mqtt.Subscription{Filter: long}); !errors.Is(err, mqtt.ErrInvalidMessage) {
		t.Errorf("Subscribe long filter = %v, want ErrInvalidMessage", err)
	}
	if c.InFlight() != 0 {
		t.Fatalf("rejected publishes hold %d window slots", c.InFlight())
	}
}

// TestStoreFollowsAcks checks what the Store holds through a QoS 1 and a
// QoS 2 exchange: the PUBLISH until its PUBACK; the PUBLISH until PUBREC,
// then only the PUBREL (in the PUBLISH's place) until PUBCOMP.
func TestStoreFollowsAcks(t *testing.T) {
	fb := newFakeBroker(t)
	store := mqtt.NewMemoryStore()
	c, fc := fakeClient(t, fb, mqtt.Config{Store: store})
	ctx := ctxT(t)
	res := newResultLog()
	for _, q := range []packet.QoS{packet.QoS2, packet.QoS1} {
		if err := c.PublishAsync(ctx, &mqtt.Message{Topic: []byte("s"), QoS: q}, res.done); err != nil {
			t.Fatal(err)
		}
	}
	p2, p1 := fc.publish(), fc.publish()
	type entry struct {
		ID   packet.ID
		Type packet.Type
	}
	contents := func() []entry {
		var out []entry
		_ = store.Range(func(id packet.ID, pkt []byte) bool {
			out = append(out, entry{id, packet.Type(pkt[0] >> 4)})
			return true
		})
		return out
	}
	if d := cmp.Diff([]entry{{p2.ID, packet.TypePublish}, {p1.ID, packet.TypePublish}}, contents()); d != "" {
		t.Fatalf("store before acks (-want +got):\n%s", d)
	}
	fc.send(&packet.Pubrec{ID: p2.ID})
	if rel, ok := fc.next().(*packet.Pubrel); !ok || rel.ID != p2.ID {
		t.Fatal("want PUBREL")
	}
	// The Store is written off the client's lock, after the PUBREL left:
	// wait (bounded) for it to catch up.
	eventually := func(want []entry) string {
		deadline := time.Now().Add(testTimeout)
		for {
			d := cmp.Diff(want, contents())
			if d == "" || time.Now().After(deadline) {
				return d
			}
			time.Sleep(time.Millisecond)
		}
	}
	if d := eventually([]entry{{p2.ID, packet.TypePubrel}, {p1.ID, packet.TypePublish}}); d != "" {
		t.Fatalf("store after PUBREC (-want +got):\n%s", d)
	}
	fc.send(&packet.Puback{ID: p1.ID})
	fc.send(&packet.Pubcomp{ID: p2.ID})
	for _, err := range res.wait(t, 2) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if d := eventually(nil); d != "" {
		t.Fatalf("store after PUBACK and PUBCOMP (-want +got):\n%s", d)
	}
	if n := store.Len(); n != 0 {
		t.Fatalf("store holds %d packets after PUBACK and PUBCOMP", n)
	}
}

// TestMalformedFromBrokerIsProtocolError checks that a malformed packet
// from the broker drops the connection with an error matching ErrProtocol
// and carrying package packet's *DecodeError with the rule it breaks: every
// byte from the broker is decoded by package packet.
func TestMalformedFromBrokerIsProtocolError(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  []byte
		rule string
	}{
		{"PUBLISH with packet id 0", []byte{0x32, 5, 0, 1, 't', 0, 0}, "MQTT-2.3.1-1"},
		{"SUBACK without codes", []byte{0x90, 2, 0, 1}, "MQTT-3.8.4-5"},
		{"SUBACK with code 3", []byte{0x90, 3, 0, 1, 3}, "MQTT-3.9.3-2"},
		{"PUBACK too long", []byte{0x40, 3, 0, 1, 0}, "MQTT-2.3.1"},
		{"PUBACK with flags", []byte{0x41, 2, 0, 1}, "MQTT-2.2.2-2"},
		{"PUBREC with packet id 0", []byte{0x50, 2, 0, 0}, "MQTT-2.3.1-1"},
		{"PUBCOMP too short", []byte{0x70, 1, 0}, "MQTT-2.3.1"},
		{"PUBREL without its flags", []byte{0x60, 2, 0, 1}, "MQTT-2.2.2-2"},
		{"UNSUBACK too long", []byte{0xb0, 4, 0, 1, 0, 0}, "MQTT-2.3.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fb := newFakeBroker(t)
			causes := make(chan error, 4)
			_, fc := fakeClient(t, fb, mqtt.Config{
				OnStateChange: func(_, to mqtt.State, err error) {
					if to == mqtt.StateReconnecting {
						causes <- err
					}
				},
			})
			if _, err := fc.c.Write(tc.raw); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-causes:
				if !errors.Is(err, mqtt.ErrProtocol) {
					t.Fatalf("connection dropped with %v, want ErrProtocol", err)
				}
				var de *packet.DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("connection dropped with %v, want a *packet.DecodeError inside", err)
				}
				if de.Rule != tc.rule {
					t.Fatalf("DecodeError %v has rule %q, want %q", de, de.Rule, tc.rule)
				}
			case <-time.After(testTimeout):
				t.Fatal("malformed packet did not drop the connection")
			}
		})
	}
}

// attemptLog records the attempt numbers of the client's "mqtt:
// reconnecting" debug records.
type attemptLog struct {
	ch chan int64
}

func (l *attemptLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *attemptLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *attemptLog) WithGroup(string) slog.Handler            { return l }
func (l *attemptLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "mqtt: reconnecting" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "attempt" {
			select {
			case l.ch <- a.Value.Int64():
			default:
			}
		}
		return true
	})
	return nil
}

// TestBackoffNotResetByShortConnection checks that a broker that accepts
// the connection and drops it at once (a duplicate client id, throttling)
// does not reset the backoff: each reconnection counts as a further
// attempt instead of starting again from the shortest wait.
func TestBackoffNotResetByShortConnection(t *testing.T) {
	fb := newFakeBroker(t)
	log := &attemptLog{ch: make(chan int64, 16)}
	_, fc := fakeClient(t, fb, mqtt.Config{
		Logger:    slog.New(log),
		Reconnect: mqtt.Backoff{Min: time.Millisecond, Max: time.Hour},
	})
	fc.c.Close()
	for want := int64(1); want <= 4; want++ {
		select {
		case got := <-log.ch:
			if got != want {
				t.Fatalf("reconnection %d counted as attempt %d", want, got)
			}
		case <-time.After(testTimeout):
			t.Fatalf("no reconnection %d", want)
		}
		fb.accept(t).c.Close() // accepted, then dropped at once
	}
}
