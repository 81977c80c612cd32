package mqtt_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

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

// TestKeepAliveMargin checks [MQTT-3.1.2-23] on the wire: a fake broker
// timestamps every packet it receives over a real loopback connection, and
// on an idle connection (and after a publish between pings) no gap between
// two packets from the client exceeds the keep-alive interval. The client
// pings after three quarters of the interval of silence; a ping exactly one
// interval after the last write used to exceed it by timer latency.
func TestKeepAliveMargin(t *testing.T) {
	const ka = time.Second
	fb := newFakeBroker(t)
	c, fc := fakeClient(t, fb, mqtt.Config{KeepAlive: ka, PingTimeout: ka / 2})
	start := time.Now() // the CONNECT arrived just before
	type arrival struct {
		at time.Time
		t  packet.Type
	}
	arrivals := make(chan arrival, 64)
	go func() {
		_ = fc.c.SetReadDeadline(time.Now().Add(testTimeout))
		for {
			f, err := fc.r.Next()
			if err != nil {
				close(arrivals)
				return
			}
			arrivals <- arrival{time.Now(), f.Type()}
			if f.Type() == packet.TypePingreq {
				if _, err := fc.c.Write([]byte{byte(packet.TypePingresp) << 4, 0}); err != nil {
					close(arrivals)
					return
				}
			}
		}
	}()
	prev, prevPing, pings := start, start, 0
	published := false
	for pings < 6 {
		a, ok := <-arrivals
		if !ok {
			t.Fatal("connection ended")
		}
		if gap := a.at.Sub(prev); gap > ka {
			t.Errorf("%s arrived %v after the previous packet, want at most %v", a.t, gap, ka)
		}
		prev = a.at
		if a.t == packet.TypePingreq {
			// Pings follow silence received too (the PINGRESP is the
			// last thing read), so a publish does not delay the next.
			if gap := a.at.Sub(prevPing); gap < ka/2 {
				t.Errorf("PINGREQ %v after the previous one, want more than %v", gap, ka/2)
			}
			prevPing = a.at
			pings++
		}
		if pings == 3 && !published {
			// A write between pings, off the ping's rhythm.
			published = true
			time.Sleep(ka / 3)
			if err := c.Publish(ctxT(t), &mqtt.Message{Topic: []byte("ka")}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestDeadLinkWhilePublishing checks dead-link detection for a client that
// only writes: the broker reads everything but stops answering. Nothing
// is read for three quarters of the keep-alive, so the client sends a
// PINGREQ even though it keeps publishing, and the missing PINGRESP ends
// the connection with ErrPingTimeout (azure-iot-sdk-c#1617).
func TestDeadLinkWhilePublishing(t *testing.T) {
	fb := newFakeBroker(t)
	lost := make(chan error, 4)
	c, fc := fakeClient(t, fb, mqtt.Config{
		KeepAlive:   time.Second,
		PingTimeout: 300 * time.Millisecond,
		OnStateChange: func(_, to mqtt.State, err error) {
			if to == mqtt.StateReconnecting {
				lost <- err
			}
		},
	})
	pings := make(chan struct{}, 16)
	go func() { // a broker that reads and never answers
		_ = fc.c.SetReadDeadline(time.Now().Add(testTimeout))
		for {
			f, err := fc.r.Next()
			if err != nil {
				return
			}
			if f.Type() == packet.TypePingreq {
				pings <- struct{}{}
			}
		}
	}()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = c.PublishAsync(context.Background(), &mqtt.Message{Topic: []byte("only/writing")}, nil)
			}
		}
	}()
	select {
	case err := <-lost:
		if !errors.Is(err, mqtt.ErrPingTimeout) {
			t.Fatalf("connection lost with %v, want ErrPingTimeout", err)
		}
	case <-time.After(5 * time.Second): // keep-alive plus ping timeout is 1.3 s
		t.Fatal("a broker that stopped answering was not detected while publishing")
	}
	select {
	case <-pings:
	default:
		t.Fatal("no PINGREQ reached the broker")
	}
}
