package mqtt_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// A client that subscribes, publishes at QoS 1 and closes.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := mqtt.NewClient(mqtt.Config{
		URL:          "tcp://127.0.0.1:1883",
		ClientID:     "example",
		CleanSession: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	_, err = c.Subscribe(ctx, mqtt.Subscription{Filter: "sensors/+/temp", QoS: packet.QoS1, Handler: func(m *mqtt.Message) {
		fmt.Printf("%s: %s\n", m.Topic, m.Payload)
	}})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Publish(ctx, &mqtt.Message{Topic: []byte("sensors/1/temp"), Payload: []byte("21.5"), QoS: packet.QoS1}); err != nil {
		log.Fatal(err)
	}
}

// PublishAsync keeps the in-flight window full from one goroutine; the
// callback counts acknowledgements.
func ExampleClient_PublishAsync() {
	ctx := context.Background()
	c, err := mqtt.NewClient(mqtt.Config{URL: "tcp://127.0.0.1:1883", ClientID: "async", CleanSession: true, InFlight: 64})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	acked := make(chan error, 1000)
	done := func(err error) { acked <- err } // created once: no allocation per message
	msg := &mqtt.Message{Topic: []byte("telemetry"), Payload: make([]byte, 256), QoS: packet.QoS1}
	for range 1000 {
		if err := c.PublishAsync(ctx, msg, done); err != nil {
			log.Fatal(err)
		}
	}
	for range 1000 {
		if err := <-acked; err != nil {
			log.Fatal(err)
		}
	}
	_ = c.Close(ctx)
}

// A handler may call Close: it starts the shutdown and returns without
// waiting for the handler's own goroutine; Done tells when the client has
// stopped.
func ExampleClient_Done() {
	ctx := context.Background()
	var c *mqtt.Client
	c, err := mqtt.NewClient(mqtt.Config{
		URL: "tcp://127.0.0.1:1883", ClientID: "stopper", CleanSession: true,
		OnMessage: func(m *mqtt.Message) {
			if string(m.Payload) == "stop" {
				_ = c.Close(context.Background())
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, mqtt.Subscription{Filter: "control", QoS: packet.QoS1}); err != nil {
		log.Fatal(err)
	}
	<-c.Done() // every goroutine of the client has returned
}

// Publish distinguishes a message that was accepted (and will still be
// sent) from one that never got into the in-flight window.
func ExampleClient_Publish_contextEnds() {
	c, err := mqtt.NewClient(mqtt.Config{URL: "tcp://127.0.0.1:1883", ClientID: "careful"})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	msg := &mqtt.Message{Topic: []byte("orders"), Payload: []byte("42"), QoS: packet.QoS1}
	switch err := c.Publish(ctx, msg); {
	case errors.Is(err, mqtt.ErrPending):
		// Stored: it will be sent. Do not publish it again.
	case errors.Is(err, mqtt.ErrNotAccepted):
		// Not stored: publish it again later if it must go.
	case err != nil:
		log.Fatal(err)
	}
	_ = c.Close(context.Background())
}

// MemoryStore keeps encoded packets and returns them in the order they were
// first stored.
func ExampleMemoryStore() {
	s := mqtt.NewMemoryStore()
	_ = s.Put(7, []byte{0x32, 5, 0, 1, 'a', 0, 7})
	_ = s.Put(3, []byte{0x32, 5, 0, 1, 'b', 0, 3})
	_ = s.Put(7, []byte{0x62, 2, 0, 7}) // PUBREL replaces the PUBLISH, keeps its place
	_ = s.Range(func(id packet.ID, pkt []byte) bool {
		fmt.Printf("id %d: % x\n", id, pkt)
		return true
	})
	// Output:
	// id 7: 62 02 00 07
	// id 3: 32 05 00 01 62 00 03
}
