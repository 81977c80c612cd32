package mqtt_test

import (
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubwire/hubwire/internal/mosquitto"
	"github.com/hubwire/hubwire/internal/testcert"
	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
	"github.com/hubwire/hubwire/transport"
)

func TestRoundTrip(t *testing.T) {
	b := broker(t)
	s := newSink(16)
	sub := newClient(t, b.Addr, mqtt.Config{})
	ctx := ctxT(t)
	granted, err := sub.Subscribe(ctx, mqtt.Subscription{Filter: "rt/#", QoS: packet.QoS2, Handler: s.handle})
	if err != nil || len(granted) != 1 || granted[0] != packet.QoS2 {
		t.Fatalf("subscribe = %v, %v", granted, err)
	}
	pub := newClient(t, b.Addr, mqtt.Config{})
	for q := packet.QoS0; q <= packet.QoS2; q++ {
		t.Run(fmt.Sprintf("qos%d", q), func(t *testing.T) {
			topic := fmt.Sprintf("rt/q%d", q)
			if err := pub.Publish(ctx, &mqtt.Message{Topic: []byte(topic), Payload: []byte("hello"), QoS: q}); err != nil {
				t.Fatal(err)
			}
			r := s.next(t)
			if r.Topic != topic || r.Payload != "hello" || r.QoS != q {
				t.Fatalf("got %+v", r)
			}
		})
	}
}

func TestRetained(t *testing.T) {
	b := broker(t)
	ctx := ctxT(t)
	pub := newClient(t, b.Addr, mqtt.Config{})
	if err := pub.Publish(ctx, &mqtt.Message{Topic: []byte("ret/a"), Payload: []byte("kept"), QoS: packet.QoS1, Retain: true}); err != nil {
		t.Fatal(err)
	}
	s := newSink(4)
	sub := newClient(t, b.Addr, mqtt.Config{})
	if _, err := sub.Subscribe(ctx, mqtt.Subscription{Filter: "ret/+", QoS: packet.QoS1, Handler: s.handle}); err != nil {
		t.Fatal(err)
	}
	r := s.next(t)
	if r.Topic != "ret/a" || r.Payload != "kept" || !r.Retain {
		t.Fatalf("got %+v, want retained ret/a", r)
	}
}

func TestWildcardRouting(t *testing.T) {
	b := broker(t)
	ctx := ctxT(t)
	plus, hash, rest := newSink(8), newSink(8), newSink(8)
	c := newClient(t, b.Addr, mqtt.Config{OnMessage: rest.handle})
	if _, err := c.Subscribe(ctx,
		mqtt.Subscription{Filter: "w/+/temp", QoS: packet.QoS1, Handler: plus.handle},
		mqtt.Subscription{Filter: "w/#", QoS: packet.QoS1, Handler: hash.handle},
	); err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"w/a/temp", "w/b/hum", "w/temp"} {
		if err := c.Publish(ctx, &mqtt.Message{Topic: []byte(topic), QoS: packet.QoS1}); err != nil {
			t.Fatal(err)
		}
	}
	// mosquitto sends one copy per client; the first matching filter in
	// subscription order gets it.
	if r := plus.next(t); r.Topic != "w/a/temp" {
		t.Fatalf("w/+/temp got %q", r.Topic)
	}
	got := map[string]bool{}
	for range 2 {
		got[hash.next(t).Topic] = true
	}
	if !got["w/b/hum"] || !got["w/temp"] {
		t.Fatalf("w/# got %v", got)
	}
	rest.none(t, 100*time.Millisecond)
	plus.none(t, 0)
	hash.none(t, 0)
}

func TestUnsubscribe(t *testing.T) {
	b := broker(t)
	ctx := ctxT(t)
	s, other := newSink(8), newSink(8)
	c := newClient(t, b.Addr, mqtt.Config{OnMessage: other.handle})
	if _, err := c.Subscribe(ctx, mqtt.Subscription{Filter: "u/x", QoS: packet.QoS1, Handler: s.handle}); err != nil {
		t.Fatal(err)
	}
	if err := c.Unsubscribe(ctx, "u/x"); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, &mqtt.Message{Topic: []byte("u/x"), QoS: packet.QoS1}); err != nil {
		t.Fatal(err)
	}
	s.none(t, 200*time.Millisecond)
	other.none(t, 0)
}

func TestWill(t *testing.T) {
	b := broker(t)
	ctx := ctxT(t)
	s := newSink(4)
	watcher := newClient(t, b.Addr, mqtt.Config{})
	if _, err := watcher.Subscribe(ctx, mqtt.Subscription{Filter: "will/#", QoS: packet.QoS1, Handler: s.handle}); err != nil {
		t.Fatal(err)
	}
	var conns connRecorder
	dying := newClient(t, b.Addr, mqtt.Config{
		Dialer:    conns.dialer(b.Addr),
		Will:      &mqtt.Message{Topic: []byte("will/dying"), Payload: []byte("gone"), QoS: packet.QoS1},
		Reconnect: mqtt.Backoff{Disabled: true},
	})
	_ = dying
	conns.last().Close() // no DISCONNECT: the broker must publish the will
	r := s.next(t)
	if r.Topic != "will/dying" || r.Payload != "gone" {
		t.Fatalf("got %+v", r)
	}
}

func TestCloseSendsDisconnectNoWill(t *testing.T) {
	b := broker(t)
	ctx := ctxT(t)
	s := newSink(4)
	watcher := newClient(t, b.Addr, mqtt.Config{})
	if _, err := watcher.Subscribe(ctx, mqtt.Subscription{Filter: "will/#", QoS: packet.QoS1, Handler: s.handle}); err != nil {
		t.Fatal(err)
	}
	c, err := mqtt.NewClient(mqtt.Config{Dialer: tcpDialer(b.Addr), ClientID: clientID(t), CleanSession: true,
		Will: &mqtt.Message{Topic: []byte("will/x"), Payload: []byte("gone")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := c.State(); st != mqtt.StateClosed {
		t.Fatalf("state after Close = %v", st)
	}
	s.none(t, 300*time.Millisecond)
	if err := c.Publish(ctx, &mqtt.Message{Topic: []byte("x")}); !errors.Is(err, mqtt.ErrClosed) {
		t.Fatalf("publish after close = %v, want ErrClosed", err)
	}
}

func TestPersistentSessionResume(t *testing.T) {
	b := broker(t)
	ctx := ctxT(t)
	id := clientID(t)
	s := newSink(64)
	cfg := mqtt.Config{Dialer: tcpDialer(b.Addr), ClientID: id, OnMessage: s.handle}
	sub, err := mqtt.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Subscribe(ctx, mqtt.Subscription{Filter: "sess/#", QoS: packet.QoS1}); err != nil {
		t.Fatal(err)
	}
	if err := sub.Close(ctx); err != nil {
		t.Fatal(err)
	}

	pub := newClient(t, b.Addr, mqtt.Config{})
	for i := range 10 {
		if err := pub.Publish(ctx, &mqtt.Message{Topic: []byte("sess/a"), Payload: []byte(strconv.Itoa(i)), QoS: packet.QoS1}); err != nil {
			t.Fatal(err)
		}
	}

	sub2, err := mqtt.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := sub2.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close(ctx)
	if !sp {
		t.Fatal("session present = false, want true")
	}
	for i := range 10 {
		if r := s.next(t); r.Payload != strconv.Itoa(i) {
			t.Fatalf("message %d = %+v", i, r)
		}
	}
}

func TestKeepAlive(t *testing.T) {
	b := broker(t)
	var states stateLog
	tap := &wireTap{}
	c := newClient(t, b.Addr, mqtt.Config{KeepAlive: time.Second, OnStateChange: states.record, Dialer: tap.dialer(b.Addr)})
	deadline := time.Now().Add(testTimeout)
	for tap.count(packet.TypePingreq) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d PINGREQs on the wire after %v", tap.count(packet.TypePingreq), testTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Three keep-alive periods later the broker answered every PINGREQ
	// (else the ping timeout would have closed the connection).
	if st := c.State(); st != mqtt.StateConnected {
		t.Fatalf("state = %v", st)
	}
	if n := states.count(mqtt.StateReconnecting); n != 0 {
		t.Fatalf("%d reconnects during idle keep-alive", n)
	}
}

func TestManyQoS1InOrder(t *testing.T) {
	b := broker(t)
	ctx := ctxT(t)
	const n = 3000
	got := make(chan string, n)
	sub := newClient(t, b.Addr, mqtt.Config{})
	if _, err := sub.Subscribe(ctx, mqtt.Subscription{Filter: "many", QoS: packet.QoS1, Handler: func(m *mqtt.Message) { got <- string(m.Payload) }}); err != nil {
		t.Fatal(err)
	}
	pub := newClient(t, b.Addr, mqtt.Config{InFlight: 16})
	var acked atomic.Int64
	done := func(err error) {
		if err == nil {
			acked.Add(1)
		}
	}
	for i := range n {
		if err := pub.PublishAsync(ctx, &mqtt.Message{Topic: []byte("many"), Payload: []byte(strconv.Itoa(i)), QoS: packet.QoS1}, done); err != nil {
			t.Fatal(err)
		}
		if pub.InFlight() > 16 {
			t.Fatalf("in flight = %d > window 16", pub.InFlight())
		}
	}
	for i := range n {
		select {
		case p := <-got:
			if p != strconv.Itoa(i) {
				t.Fatalf("message %d has payload %s", i, p)
			}
		case <-ctx.Done():
			t.Fatalf("received %d of %d", i, n)
		}
	}
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if acked.Load() != n {
		t.Fatalf("acked %d of %d", acked.Load(), n)
	}
}

func TestQoS2ExactlyOnce(t *testing.T) {
	b := broker(t)
	ctx := ctxT(t)
	const n = 500
	got := make(chan string, 2*n)
	sub := newClient(t, b.Addr, mqtt.Config{AckAfterHandler: true})
	if _, err := sub.Subscribe(ctx, mqtt.Subscription{Filter: "eo", QoS: packet.QoS2, Handler: func(m *mqtt.Message) { got <- string(m.Payload) }}); err != nil {
		t.Fatal(err)
	}
	// mosquitto 2.0.11 accepts max_inflight_messages (20) incoming QoS 2
	// messages at a time and forwards the rest out of order, so the window
	// matches it for the order check.
	pub := newClient(t, b.Addr, mqtt.Config{InFlight: 20})
	for i := range n {
		if err := pub.PublishAsync(ctx, &mqtt.Message{Topic: []byte("eo"), Payload: []byte(strconv.Itoa(i)), QoS: packet.QoS2}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		select {
		case p := <-got:
			if p != strconv.Itoa(i) {
				t.Fatalf("message %d has payload %s", i, p)
			}
		case <-ctx.Done():
			t.Fatalf("received %d of %d", i, n)
		}
	}
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		t.Fatalf("duplicate %s", p)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestTLSAndWebSocket runs a QoS 1 round trip over mosquitto's TLS and
// WebSocket listeners, dialed by URL through package transport.
func TestTLSAndWebSocket(t *testing.T) {
	ca := testcert.New(t, testcert.Options{})
	srv := ca.MustServer(t, "localhost", "127.0.0.1")
	files, err := ca.WriteFiles(t.TempDir(), "server", srv)
	if err != nil {
		t.Fatal(err)
	}
	b := mosquitto.Start(t, mosquitto.Options{
		TLS:        &mosquitto.TLSFiles{CAFile: files.CAFile, CertFile: files.CertFile, KeyFile: files.KeyFile},
		WebSockets: true,
	})
	for _, tc := range []struct{ name, url string }{
		{"tls", "tls://" + b.TLSAddr},
		{"ws", "ws://" + b.WSAddr + "/mqtt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			s := newSink(4)
			c, err := mqtt.NewClient(mqtt.Config{
				URL:          tc.url,
				Transport:    transport.Config{TLS: ca.ClientConfig(nil)},
				ClientID:     clientID(t),
				CleanSession: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Connect(ctx); err != nil {
				t.Fatalf("connect %s: %v", tc.url, err)
			}
			defer c.Close(ctx)
			if _, err := c.Subscribe(ctx, mqtt.Subscription{Filter: "sec/#", QoS: packet.QoS1, Handler: s.handle}); err != nil {
				t.Fatal(err)
			}
			if err := c.Publish(ctx, &mqtt.Message{Topic: []byte("sec/" + tc.name), Payload: []byte("over " + tc.name), QoS: packet.QoS1}); err != nil {
				t.Fatal(err)
			}
			if r := s.next(t); r.Payload != "over "+tc.name {
				t.Fatalf("got %+v", r)
			}
		})
	}
}
