package emulator_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/hubwire/hubwire/iothub/emulator"
)

// Start a hub in memory on free loopback ports, register a device and get
// the connection string an SDK (or iothub/device) uses. Official SDKs dial
// 8883 and 443: leave MQTTAddr and HTTPSAddr empty for those defaults.
func ExampleStart() {
	ctx := context.Background()
	hub, err := emulator.Start(ctx, emulator.Config{MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer hub.Close()
	if _, err := hub.CreateDevice(ctx, emulator.Device{DeviceID: "dev1"}); err != nil {
		fmt.Println(err)
		return
	}
	cs, _ := hub.DeviceConnectionString("dev1")
	fmt.Println(strings.SplitAfter(cs, "SharedAccessKey=")[0] + "…")
	fmt.Println(strings.SplitAfter(hub.ServiceConnectionString(), "SharedAccessKeyName=iothubowner;")[0] + "…")
	// Output:
	// HostName=localhost;DeviceId=dev1;SharedAccessKey=…
	// HostName=localhost;SharedAccessKeyName=iothubowner;…
}
