package mqtt_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
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
			waitDone(t, c)
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
		hold := make(chan struct{})
		// The handler holds the delivery goroutine (which otherwise
		// returns once the queue is empty, as the writer does).
		c, fc := fakeClient(t, fb, mqtt.Config{OnMessage: func(m *mqtt.Message) { s.handle(m); <-hold }})
		fc.autoAck()
		if err := c.Publish(ctxT(t), &mqtt.Message{Topic: []byte("g"), QoS: packet.QoS1}); err != nil {
			t.Fatal(err)
		}
		fc.send(&packet.Publish{Topic: []byte("in")})
		s.next(t)
		if n := len(clientGoroutines(c)); n < 2 {
			t.Fatalf("found %d goroutines of the client, want reader and delivery", n)
		}
		closed := make(chan error, 1)
		go func() { closed <- c.Close(ctxT(t)) }()
		close(hold)
		if err := <-closed; err != nil {
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

// waitDone waits, bounded, for c.Done.
func waitDone(t *testing.T, c *mqtt.Client) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(testTimeout):
		t.Fatal("Done not closed")
	}
}

// TestCloseFromHandlerReturnsAndDone checks the ownership of a Close called
// from a handler: it starts the shutdown and returns while the handler still
// runs; Done stays open until the handler (and every other goroutine of the
// client) has returned, and is closed then.
func TestCloseFromHandlerReturnsAndDone(t *testing.T) {
	fb := newFakeBroker(t)
	var client atomic.Pointer[mqtt.Client]
	closed := make(chan error, 1)
	release := make(chan struct{})
	c, fc := fakeClient(t, fb, mqtt.Config{
		OnMessage: func(*mqtt.Message) {
			closed <- client.Load().Close(context.Background())
			<-release
		},
	})
	client.Store(c)
	fc.send(&packet.Publish{Topic: []byte("stop")})
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close from a handler = %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Close from a handler never returned")
	}
	if p := fc.next(); p.Type() != packet.TypeDisconnect {
		t.Fatalf("got %s, want DISCONNECT", p.Type())
	}
	select {
	case <-c.Done():
		t.Fatal("Done closed while a handler still runs")
	default:
	}
	close(release)
	waitDone(t, c)
	noGoroutinesLeft(t, c)
}

// TestCloseWaitsForDrain checks that Close (not from a callback) waits for
// the in-flight window to drain before it sends DISCONNECT, and that the
// publish then completes successfully.
func TestCloseWaitsForDrain(t *testing.T) {
	fb := newFakeBroker(t)
	c, fc := fakeClient(t, fb, mqtt.Config{})
	res := newResultLog()
	for range 2 {
		if err := c.PublishAsync(ctxT(t), &mqtt.Message{Topic: []byte("d"), QoS: packet.QoS1}, res.done); err != nil {
			t.Fatal(err)
		}
	}
	p1, p2 := fc.publish(), fc.publish()
	closed := make(chan error, 1)
	go func() { closed <- c.Close(ctxT(t)) }()
	fc.send(&packet.Puback{ID: p1.ID})
	// One publish is still unacknowledged: nothing may follow yet.
	_ = fc.c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if p, err := fc.r.ReadPacket(); err == nil {
		t.Fatalf("client sent %s with a publish unacknowledged", p.Type())
	}
	fc.send(&packet.Puback{ID: p2.ID})
	if p := fc.next(); p.Type() != packet.TypeDisconnect {
		t.Fatalf("got %s, want DISCONNECT", p.Type())
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close = %v", err)
	}
	for i, err := range res.wait(t, 2) {
		if err != nil {
			t.Fatalf("publish %d completed with %v, want nil", i, err)
		}
	}
	waitDone(t, c)
}
