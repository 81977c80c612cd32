//go:build !race

package mqtt_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// TestAllocs checks the steady-state hot paths allocate nothing per
// message: QoS 0 and QoS 1 publishes (blocking and async) and receiving.
func TestAllocs(t *testing.T) {
	fb := newFakeBroker(t)
	received := make(chan struct{}, 1)
	c, fc := fakeClient(t, fb, mqtt.Config{OnMessage: func(*mqtt.Message) { received <- struct{}{} }})
	fc.autoAck()
	ctx := context.Background()
	payload := make([]byte, 256)

	m0 := &mqtt.Message{Topic: []byte("alloc/0"), Payload: payload}
	if n := testing.AllocsPerRun(2000, func() {
		if err := c.Publish(ctx, m0); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("QoS 0 Publish: %v allocs/op, want 0", n)
	}

	m1 := &mqtt.Message{Topic: []byte("alloc/1"), Payload: payload, QoS: packet.QoS1}
	if n := testing.AllocsPerRun(500, func() {
		if err := c.Publish(ctx, m1); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("QoS 1 Publish: %v allocs/op, want 0", n)
	}

	// A reused Message whose topic is rebuilt in a reused buffer for every
	// publish (as the device client builds its topics), alternating between
	// two topics so that the validation cache misses every time.
	var topicBuf []byte
	mr := &mqtt.Message{Payload: payload, QoS: packet.QoS1}
	i := 0
	if n := testing.AllocsPerRun(500, func() {
		i++
		topicBuf = append(topicBuf[:0], "devices/d/messages/events/"...)
		topicBuf = strconv.AppendInt(topicBuf, int64(i%2), 10)
		mr.Topic = topicBuf
		if err := c.Publish(ctx, mr); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("QoS 1 Publish, reused Message, topic rebuilt per call: %v allocs/op, want 0", n)
	}

	acked := make(chan error, 64)
	done := func(err error) { acked <- err }
	if n := testing.AllocsPerRun(500, func() {
		if err := c.PublishAsync(ctx, m1, done); err != nil {
			t.Fatal(err)
		}
		if err := <-acked; err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("QoS 1 PublishAsync: %v allocs/op, want 0", n)
	}

	// Receive: the fake broker writes a pre-encoded QoS 1 PUBLISH.
	in, err := (&packet.Publish{QoS: packet.QoS1, Topic: []byte("alloc/in"), ID: 9, Payload: payload}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(500, func() {
		if _, err := fc.c.Write(in); err != nil {
			t.Fatal(err)
		}
		<-received
	}); n != 0 {
		t.Errorf("receive QoS 1: %v allocs/op, want 0", n)
	}
}

func TestMemoryStoreAllocs(t *testing.T) {
	s := mqtt.NewMemoryStore()
	pkt := make([]byte, 300)
	for id := packet.ID(1); id <= 64; id++ {
		_ = s.Put(id, pkt)
	}
	for id := packet.ID(1); id <= 64; id++ {
		_ = s.Delete(id)
	}
	id := packet.ID(0)
	if n := testing.AllocsPerRun(1000, func() {
		id = id%64 + 1
		_ = s.Put(id, pkt)
		_ = s.Delete(id)
	}); n != 0 {
		t.Errorf("MemoryStore Put+Delete: %v allocs/op, want 0", n)
	}
}
