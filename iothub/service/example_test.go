package service_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/hubwire/hubwire/iothub/emulator"
	"github.com/hubwire/hubwire/iothub/service"
)

// startEmulator starts an in-memory emulator on free loopback ports and a
// client of its iothubowner policy.
func startEmulator(ctx context.Context) (*emulator.Hub, *service.Client) {
	hub, err := emulator.Start(ctx, emulator.Config{MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	c, err := service.New(hub.ServiceConnectionString(), &service.Options{
		Endpoint: "https://" + hub.HTTPSAddr().String(), // the emulator's test port
		RootCAs:  hub.CertPool(),                        // trust its CA
	})
	if err != nil {
		log.Fatal(err)
	}
	return hub, c
}

// A client of a real hub needs only the policy's connection string.
func ExampleNew() {
	c, err := service.New(os.Getenv("IOTHUB_CONNECTION_STRING"), nil)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tw, err := c.GetTwin(ctx, "dev1")
	if errors.Is(err, service.ErrDeviceNotFound) {
		fmt.Println("no such device")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tw.Properties.Reported)
}

// Register a device, tag its twin and find it with a query.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hub, c := startEmulator(ctx)
	defer hub.Close()

	d, err := c.CreateDevice(ctx, &service.Device{DeviceID: "thermostat-1"}) // keys generated
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.DeviceID, d.Status, d.Authentication.Type)

	tw, err := c.UpdateTwin(ctx, "thermostat-1", &service.Twin{
		Tags:       map[string]any{"building": "43"},
		Properties: service.TwinProperties{Desired: map[string]any{"targetTemp": 21}},
	}, "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("desired version", tw.DesiredVersion())

	_, err = c.UpdateTwin(ctx, "thermostat-1", &service.Twin{Tags: map[string]any{"building": "44"}}, "AAAAAAAAAAE=")
	fmt.Println("stale etag:", errors.Is(err, service.ErrPreconditionFailed))

	for tw, err := range c.QueryTwins(ctx, "SELECT * FROM devices WHERE tags.building = '43'", 0) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("found", tw.DeviceID)
	}
	// Output:
	// thermostat-1 enabled sas
	// desired version 2
	// stale etag: true
	// found thermostat-1
}

// Send a cloud-to-device message through the emulator and purge the queue.
func ExampleClient_SendC2D() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hub, c := startEmulator(ctx)
	defer hub.Close()
	if _, err := c.CreateDevice(ctx, &service.Device{DeviceID: "dev1"}); err != nil {
		log.Fatal(err)
	}
	id, err := c.SendC2D(ctx, "dev1", &service.C2DMessage{Body: []byte("reboot"), MessageID: "cmd-1",
		Properties: map[string]string{"priority": "high"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("queued", id)
	p, err := c.PurgeC2D(ctx, "dev1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("purged", p.TotalMessagesPurged)
	// Output:
	// queued cmd-1
	// purged 1
}

// Count devices with a query.
func ExampleClient_Query() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hub, c := startEmulator(ctx)
	defer hub.Close()
	for _, id := range []string{"a", "b", "c"} {
		if _, err := c.CreateDevice(ctx, &service.Device{DeviceID: id}); err != nil {
			log.Fatal(err)
		}
	}
	for raw, err := range c.Query(ctx, "SELECT COUNT() AS n FROM devices", 0) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(string(raw))
	}
	// Output: {"n":3}
}

// Read the telemetry the emulator has received so far.
func ExampleClient_Telemetry() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hub, c := startEmulator(ctx)
	defer hub.Close()
	n := 0
	for m, err := range c.Telemetry(ctx, service.StreamOptions{From: service.FromEarliest}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(m.SequenceNumber, m.DeviceID, string(m.Body))
		n++
	}
	fmt.Println(n, "messages")
	// Output: 0 messages
}
