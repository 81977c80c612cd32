package device

import (
	"context"
	"testing"

	"github.com/hubwire/hubwire/mqtt"
)

// FuzzConfig: any connection string gives a Client or an error matching
// ErrInvalidConfig, never a panic.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"HostName=h;DeviceId=d;SharedAccessKey=" + goodKey,
		"HostName=h;DeviceId=d;ModuleId=m;SharedAccessKey=" + goodKey + ";GatewayHostName=g",
		"HostName=h;DeviceId=d;x509=true",
		"HostName=h;DeviceId=d;SharedAccessSignature=SharedAccessSignature sr=h%2Fdevices%2Fd&sig=AAAA&se=1",
		";;;", "HostName=", "=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cs string) {
		c, err := New(Config{ConnectionString: cs, Address: "127.0.0.1:1", NoProxy: true})
		if err != nil {
			return
		}
		c.Close(context.Background())
	})
}

// FuzzRoute: any topic and payload from the hub is handled (or dropped)
// without a panic, whatever handlers are set.
func FuzzRoute(f *testing.F) {
	for _, s := range []struct{ topic, payload string }{
		{"devices/d/messages/devicebound/%24.mid=1&k=v", "hello"},
		{"devices/d/modules/m/inputs/in/%24.mid=1", "x"},
		{"$iothub/twin/res/200/?$rid=hw1", `{"desired":{"a":1,"$version":2},"reported":{"$version":1}}`},
		{"$iothub/twin/res/204/?$rid=hw2&$version=3", ""},
		{"$iothub/twin/res/429/?$rid=hw1", ""},
		{"$iothub/twin/PATCH/properties/desired/?$version=5", `{"a":null,"$version":5}`},
		{"$iothub/methods/POST/reboot/?$rid=7", `{"delay":1}`},
		{"$iothub/methods/POST//?$rid=", ""},
		{"devices/d/messages/devicebound/=&&=", ""},
		{"nonsense", "\x00\xff"},
	} {
		f.Add(s.topic, []byte(s.payload))
	}
	c, err := New(Config{
		ConnectionString: "HostName=h;DeviceId=d;SharedAccessKey=" + goodKey,
		Address:          "127.0.0.1:1",
		NoProxy:          true,
		OnC2D:            func(ctx context.Context, m *C2DMessage) {},
		OnDesired:        func(u DesiredUpdate) {},
		DefaultMethod: func(ctx context.Context, req MethodRequest) (int, []byte, error) {
			return 200, req.Payload, nil
		},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { c.Close(context.Background()) })
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		c.route(&mqtt.Message{Topic: []byte(topic), Payload: payload, QoS: 1})
	})
}
