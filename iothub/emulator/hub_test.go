package emulator_test

import (
	"testing"

	"github.com/hubwire/hubwire/packet"
)

func TestConnectTelemetryBothTransports(t *testing.T) {
	h := newHub(t, "dev1")
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			d := connect(t, h, "dev1", devOpts{transport: tr})
			if err := d.pub("devices/dev1/messages/events/a=1", []byte("hello "+tr), packet.QoS1); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "telemetry", func() bool {
				for _, m := range telemetryOf(t, h, "dev1") {
					if string(m.Body) == "hello "+tr {
						return m.Properties["a"] == "1"
					}
				}
				return false
			})
		})
	}
}
