package emulatortest_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/iothub/emulator/emulatortest"
	"github.com/hubwire/hubwire/packet"
	"github.com/hubwire/hubwire/sas"
	"github.com/hubwire/hubwire/transport"
)

func TestNewServesDevicesAndClosesOnCleanup(t *testing.T) {
	var addr string
	t.Run("hub", func(t *testing.T) {
		h := emulatortest.New(t)
		addr = h.MQTTAddr().String()
		cs, err := sas.ParseConnectionString(emulatortest.Device(t, h, "dev1"))
		if err != nil || cs.HostName != "localhost" || cs.DeviceID != "dev1" {
			t.Fatalf("connection string %v %v", cs, err)
		}
		if _, err := sas.ParseConnectionString(emulatortest.Module(t, h, "dev2", "m1")); err != nil {
			t.Fatal(err)
		}
		tok, err := cs.NewToken(time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, url := range []string{h.MQTTURL(), h.WebSocketURL()} {
			c, err := transport.Dial(ctx, url, transport.Config{TLS: h.TLSConfig()})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := (&packet.Connect{ClientID: []byte("dev1"), CleanSession: true, UsernameFlag: true,
				Username:     []byte((&iothub.Username{Host: "localhost", DeviceID: "dev1"}).String()),
				PasswordFlag: true, Password: []byte(tok.String())}).MarshalBinary()
			c.Write(b)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			p, err := packet.NewReader(c, 0).ReadPacket()
			if err != nil || p.(*packet.Connack).ReturnCode != 0 {
				t.Fatalf("%s: %v %v", url, p, err)
			}
			c.Close()
		}
	})
	// The cleanup closed the hub: its port no longer accepts.
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("hub still listening after the test's cleanup")
	}
}
