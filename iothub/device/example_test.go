package device_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/hubwire/hubwire/iothub/device"
	"github.com/hubwire/hubwire/iothub/emulator"
)

// localHub starts an in-memory emulator on free loopback ports and
// registers a device (and, with module set, a module). Against IoT Hub the
// examples need only the connection string: Address and RootCAs point
// them at the emulator.
func localHub(deviceID, moduleID string) (hub *emulator.Hub, cfg device.Config) {
	ctx := context.Background()
	hub, err := emulator.Start(ctx, emulator.Config{MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := hub.CreateDevice(ctx, emulator.Device{DeviceID: deviceID}); err != nil {
		log.Fatal(err)
	}
	cs, err := hub.DeviceConnectionString(deviceID)
	if moduleID != "" {
		if _, err := hub.CreateModule(ctx, emulator.Module{DeviceID: deviceID, ModuleID: moduleID}); err != nil {
			log.Fatal(err)
		}
		cs, err = hub.ModuleConnectionString(deviceID, moduleID)
	}
	if err != nil {
		log.Fatal(err)
	}
	return hub, device.Config{ConnectionString: cs, Address: hub.MQTTAddr().String(), RootCAs: hub.CertPool()}
}

// A device's first program: connect with its connection string and send
// one telemetry message.
func Example() {
	hub, cfg := localHub("thermostat-1", "")
	defer hub.Close()

	c, err := device.New(cfg) // device.Config{ConnectionString: "HostName=…;DeviceId=…;SharedAccessKey=…"}
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.Send(ctx, &device.Message{Payload: []byte(`{"temperature":21.5}`)}); err != nil {
		log.Fatal(err)
	}

	got, _ := hub.ReadTelemetry(emulator.Earliest, 10)
	fmt.Printf("hub received %s from %s\n", got[0].Body, got[0].DeviceID)
	// Output: hub received {"temperature":21.5} from thermostat-1
}

// Telemetry with system and application properties. Reusing one Message
// makes a send loop allocation-free.
func ExampleClient_Send() {
	hub, cfg := localHub("sensor-1", "")
	defer hub.Close()
	c, err := device.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	m := &device.Message{}
	m.Properties.ContentType = "application/json"
	m.Properties.ContentEncoding = "utf-8"
	m.Properties.Add("alert", "false")
	for i := range 3 {
		m.Payload = fmt.Appendf(m.Payload[:0], `{"reading":%d}`, i)
		if err := c.Send(ctx, m); err != nil {
			log.Fatal(err)
		}
	}

	got, _ := hub.ReadTelemetry(emulator.Earliest, 10)
	for _, msg := range got {
		fmt.Println(string(msg.Body), msg.SystemProperties["content-type"], msg.Properties["alert"])
	}
	// Output:
	// {"reading":0} application/json false
	// {"reading":1} application/json false
	// {"reading":2} application/json false
}

// Receiving cloud-to-device messages: the handler is set before Connect,
// and each message is completed when it returns.
func ExampleConfig_onC2D() {
	hub, cfg := localHub("lamp-1", "")
	defer hub.Close()
	received := make(chan string, 1)
	cfg.OnC2D = func(ctx context.Context, m *device.C2DMessage) {
		received <- fmt.Sprintf("%s (id %s)", m.Payload, m.Properties.MessageID)
	}
	c, err := device.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	if _, err := hub.SendC2D(ctx, "lamp-1", emulator.C2DMessage{MessageID: "42", Body: []byte("turn on")}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-received)
	// Output: turn on (id 42)
}

// The device twin: desired properties arrive in $version order (the first
// update carries the whole section), reported properties are patched.
func ExampleClient_ReportProperties() {
	hub, cfg := localHub("pump-1", "")
	defer hub.Close()
	ctx := context.Background()
	if _, err := hub.UpdateDesired(ctx, "pump-1", "", []byte(`{"speed":3}`)); err != nil {
		log.Fatal(err)
	}
	updates := make(chan device.DesiredUpdate, 4)
	cfg.OnDesired = func(u device.DesiredUpdate) { updates <- u }
	c, err := device.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	u := <-updates
	fmt.Println("desired version", u.Version, "full:", u.Full, "speed:", u.Patch["speed"])
	if _, err := c.ReportProperties(ctx, map[string]any{"speed": u.Patch["speed"]}); err != nil {
		log.Fatal(err)
	}
	if _, err := hub.UpdateDesired(ctx, "pump-1", "", []byte(`{"speed":5}`)); err != nil {
		log.Fatal(err)
	}
	u = <-updates
	fmt.Println("desired version", u.Version, "speed:", u.Patch["speed"])
	twin, err := c.GetTwin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("reported speed:", twin.Reported.Props["speed"])
	// Output:
	// desired version 2 full: true speed: 3
	// desired version 3 speed: 5
	// reported speed: 3
}

// Direct methods: handlers by name; unknown methods are answered 501.
func ExampleConfig_methods() {
	hub, cfg := localHub("valve-1", "")
	defer hub.Close()
	cfg.Methods = map[string]device.MethodHandler{
		"open": func(ctx context.Context, req device.MethodRequest) (int, []byte, error) {
			return 200, []byte(`{"opened":true}`), nil
		},
	}
	c, err := device.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	for _, name := range []string{"open", "explode"} {
		res, err := hub.InvokeMethod(ctx, emulator.MethodCall{DeviceID: "valve-1", Name: name, ResponseTimeout: 5 * time.Second})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(name, res.Status)
	}
	// Output:
	// open 200
	// explode 501
}

// A module identity (ModuleId in the connection string) sends telemetry and
// uses its own twin and methods, like a device.
func Example_module() {
	hub, cfg := localHub("gateway-1", "filter")
	defer hub.Close()
	c, err := device.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.Send(ctx, &device.Message{Payload: []byte("filtered")}); err != nil {
		log.Fatal(err)
	}
	if _, err := c.ReportProperties(ctx, map[string]any{"ready": true}); err != nil {
		log.Fatal(err)
	}
	got, _ := hub.ReadTelemetry(emulator.Earliest, 10)
	tw, _ := hub.GetTwin("gateway-1", "filter")
	fmt.Println(string(got[0].Body), "from", got[0].DeviceID+"/"+got[0].ModuleID, "ready:", tw.Properties.Reported["ready"])
	// Output: filtered from gateway-1/filter ready: true
}
