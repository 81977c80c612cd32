package mqtt_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

// TestCloseFromStateCallback checks that OnStateChange may call Close: on
// the loss of the connection (reconnection disabled, and enabled) and on
// StateConnected. Close returns, and the callback sees StateClosed last.
func TestCloseFromStateCallback(t *testing.T) {
	for _, tc := range []struct {
		name     string
		on       mqtt.State
		disabled bool
		backoff  time.Duration
	}{
		{"disconnected", mqtt.StateDisconnected, true, time.Millisecond},
		{"reconnecting", mqtt.StateReconnecting, false, time.Millisecond},
		// The reconnection timer has fired when the callback returns.
		{"reconnecting-at-once", mqtt.StateReconnecting, false, time.Nanosecond},
		{"connected", mqtt.StateConnected, false, time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fb := newFakeBroker(t)
			go func() {
				for {
					select {
					case fc := <-fb.conns:
						fc.autoAck()
					case <-time.After(testTimeout):
						return
					}
				}
			}()
			var c *mqtt.Client
			ready := make(chan struct{})
			closed := make(chan error, 1)
			var states stateLog
			cfg := mqtt.Config{
				Dialer:       fb.dialer(),
				ClientID:     clientID(t),
				CleanSession: true,
				Reconnect:    mqtt.Backoff{Disabled: tc.disabled, Min: tc.backoff, Max: tc.backoff},
				OnStateChange: func(from, to mqtt.State, err error) {
					states.record(from, to, err)
					if to != tc.on {
						return
					}
					<-ready
					closed <- c.Close(context.Background())
				},
			}
			rec := &connRecorder{}
			cfg.Dialer = rec.dialer(fb.l.Addr().String())
			var err error
			if c, err = mqtt.NewClient(cfg); err != nil {
				t.Fatal(err)
			}
			close(ready)
			connected := make(chan error, 1)
			go func() { _, err := c.Connect(ctxT(t)); connected <- err }()
			if tc.on != mqtt.StateConnected {
				if err := <-connected; err != nil {
					t.Fatal(err)
				}
				rec.last().Close()
			}
			select {
			case err := <-closed:
				if err != nil {
					t.Fatalf("Close from OnStateChange(%v) = %v", tc.on, err)
				}
			case <-time.After(testTimeout):
				t.Fatalf("Close from OnStateChange(%v) never returned", tc.on)
			}
			// Once the client's goroutines are gone, nothing may have
			// moved the state away from closed.
			noGoroutinesLeft(t, c)
			if c.State() != mqtt.StateClosed || states.last() != mqtt.StateClosed {
				t.Fatalf("state %v, last reported %v", c.State(), states.last())
			}
		})
	}
}

// TestCloseFromHandler checks that a handler may call Close with a context
// that never ends: Close does not wait for the handler calling it.
func TestCloseFromHandler(t *testing.T) {
	fb := newFakeBroker(t)
	var client atomic.Pointer[mqtt.Client]
	closed := make(chan error, 1)
	c, fc := fakeClient(t, fb, mqtt.Config{
		OnMessage: func(*mqtt.Message) { closed <- client.Load().Close(context.Background()) },
	})
	client.Store(c)
	fc.send(&packet.Publish{Topic: []byte("stop")})
	if p := fc.next(); p.Type() != packet.TypeDisconnect {
		t.Fatalf("got %s, want DISCONNECT", p.Type())
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close from a handler = %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Close from a handler never returned")
	}
	if s := c.State(); s != mqtt.StateClosed {
		t.Fatalf("state %v", s)
	}
}

// TestCloseAbortsConnect checks that Close ends a Connect still waiting for
// its CONNACK (instead of leaving it to Config.ConnectTimeout) and that the
// Connect then reports ErrClosed.
func TestCloseAbortsConnect(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if nc, err := l.Accept(); err == nil {
			accepted <- nc // read nothing, answer nothing
		}
	}()
	c, err := mqtt.NewClient(mqtt.Config{
		Dialer:         tcpDialer(l.Addr().String()),
		ClientID:       clientID(t),
		ConnectTimeout: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	connected := make(chan error, 1)
	go func() { _, err := c.Connect(context.Background()); connected <- err }()
	select {
	case nc := <-accepted:
		defer nc.Close()
	case <-time.After(testTimeout):
		t.Fatal("no connection")
	}
	if err := c.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-connected:
		if !errors.Is(err, mqtt.ErrClosed) {
			t.Fatalf("Connect = %v, want ErrClosed", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Connect still waiting after Close")
	}
}

// clientGoroutines returns the stacks of goroutines running methods of c
// (its pointer is the receiver in their frames).
func clientGoroutines(c *mqtt.Client) []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, line := range strings.Split(g, "\n") {
			if i := strings.Index(line, "mqtt.(*Client)."); i >= 0 && strings.Contains(line, fmt.Sprintf("%p", c)) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// noGoroutinesLeft fails when goroutines of c outlive Close (bounded wait:
// a goroutine that signalled its end may still be returning).
func noGoroutinesLeft(t *testing.T, c *mqtt.Client) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		left := clientGoroutines(c)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after Close:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNoGoroutinesAfterClose checks that Close leaves none of the client's
// goroutines behind: connected with the delivery goroutine running, while
// reconnecting to a broker that is gone, and when Close gives up on
// unacknowledged publishes.
func TestNoGoroutinesAfterClose(t *testing.T) {
	t.Run("connected", func(t *testing.T) {
		fb := newFakeBroker(t)
		s := newSink(4)
		c, fc := fakeClient(t, fb, mqtt.Config{OnMessage: s.handle})
		fc.autoAck()
		if err := c.Publish(ctxT(t), &mqtt.Message{Topic: []byte("g"), QoS: packet.QoS1}); err != nil {
			t.Fatal(err)
		}
		fc.send(&packet.Publish{Topic: []byte("in")})
		s.next(t)
		if n := len(clientGoroutines(c)); n < 3 {
			t.Fatalf("found %d goroutines of the client, want reader, writer and delivery", n)
		}
		if err := c.Close(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		noGoroutinesLeft(t, c)
	})
	t.Run("reconnecting", func(t *testing.T) {
		fb := newFakeBroker(t)
		c, fc := fakeClient(t, fb, mqtt.Config{})
		fb.l.Close()
		fc.c.Close()
		deadline := time.Now().Add(testTimeout)
		for c.State() != mqtt.StateReconnecting {
			if time.Now().After(deadline) {
				t.Fatalf("state %v", c.State())
			}
			time.Sleep(time.Millisecond)
		}
		if err := c.Close(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		noGoroutinesLeft(t, c)
	})
	t.Run("unacknowledged", func(t *testing.T) {
		fb := newFakeBroker(t)
		c, fc := fakeClient(t, fb, mqtt.Config{})
		if err := c.PublishAsync(ctxT(t), &mqtt.Message{Topic: []byte("g"), QoS: packet.QoS2}, nil); err != nil {
			t.Fatal(err)
		}
		fc.publish()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := c.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v, want DeadlineExceeded", err)
		}
		noGoroutinesLeft(t, c)
	})
}

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

// TestKeepAliveOnTheWire checks the keep-alive sent in CONNECT: whole
// seconds, rounded down, but never 0 (which would turn the broker's
// keep-alive off) for a positive Config.KeepAlive.
func TestKeepAliveOnTheWire(t *testing.T) {
	for _, tc := range []struct {
		ka   time.Duration
		want uint16
	}{
		{300 * time.Millisecond, 1},
		{2700 * time.Millisecond, 2},
		{-1, 0},
		{0, 60},
	} {
		fb := newFakeBroker(t)
		_, fc := fakeClient(t, fb, mqtt.Config{KeepAlive: tc.ka})
		if got := fc.connect.KeepAlive; got != tc.want {
			t.Errorf("KeepAlive %v: CONNECT says %d s, want %d", tc.ka, got, tc.want)
		}
	}
}

// TestAfterClose checks that every call on a closed client fails with
// ErrClosed, and that the state stays StateClosed.
func TestAfterClose(t *testing.T) {
	fb := newFakeBroker(t)
	c, fc := fakeClient(t, fb, mqtt.Config{})
	fc.autoAck()
	ctx := ctxT(t)
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	calls := map[string]error{
		"Close twice": c.Close(ctx),
		"Publish 0":   c.Publish(ctx, &mqtt.Message{Topic: []byte("x")}),
		"Publish 1":   c.Publish(ctx, &mqtt.Message{Topic: []byte("x"), QoS: packet.QoS1}),
		"Publish 2":   c.PublishAsync(ctx, &mqtt.Message{Topic: []byte("x"), QoS: packet.QoS2}, nil),
		"Unsubscribe": c.Unsubscribe(ctx, "x"),
	}
	_, calls["Subscribe"] = c.Subscribe(ctx, mqtt.Subscription{Filter: "x"})
	_, calls["Connect"] = c.Connect(ctx)
	for name, err := range calls {
		if !errors.Is(err, mqtt.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if s := c.State(); s != mqtt.StateClosed {
		t.Fatalf("state %v", s)
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

// TestPingsWhileHandlersStalled checks that keep-alive goes on while the
// reader is stopped by a full handler queue: the PINGRESP cannot be read,
// yet the client keeps sending PINGREQs (otherwise the broker drops it
// after 1.5 keep-alive periods) and does not declare the connection dead.
func TestPingsWhileHandlersStalled(t *testing.T) {
	fb := newFakeBroker(t)
	release := make(chan struct{})
	defer close(release)
	var states stateLog
	_, fc := fakeClient(t, fb, mqtt.Config{
		KeepAlive:     time.Second,
		PingTimeout:   200 * time.Millisecond,
		HandlerQueue:  1,
		OnMessage:     func(*mqtt.Message) { <-release },
		OnStateChange: states.record,
	})
	// One message in the handler, one queued, one holding the reader.
	for range 3 {
		fc.send(&packet.Publish{Topic: []byte("stall")})
	}
	for i := range 2 {
		_ = fc.c.SetReadDeadline(time.Now().Add(testTimeout))
		f, err := fc.r.Next()
		if err != nil {
			t.Fatalf("after %d PINGREQs: %v", i, err)
		}
		if f.Type() != packet.TypePingreq {
			t.Fatalf("got %s, want PINGREQ", f.Type())
		}
		fc.send(&packet.Pingresp{}) // not read by the stalled client
	}
	if n := states.count(mqtt.StateReconnecting); n != 0 {
		t.Fatalf("reconnected %d times while stalled", n)
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

// TestCloseFromHandlerWithStalledReader checks that a handler may call Close
// while publishes await acknowledgements that the reader cannot read, being
// stopped by the full handler queue that this very handler should drain:
// Close stops waiting for them instead of waiting for ever.
func TestCloseFromHandlerWithStalledReader(t *testing.T) {
	fb := newFakeBroker(t)
	var client atomic.Pointer[mqtt.Client]
	published := make(chan struct{})
	proceed := make(chan struct{})
	closed := make(chan error, 1)
	res := newResultLog()
	var first atomic.Bool
	c, fc := fakeClient(t, fb, mqtt.Config{
		HandlerQueue: 1,
		OnMessage: func(*mqtt.Message) {
			if !first.CompareAndSwap(false, true) {
				return
			}
			c := client.Load()
			if err := c.PublishAsync(context.Background(), &mqtt.Message{Topic: []byte("out"), QoS: packet.QoS1}, res.done); err != nil {
				closed <- err
				return
			}
			close(published)
			<-proceed
			closed <- c.Close(context.Background())
		},
	})
	client.Store(c)
	fc.send(&packet.Publish{Topic: []byte("in")})
	<-published
	out := fc.publish()
	// One message queued, one holding the reader, then the PUBACK behind them.
	fc.send(&packet.Publish{Topic: []byte("in")})
	fc.send(&packet.Publish{Topic: []byte("in")})
	fc.send(&packet.Puback{ID: out.ID})
	close(proceed)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close from the handler = %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Close from a handler, with the reader stalled, never returned")
	}
	// The PUBACK may still be read once Close released the reader.
	if errs := res.wait(t, 1); errs[0] != nil && !errors.Is(errs[0], mqtt.ErrClosed) {
		t.Fatalf("publish completed with %v", errs[0])
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
	if d := cmp.Diff([]entry{{p2.ID, packet.TypePubrel}, {p1.ID, packet.TypePublish}}, contents()); d != "" {
		t.Fatalf("store after PUBREC (-want +got):\n%s", d)
	}
	fc.send(&packet.Puback{ID: p1.ID})
	fc.send(&packet.Pubcomp{ID: p2.ID})
	for _, err := range res.wait(t, 2) {
		if err != nil {
			t.Fatal(err)
		}
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
