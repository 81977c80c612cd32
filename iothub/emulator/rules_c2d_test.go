package emulator_test

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/iothub/emulator"
	"github.com/hubwire/hubwire/iothub/emulator/emulatortest"
	"github.com/hubwire/hubwire/packet"
)

func sendC2D(t *testing.T, h *emulator.Hub, id string, m emulator.C2DMessage) string {
	t.Helper()
	mid, err := h.SendC2D(testCtx(t), id, m)
	if err != nil {
		t.Fatal(err)
	}
	return mid
}

// readPublish reads packets until a PUBLISH.
func (c *rawConn) readPublish() *packet.Publish {
	c.t.Helper()
	for {
		p, err := c.read()
		if err != nil {
			c.t.Fatalf("no PUBLISH: %v", err)
		}
		if pub, ok := p.(*packet.Publish); ok {
			return pub
		}
	}
}

func TestRule15PersistentSessionRestored(t *testing.T) {
	h := newHub(t, "dev1")
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			c := dialRaw(t, h, tr)
			if ack := c.connect(h, "dev1", "", false); ack.SessionPresent {
				// A leftover from the other transport's run: start clean.
				c.nc.Close()
				c = dialRaw(t, h, tr)
				c.connect(h, "dev1", "", true)
				c.send(&packet.Disconnect{})
				c.expectClosed()
				c = dialRaw(t, h, tr)
				if ack := c.connect(h, "dev1", "", false); ack.SessionPresent {
					t.Fatal("session present after a clean session")
				}
			}
			c.send(&packet.Subscribe{ID: 1, Filters: []packet.Subscription{{Filter: []byte(iothub.TwinDesiredFilter), QoS: 0}}})
			if p, err := c.read(); err != nil || p.Type() != packet.TypeSuback {
				t.Fatalf("SUBACK: %v %v", p, err)
			}
			c.send(&packet.Disconnect{})
			c.expectClosed()

			c2 := dialRaw(t, h, tr)
			if ack := c2.connect(h, "dev1", "", false); !ack.SessionPresent {
				t.Fatal("CleanSession=0 with state: session-present 0")
			}
			// The desired subscription is restored without SUBSCRIBE.
			waitFor(t, "connected", func() bool { d, _ := h.GetDevice("dev1"); return d.ConnectionState == emulator.Connected })
			v, err := h.UpdateDesired(testCtx(t), "dev1", "", []byte(`{"restored":"`+tr+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			pub := c2.readPublish()
			if !strings.HasPrefix(string(pub.Topic), "$iothub/twin/PATCH/properties/desired/?$version=") || !bytes.Contains(pub.Payload, []byte(tr)) {
				t.Fatalf("got %s %s (v%d)", pub.Topic, pub.Payload, v)
			}
			c2.send(&packet.Disconnect{})
			c2.expectClosed()

			c3 := dialRaw(t, h, tr)
			if ack := c3.connect(h, "dev1", "", true); ack.SessionPresent {
				t.Fatal("CleanSession=1: session-present 1")
			}
			c3.send(&packet.Disconnect{})
			c3.expectClosed()
		})
	}
}

func TestRule16PendingC2DAfterConnack(t *testing.T) {
	h := newHub(t, "dev1")
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			sendC2D(t, h, "dev1", emulator.C2DMessage{Body: []byte("queued-" + tr)})
			c := dialRaw(t, h, tr)
			c.connect(h, "dev1", "", false)
			// No SUBSCRIBE: the first packet after CONNACK is the message.
			p, err := c.read()
			if err != nil {
				t.Fatal(err)
			}
			pub, ok := p.(*packet.Publish)
			if !ok || !strings.HasPrefix(string(pub.Topic), "devices/dev1/messages/devicebound/") || string(pub.Payload) != "queued-"+tr || pub.QoS != 1 {
				t.Fatalf("got %v", p)
			}
			c.send(&packet.Puback{ID: pub.ID})
			waitFor(t, "queue drained", func() bool { return len(h.PendingC2D("dev1")) == 0 })
			c.send(&packet.Disconnect{})
			c.expectClosed()
		})
	}
	t.Run("clean-session-waits-for-subscribe", func(t *testing.T) {
		sendC2D(t, h, "dev1", emulator.C2DMessage{Body: []byte("after-sub")})
		c := dialRaw(t, h, "tls")
		c.connect(h, "dev1", "", true)
		c.send(&packet.Pingreq{})
		if p, _ := c.read(); p == nil || p.Type() != packet.TypePingresp {
			t.Fatalf("got %v before SUBSCRIBE", p)
		}
		c.send(&packet.Subscribe{ID: 2, Filters: []packet.Subscription{{Filter: []byte("devices/dev1/messages/devicebound/#"), QoS: 1}}})
		if pub := c.readPublish(); string(pub.Payload) != "after-sub" {
			t.Fatalf("got %s", pub.Payload)
		}
	})
}

func TestRule27SubscribeQoS2GrantedQoS1(t *testing.T) {
	h := newHub(t, "dev1")
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			c := dialRaw(t, h, tr)
			c.connect(h, "dev1", "", true)
			c.send(&packet.Subscribe{ID: 9, Filters: []packet.Subscription{
				{Filter: []byte("devices/dev1/messages/devicebound/#"), QoS: 2},
				{Filter: []byte(iothub.TwinResponseFilter), QoS: 0},
			}})
			p, err := c.read()
			if err != nil {
				t.Fatal(err)
			}
			s, ok := p.(*packet.Suback)
			if !ok || s.ID != 9 || !bytes.Equal(s.ReturnCodes, []byte{1, 0}) {
				t.Fatalf("got %v, want SUBACK [1 0]", p)
			}
		})
	}
}

func TestRule29C2DTopicShape(t *testing.T) {
	h := newHub(t, "dev1")
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			d := connect(t, h, "dev1", devOpts{transport: tr, clean: true})
			d.sub("devices/dev1/messages/devicebound/#")
			mid := sendC2D(t, h, "dev1", emulator.C2DMessage{Body: []byte("shape"), Ack: emulator.AckFull, CorrelationID: "c1",
				TTL: time.Hour, Properties: map[string]string{"app": "v"}})
			m := d.next("devices/dev1/messages/devicebound/")
			bag := strings.TrimPrefix(string(m.Topic), "devices/dev1/messages/devicebound/")
			if strings.HasPrefix(bag, "?") {
				t.Fatalf("leading ? in %s", m.Topic)
			}
			var props iothub.Properties
			if err := props.Parse([]byte(bag)); err != nil {
				t.Fatal(err)
			}
			if props.MessageID != mid || props.To != "/devices/dev1/messages/devicebound" || props.Ack != "full" ||
				props.CorrelationID != "c1" || props.Expiry == "" {
				t.Fatalf("props %+v from %s", props, bag)
			}
			for _, want := range []string{"%24.mid=", "%24.to=%2Fdevices%2Fdev1%2Fmessages%2Fdevicebound", "iothub-ack=full", "app=v"} {
				if !strings.Contains(bag, want) {
					t.Errorf("bag %s lacks %s", bag, want)
				}
			}
			for _, pair := range strings.Split(bag, "&") {
				if !strings.Contains(pair, "=") {
					t.Errorf("bare key %q", pair)
				}
			}
		})
	}
}

func TestRule30C2DRemovedOnlyOnPuback(t *testing.T) {
	h := newHub(t, "dev1")
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			sendC2D(t, h, "dev1", emulator.C2DMessage{Body: []byte("unacked-" + tr), Ack: emulator.AckPositive})
			c := dialRaw(t, h, tr)
			c.connect(h, "dev1", "", false)
			pub := c.readPublish()
			if string(pub.Payload) != "unacked-"+tr {
				t.Fatalf("got %s", pub.Payload)
			}
			c.nc.Close() // no PUBACK
			waitFor(t, "released", func() bool {
				q := h.PendingC2D("dev1")
				return len(q) == 1 && !q[0].InFlight
			})
			c2 := dialRaw(t, h, tr)
			c2.connect(h, "dev1", "", false)
			again := c2.readPublish()
			if string(again.Payload) != "unacked-"+tr {
				t.Fatalf("redelivered %s", again.Payload)
			}
			if q := h.PendingC2D("dev1"); len(q) != 1 || q[0].DeliveryCount != 1 {
				t.Fatalf("queue %+v", q)
			}
			c2.send(&packet.Puback{ID: again.ID})
			waitFor(t, "completed", func() bool { return len(h.PendingC2D("dev1")) == 0 })
			var fb []emulator.FeedbackRecord
			waitFor(t, "feedback", func() bool { fb = h.Feedback(); return len(fb) > 0 })
			b, ok := h.ReceiveFeedback()
			if !ok || b.Records[0].StatusCode != "Success" || b.Records[0].DeviceID != "dev1" {
				t.Fatalf("feedback %+v", b)
			}
			if err := h.CompleteFeedback(testCtx(t), b.LockToken); err != nil {
				t.Fatal(err)
			}
			c2.send(&packet.Disconnect{})
			c2.expectClosed()
		})
	}
}

func TestRule31C2DLimits(t *testing.T) {
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	h := emulatortest.Start(t, emulator.Config{Now: now})
	emulatortest.Device(t, h, "dev1")
	ctx := testCtx(t)
	if _, err := h.SendC2D(ctx, "dev1", emulator.C2DMessage{Body: make([]byte, emulator.MaxC2DSize+1)}); !errors.Is(err, emulator.ErrMessageTooLarge) {
		t.Fatalf("65 KB: %v", err)
	}
	if _, err := h.SendC2D(ctx, "dev1", emulator.C2DMessage{TTL: 49 * time.Hour}); !errors.Is(err, emulator.ErrInvalidArgument) {
		t.Fatalf("TTL 49 h: %v", err)
	}
	if _, err := h.SendC2D(ctx, "nobody", emulator.C2DMessage{}); !errors.Is(err, emulator.ErrDeviceNotFound) {
		t.Fatalf("unknown device: %v", err)
	}
	sendC2D(t, h, "dev1", emulator.C2DMessage{Body: []byte("short"), TTL: time.Minute, Ack: emulator.AckNegative})
	for i := 1; i < emulator.MaxC2DQueue; i++ {
		sendC2D(t, h, "dev1", emulator.C2DMessage{Body: []byte("fill")})
	}
	if _, err := h.SendC2D(ctx, "dev1", emulator.C2DMessage{}); !errors.Is(err, emulator.ErrQueueFull) {
		t.Fatalf("51st: %v", err)
	}
	q := h.PendingC2D("dev1")
	if got := q[1].Expiry.Sub(q[1].Enqueued); got != emulator.DefaultC2DTTL {
		t.Fatalf("default TTL %v", got)
	}
	advance(2 * time.Minute)
	if q := h.PendingC2D("dev1"); len(q) != emulator.MaxC2DQueue-1 {
		t.Fatalf("after expiry %d queued", len(q))
	}
	fb := h.Feedback()
	if len(fb) != 1 || fb[0].StatusCode != "Expired" {
		t.Fatalf("feedback %+v", fb)
	}
	advance(47*time.Hour + time.Minute)
	if _, err := h.SendC2D(ctx, "dev1", emulator.C2DMessage{TTL: emulator.MaxC2DTTL}); err != nil {
		t.Fatalf("48 h TTL: %v", err)
	}
	if n, err := h.PurgeC2D(ctx, "dev1"); err != nil || n != 1 {
		t.Fatalf("purge: %d %v", n, err)
	}
}

func TestC2DDeliveryCountExceeded(t *testing.T) {
	h := newHub(t, "dev1")
	mid := sendC2D(t, h, "dev1", emulator.C2DMessage{Body: []byte("never-acked"), Ack: emulator.AckNegative})
	for i := 1; i <= emulator.DefaultMaxDeliveries; i++ {
		c := dialRaw(t, h, "tls")
		c.connect(h, "dev1", "", false)
		if pub := c.readPublish(); string(pub.Payload) != "never-acked" {
			t.Fatalf("delivery %d: %s", i, pub.Payload)
		}
		c.nc.Close()
		waitFor(t, "released", func() bool {
			q := h.PendingC2D("dev1")
			return len(q) == 0 || !q[0].InFlight
		})
	}
	if q := h.PendingC2D("dev1"); len(q) != 0 {
		t.Fatalf("still queued after %d deliveries: %+v", emulator.DefaultMaxDeliveries, q)
	}
	fb := h.Feedback()
	if len(fb) != 1 || fb[0].StatusCode != "DeliveryCountExceeded" || fb[0].OriginalMessageID != mid {
		t.Fatalf("feedback %+v", fb)
	}
}

// TestC2DQoS0Subscription: a QoS 0 subscription completes a message as it
// is sent (contract §4).
func TestC2DQoS0Subscription(t *testing.T) {
	h := newHub(t, "dev1")
	c := dialRaw(t, h, "tls")
	c.connect(h, "dev1", "", true)
	c.send(&packet.Subscribe{ID: 1, Filters: []packet.Subscription{{Filter: []byte("devices/dev1/messages/devicebound/#"), QoS: 0}}})
	sendC2D(t, h, "dev1", emulator.C2DMessage{Body: []byte("q0"), Ack: emulator.AckPositive})
	pub := c.readPublish()
	if pub.QoS != 0 || string(pub.Payload) != "q0" {
		t.Fatalf("got QoS %d %s", pub.QoS, pub.Payload)
	}
	waitFor(t, "completed", func() bool { return len(h.PendingC2D("dev1")) == 0 && len(h.Feedback()) == 1 })
	if fb := h.Feedback(); fb[0].StatusCode != "Success" {
		t.Fatalf("feedback %+v", fb)
	}
}

func TestC2DConfiguredTTLAndDeliveries(t *testing.T) {
	h := emulatortest.Start(t, emulator.Config{C2DDefaultTTL: 5 * time.Minute, C2DMaxDeliveryCount: 1})
	emulatortest.Device(t, h, "dev1")
	sendC2D(t, h, "dev1", emulator.C2DMessage{Body: []byte("once"), Ack: emulator.AckFull})
	q := h.PendingC2D("dev1")
	if got := q[0].Expiry.Sub(q[0].Enqueued); got != 5*time.Minute {
		t.Fatalf("TTL %v", got)
	}
	c := dialRaw(t, h, "tls")
	c.connect(h, "dev1", "", false)
	c.readPublish()
	c.nc.Close()
	waitFor(t, "dead-lettered", func() bool { return len(h.PendingC2D("dev1")) == 0 && len(h.Feedback()) == 1 })
	if fb := h.Feedback(); fb[0].StatusCode != "DeliveryCountExceeded" {
		t.Fatalf("feedback %+v", fb)
	}
}
