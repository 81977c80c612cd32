package mqtt_test

import (
	"context"
	"testing"

	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// BenchmarkPublish publishes 256-byte messages over loopback TCP to an
// in-process fake broker that acknowledges everything (its work is included
// in the time). The peer comparison with paho against real brokers lives in
// bench/client.
func BenchmarkPublish(b *testing.B) {
	payload := make([]byte, 256)
	run := func(b *testing.B, f func(c *mqtt.Client, ctx context.Context)) {
		fb := newFakeBroker(b)
		c, fc := fakeBenchClient(b, fb)
		fc.autoAck()
		ctx := context.Background()
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		b.ResetTimer()
		f(c, ctx)
		b.StopTimer()
		if err := c.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("qos0", func(b *testing.B) {
		run(b, func(c *mqtt.Client, ctx context.Context) {
			m := &mqtt.Message{Topic: []byte("bench/0"), Payload: payload}
			for b.Loop() {
				if err := c.Publish(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("qos1-async-window64", func(b *testing.B) {
		run(b, func(c *mqtt.Client, ctx context.Context) {
			m := &mqtt.Message{Topic: []byte("bench/1"), Payload: payload, QoS: packet.QoS1}
			for b.Loop() {
				if err := c.PublishAsync(ctx, m, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("qos1-blocking", func(b *testing.B) {
		run(b, func(c *mqtt.Client, ctx context.Context) {
			m := &mqtt.Message{Topic: []byte("bench/1"), Payload: payload, QoS: packet.QoS1}
			for b.Loop() {
				if err := c.Publish(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

func fakeBenchClient(b *testing.B, fb *fakeBroker) (*mqtt.Client, *fakeConn) {
	c, err := mqtt.NewClient(mqtt.Config{Dialer: fb.dialer(), ClientID: "bench", CleanSession: true, InFlight: 64})
	if err != nil {
		b.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := c.Connect(context.Background()); errc <- err }()
	fc := fb.accept(b)
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return c, fc
}
