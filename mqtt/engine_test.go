package mqtt_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// resultLog collects PublishAsync completions.
type resultLog struct {
	mu   sync.Mutex
	errs []error
	ch   chan struct{}
}

func newResultLog() *resultLog { return &resultLog{ch: make(chan struct{}, 1000)} }

func (l *resultLog) done(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
	l.ch <- struct{}{}
}

func (l *resultLog) wait(t *testing.T, n int) []error {
	t.Helper()
	for range n {
		select {
		case <-l.ch:
		case <-time.After(testTimeout):
			t.Fatalf("only %d of %d publishes completed", len(l.errs), n)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

type wireMsg struct {
	Type  packet.Type
	ID    packet.ID
	Dup   bool
	Topic string
}

func wireOf(p packet.Packet) wireMsg {
	switch p := p.(type) {
	case *packet.Publish:
		return wireMsg{Type: packet.TypePublish, ID: p.ID, Dup: p.Dup, Topic: string(p.Topic)}
	case *packet.Pubrel:
		return wireMsg{Type: packet.TypePubrel, ID: p.ID}
	case *packet.Subscribe:
		return wireMsg{Type: packet.TypeSubscribe, Topic: string(p.Filters[0].Filter)}
	}
	return wireMsg{Type: p.Type()}
}

// TestResendOnSessionResume checks [MQTT-4.4.0-1]: after a reconnect with a
// session present, unacknowledged PUBLISH packets are resent with DUP set
// and a QoS 2 message already PUBREC'd is resent as PUBREL, in the original
// order, with the original packet ids.
func TestResendOnSessionResume(t *testing.T) {
	for _, session := range []bool{true, false} {
		t.Run(fmt.Sprintf("session=%v", session), func(t *testing.T) {
			fb := newFakeBroker(t)
			fb.sessionPresent.Store(session)
			c, fc := fakeClient(t, fb, mqtt.Config{ClientID: clientID(t)})
			ctx := ctxT(t)
			res := newResultLog()
			// A subscription, to be restored when there is no session.
			go func() { _, _ = c.Subscribe(ctx, mqtt.Subscription{Filter: "sub/#", QoS: packet.QoS1}) }()
			sub := fc.next().(*packet.Subscribe)
			fc.send(&packet.Suback{ID: sub.ID, ReturnCodes: []byte{1}})

			for i, q := range []packet.QoS{packet.QoS1, packet.QoS2, packet.QoS1, packet.QoS2} {
				if err := c.PublishAsync(ctx, &mqtt.Message{Topic: []byte(fmt.Sprintf("t/%d", i)), QoS: q}, res.done); err != nil {
					t.Fatal(err)
				}
			}
			var first []*packet.Publish
			for range 4 {
				first = append(first, fc.publish())
			}
			// Message 1 (QoS 2) gets its PUBREC: the client must answer PUBREL.
			fc.send(&packet.Pubrec{ID: first[1].ID})
			if rel, ok := fc.next().(*packet.Pubrel); !ok || rel.ID != first[1].ID {
				t.Fatalf("want PUBREL %d", first[1].ID)
			}
			fc.c.Close() // drop the connection with nothing else acknowledged

			fc2 := fb.accept(t)
			var want []wireMsg
			if !session {
				want = append(want, wireMsg{Type: packet.TypeSubscribe, Topic: "sub/#"})
			}
			for i, p := range first {
				switch {
				case i == 1 && session:
					want = append(want, wireMsg{Type: packet.TypePubrel, ID: p.ID})
				case i == 1:
					// No session: the broker that PUBREC'd it is gone; done.
				default:
					want = append(want, wireMsg{Type: packet.TypePublish, ID: p.ID, Dup: session, Topic: string(p.Topic)})
				}
			}
			var got []wireMsg
			for range want {
				got = append(got, wireOf(fc2.next()))
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("resent packets (-want +got):\n%s", d)
			}
			// Acknowledge what was read; autoAck answers what follows.
			for _, w := range got {
				switch {
				case w.Type == packet.TypePubrel:
					fc2.send(&packet.Pubcomp{ID: w.ID})
				case w.Type == packet.TypePublish && w.Topic == "t/3":
					fc2.send(&packet.Pubrec{ID: w.ID})
				case w.Type == packet.TypePublish:
					fc2.send(&packet.Puback{ID: w.ID})
				}
			}
			fc2.autoAck()
			errs := res.wait(t, 4)
			for _, err := range errs {
				if err != nil {
					t.Fatalf("publish completed with %v", err)
				}
			}
		})
	}
}

// TestPacketIDsUnique checks that no two unacknowledged packets share an id
// while ids wrap around, and that the window bounds what is in flight.
func TestPacketIDsUnique(t *testing.T) {
	fb := newFakeBroker(t)
	const window, n = 50, 70000
	c, fc := fakeClient(t, fb, mqtt.Config{InFlight: window})
	ctx := ctxT(t)
	errc := make(chan error, 1)
	go func() {
		msg := &mqtt.Message{Topic: []byte("ids"), QoS: packet.QoS1}
		for range n {
			if err := c.PublishAsync(ctx, msg, nil); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	inflight := map[packet.ID]bool{}
	var order []packet.ID
	for i := range n {
		p := fc.publish()
		if inflight[p.ID] {
			t.Fatalf("message %d reuses in-flight id %d", i, p.ID)
		}
		inflight[p.ID] = true
		order = append(order, p.ID)
		if len(inflight) > window {
			t.Fatalf("%d in flight, window %d", len(inflight), window)
		}
		// Acknowledge out of order: every other time the newest, else the oldest.
		if len(inflight) == window || i == n-1 {
			for len(order) > 0 {
				var id packet.ID
				if len(order)%2 == 0 {
					id, order = order[len(order)-1], order[:len(order)-1]
				} else {
					id, order = order[0], order[1:]
				}
				delete(inflight, id)
				fc.send(&packet.Puback{ID: id})
				if len(order) < window/2 && i != n-1 {
					break
				}
			}
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestFailWhenFull(t *testing.T) {
	fb := newFakeBroker(t)
	c, fc := fakeClient(t, fb, mqtt.Config{InFlight: 2, FailWhenFull: true})
	ctx := ctxT(t)
	msg := &mqtt.Message{Topic: []byte("full"), QoS: packet.QoS1}
	for range 2 {
		if err := c.PublishAsync(ctx, msg, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.PublishAsync(ctx, msg, nil); !errors.Is(err, mqtt.ErrInFlightFull) {
		t.Fatalf("third publish = %v, want ErrInFlightFull", err)
	}
	p := fc.publish()
	fc.send(&packet.Puback{ID: p.ID})
	// The slot frees once the PUBACK is processed.
	deadline := time.Now().Add(testTimeout)
	for c.PublishAsync(ctx, msg, nil) != nil {
		if time.Now().After(deadline) {
			t.Fatal("slot never freed")
		}
		time.Sleep(time.Millisecond)
	}
	// Without FailWhenFull, Publish waits and gives up with its context.
	c2, _ := fakeClient(t, fb, mqtt.Config{InFlight: 1})
	if err := c2.PublishAsync(ctx, msg, nil); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := c2.Publish(short, msg); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish into a full window = %v, want DeadlineExceeded", err)
	}
}

func TestPingTimeoutReconnects(t *testing.T) {
	fb := newFakeBroker(t)
	var causes sync.Map
	c, fc := fakeClient(t, fb, mqtt.Config{
		KeepAlive:   time.Second,
		PingTimeout: 200 * time.Millisecond,
		OnStateChange: func(_, to mqtt.State, err error) {
			if to == mqtt.StateReconnecting && err != nil {
				causes.Store(err, true)
			}
		},
	})
	_ = c
	// Read the PINGREQ but never answer it.
	_ = fc.c.SetReadDeadline(time.Now().Add(testTimeout))
	f, err := fc.r.Next()
	if err != nil || f.Type() != packet.TypePingreq {
		t.Fatalf("want PINGREQ, got %v %v", f, err)
	}
	fb.accept(t) // the client declared the connection dead and reconnected
	found := false
	causes.Range(func(k, _ any) bool {
		found = found || errors.Is(k.(error), mqtt.ErrPingTimeout)
		return true
	})
	if !found {
		t.Fatal("reconnect cause is not ErrPingTimeout")
	}
}

// TestIncomingQoS2Once checks that a re-sent QoS 2 PUBLISH (same id, before
// PUBREL) is acknowledged but delivered once [MQTT-4.3.3-2], and that
// acknowledgements of incoming messages keep arrival order.
func TestIncomingQoS2Once(t *testing.T) {
	fb := newFakeBroker(t)
	s := newSink(16)
	_, fc := fakeClient(t, fb, mqtt.Config{OnMessage: s.handle})
	pub := &packet.Publish{QoS: packet.QoS2, Topic: []byte("q2"), ID: 5, Payload: []byte("a")}
	fc.send(pub)
	if p, ok := fc.next().(*packet.Pubrec); !ok || p.ID != 5 {
		t.Fatal("want PUBREC 5")
	}
	pub.Dup = true
	fc.send(pub)
	if p, ok := fc.next().(*packet.Pubrec); !ok || p.ID != 5 {
		t.Fatal("want PUBREC 5 again")
	}
	fc.send(&packet.Pubrel{ID: 5})
	if p, ok := fc.next().(*packet.Pubcomp); !ok || p.ID != 5 {
		t.Fatal("want PUBCOMP 5")
	}
	if r := s.next(t); r.Payload != "a" || r.QoS != packet.QoS2 {
		t.Fatalf("got %+v", r)
	}
	s.none(t, 50*time.Millisecond)
	// After PUBCOMP the id is free: a new message with it is new.
	fc.send(&packet.Publish{QoS: packet.QoS2, Topic: []byte("q2"), ID: 5, Payload: []byte("b")})
	fc.next()
	if r := s.next(t); r.Payload != "b" {
		t.Fatalf("got %+v", r)
	}
	// QoS 1 acknowledgements in arrival order.
	for id := packet.ID(10); id < 20; id++ {
		fc.send(&packet.Publish{QoS: packet.QoS1, Topic: []byte("q1"), ID: id})
	}
	for id := packet.ID(10); id < 20; id++ {
		if p, ok := fc.next().(*packet.Puback); !ok || p.ID != id {
			t.Fatalf("want PUBACK %d", id)
		}
	}
}

// TestSlowHandler checks that a handler that does not return neither stops
// our publishes from completing nor keep-alive, while the full handler
// queue stops the reader only for incoming messages.
func TestSlowHandler(t *testing.T) {
	fb := newFakeBroker(t)
	release := make(chan struct{})
	var handled atomic.Int64
	c, fc := fakeClient(t, fb, mqtt.Config{
		HandlerQueue: 2,
		OnMessage: func(*mqtt.Message) {
			<-release
			handled.Add(1)
		},
	})
	defer close(release)
	ctx := ctxT(t)
	// One message blocks the handler, two fill the queue.
	for id := packet.ID(1); id <= 3; id++ {
		fc.send(&packet.Publish{QoS: packet.QoS1, Topic: []byte("slow"), ID: id})
		if p, ok := fc.next().(*packet.Puback); !ok || p.ID != id {
			t.Fatalf("want PUBACK %d", id)
		}
	}
	// Our own publish still completes: the reader reads its PUBACK.
	done := make(chan error, 1)
	go func() { done <- c.Publish(ctx, &mqtt.Message{Topic: []byte("out"), QoS: packet.QoS1}) }()
	p := fc.publish()
	fc.send(&packet.Puback{ID: p.ID})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if handled.Load() != 0 {
		t.Fatal("handler ran")
	}
}

func TestPasswordFuncEveryAttempt(t *testing.T) {
	fb := newFakeBroker(t)
	var n atomic.Int64
	_, fc := fakeClient(t, fb, mqtt.Config{
		Username: "dev",
		PasswordFunc: func(context.Context) ([]byte, error) {
			return fmt.Appendf(nil, "token-%d", n.Add(1)), nil
		},
	})
	if got := string(fc.connect.Password); got != "token-1" {
		t.Fatalf("first password %q", got)
	}
	fc.c.Close()
	fc2 := fb.accept(t)
	if got := string(fc2.connect.Password); got != "token-2" {
		t.Fatalf("password after reconnect %q, want a fresh token-2", got)
	}
}

func TestReconnectDisabled(t *testing.T) {
	fb := newFakeBroker(t)
	var states stateLog
	c, fc := fakeClient(t, fb, mqtt.Config{Reconnect: mqtt.Backoff{Disabled: true}, OnStateChange: states.record})
	fc.c.Close()
	deadline := time.Now().Add(testTimeout)
	for c.State() != mqtt.StateDisconnected {
		if time.Now().After(deadline) {
			t.Fatalf("state %v", c.State())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.Publish(ctxT(t), &mqtt.Message{Topic: []byte("x")}); !errors.Is(err, mqtt.ErrNotConnected) {
		t.Fatalf("QoS 0 publish while disconnected = %v", err)
	}
	// QoS 1 is stored and sent once Connect is called again.
	res := newResultLog()
	if err := c.PublishAsync(ctxT(t), &mqtt.Message{Topic: []byte("kept"), QoS: packet.QoS1}, res.done); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = c.Connect(ctxT(t)) }()
	fc2 := fb.accept(t)
	if p := fc2.publish(); string(p.Topic) != "kept" {
		t.Fatalf("got %q", p.Topic)
	} else {
		fc2.send(&packet.Puback{ID: p.ID})
	}
	if errs := res.wait(t, 1); errs[0] != nil {
		t.Fatal(errs[0])
	}
}

func TestCloseFailsUnacked(t *testing.T) {
	fb := newFakeBroker(t)
	c, fc := fakeClient(t, fb, mqtt.Config{})
	res := newResultLog()
	if err := c.PublishAsync(ctxT(t), &mqtt.Message{Topic: []byte("never"), QoS: packet.QoS1}, res.done); err != nil {
		t.Fatal(err)
	}
	fc.publish()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want DeadlineExceeded", err)
	}
	if errs := res.wait(t, 1); !errors.Is(errs[0], mqtt.ErrClosed) {
		t.Fatalf("unacked publish completed with %v", errs[0])
	}
	if _, ok := fc.next().(*packet.Disconnect); !ok {
		t.Fatal("no DISCONNECT")
	}
}

func TestInvalidInput(t *testing.T) {
	if _, err := mqtt.NewClient(mqtt.Config{URL: "tcp://127.0.0.1:1"}); !errors.Is(err, mqtt.ErrInvalidMessage) {
		t.Fatalf("empty client id without clean session: %v", err)
	}
	if _, err := mqtt.NewClient(mqtt.Config{CleanSession: true}); err == nil {
		t.Fatal("no dialer and no URL accepted")
	}
	fb := newFakeBroker(t)
	c, _ := fakeClient(t, fb, mqtt.Config{})
	ctx := ctxT(t)
	for _, m := range []*mqtt.Message{
		{Topic: []byte("a/+/b")},
		{Topic: []byte("")},
		{Topic: []byte("ok"), QoS: 3},
		{Topic: []byte("wild/#"), QoS: packet.QoS1},
	} {
		if err := c.Publish(ctx, m); !errors.Is(err, mqtt.ErrInvalidMessage) {
			t.Errorf("Publish(%+v) = %v, want ErrInvalidMessage", m, err)
		}
	}
	if _, err := c.Subscribe(ctx, mqtt.Subscription{Filter: "a/#/b"}); !errors.Is(err, mqtt.ErrInvalidMessage) {
		t.Errorf("bad filter: %v", err)
	}
	if c.InFlight() != 0 {
		t.Fatalf("rejected publishes hold %d window slots", c.InFlight())
	}
}

// TestStoreSurvivesClient checks that a new Client reads back the packets a
// previous one left in its Store and sends them after connecting.
func TestStoreSurvivesClient(t *testing.T) {
	fb := newFakeBroker(t)
	fb.sessionPresent.Store(true)
	store := mqtt.NewMemoryStore()
	id := clientID(t)
	c, fc := fakeClient(t, fb, mqtt.Config{ClientID: id, Store: store})
	ctx := ctxT(t)
	for i := range 3 {
		if err := c.PublishAsync(ctx, &mqtt.Message{Topic: []byte(fmt.Sprintf("kept/%d", i)), QoS: packet.QoS1}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		fc.publish()
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_ = c.Close(short) // gives up waiting: the messages stay in the store
	if store.Len() != 3 {
		t.Fatalf("store holds %d packets, want 3", store.Len())
	}

	c2, fc2 := fakeClient(t, fb, mqtt.Config{ClientID: id, Store: store})
	for i := range 3 {
		p := fc2.publish()
		if string(p.Topic) != fmt.Sprintf("kept/%d", i) || !p.Dup {
			t.Fatalf("resent %q dup=%v", p.Topic, p.Dup)
		}
		fc2.send(&packet.Puback{ID: p.ID})
	}
	deadline := time.Now().Add(testTimeout)
	for store.Len() != 0 || c2.InFlight() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("store %d, in flight %d after acks", store.Len(), c2.InFlight())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWriteStallDetected checks that a broker that stops reading (the
// socket's send buffer fills, the writer blocks) is detected by the write
// deadline and the client reconnects.
func TestWriteStallDetected(t *testing.T) {
	fb := newFakeBroker(t)
	var states stateLog
	c, _ := fakeClient(t, fb, mqtt.Config{KeepAlive: time.Second, PingTimeout: 200 * time.Millisecond, OnStateChange: states.record})
	ctx := ctxT(t)
	big := &mqtt.Message{Topic: []byte("stall"), Payload: make([]byte, 64<<10)}
	go func() {
		// Publish until the connection is declared dead.
		for c.Publish(ctx, big) == nil {
		}
	}()
	fb.accept(t) // the reconnect
	if states.count(mqtt.StateReconnecting) == 0 {
		t.Fatal("no reconnect recorded")
	}
}

// TestSubscribeFromStateCallback checks that OnStateChange may use the
// connection it reports: a Subscribe there gets its SUBACK.
func TestSubscribeFromStateCallback(t *testing.T) {
	fb := newFakeBroker(t)
	var c *mqtt.Client
	ready := make(chan struct{})
	result := make(chan error, 4)
	cfg := mqtt.Config{
		Dialer:       fb.dialer(),
		ClientID:     clientID(t),
		CleanSession: true,
		OnStateChange: func(_, to mqtt.State, _ error) {
			if to != mqtt.StateConnected {
				return
			}
			<-ready
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			_, err := c.Subscribe(ctx, mqtt.Subscription{Filter: "cb/#", QoS: packet.QoS1})
			result <- err
		},
	}
	var err error
	c, err = mqtt.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	close(ready)
	go func() {
		select {
		case fc := <-fb.conns:
			fc.autoAck()
		case <-time.After(testTimeout):
		}
	}()
	if _, err := c.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctxT(t))
	select {
	case err := <-result:
		if err != nil {
			t.Fatalf("Subscribe from OnStateChange: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Subscribe from OnStateChange never returned")
	}
}
