package emulator

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/packet"
	"github.com/hubwire/hubwire/sas"
	"github.com/hubwire/hubwire/transport"
)

// FuzzSession feeds arbitrary bytes to an authenticated connection's server
// loop: it must never panic, and must end once the peer closes.
func FuzzSession(f *testing.F) {
	h, err := Start(context.Background(), Config{MQTTAddr: "off", HTTPSAddr: "off"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { h.Close() })
	d, err := h.CreateDevice(context.Background(), Device{DeviceID: "fz"})
	if err != nil {
		f.Fatal(err)
	}
	tok, _ := sas.NewTokenBase64(sas.DeviceResource("localhost", "fz"), d.Authentication.SymmetricKey.PrimaryKey, "", time.Now().Add(24*time.Hour))
	connect, _ := (&packet.Connect{ClientID: []byte("fz"), CleanSession: false, KeepAlive: 60,
		UsernameFlag: true, Username: []byte((&iothub.Username{Host: "localhost", DeviceID: "fz"}).String()),
		PasswordFlag: true, Password: []byte(tok.String())}).MarshalBinary()
	seed := func(ps ...packet.Packet) []byte {
		var b []byte
		for _, p := range ps {
			b, _ = p.AppendBinary(b)
		}
		return b
	}
	f.Add(seed(&packet.Subscribe{ID: 1, Filters: []packet.Subscription{{Filter: []byte("devices/fz/messages/devicebound/#"), QoS: 2}}}))
	f.Add(seed(&packet.Publish{Topic: []byte("devices/fz/messages/events/a=1&%24.mid=x"), QoS: 1, ID: 3, Payload: []byte("hi")}))
	f.Add(seed(&packet.Publish{Topic: []byte("$iothub/twin/PATCH/properties/reported/?$rid=1"), Payload: []byte(`{"a":{"b":null}}`)}))
	f.Add(seed(&packet.Publish{Topic: []byte("$iothub/twin/GET/?$rid=2")}, &packet.Pingreq{}, &packet.Puback{ID: 9}))
	f.Add(seed(&packet.Publish{Topic: []byte("$iothub/methods/res/200/?$rid=zz"), Payload: []byte("{}")}, &packet.Disconnect{}))
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{0xe0, 0x00, 0x10, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		client, server := transport.Pipe(transport.PipeOptions{MaxRead: 7})
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.serveConn(server, "fuzz")
		}()
		go io.Copy(io.Discard, client)
		client.Write(connect)
		client.Write(in)
		client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("server loop did not end after the peer closed")
		}
	})
}

// FuzzHandshake feeds arbitrary bytes as a connection's first packets
// (before authentication): no panic, and the loop ends when the peer closes.
func FuzzHandshake(f *testing.F) {
	h, err := Start(context.Background(), Config{MQTTAddr: "off", HTTPSAddr: "off", HandshakeTimeout: 5 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { h.Close() })
	if _, err := h.CreateDevice(context.Background(), Device{DeviceID: "fz"}); err != nil {
		f.Fatal(err)
	}
	good, _ := (&packet.Connect{ClientID: []byte("fz"), CleanSession: true, UsernameFlag: true,
		Username: []byte("localhost/fz/?api-version=2021-04-12"), PasswordFlag: true,
		Password: []byte("SharedAccessSignature sr=localhost%2Fdevices%2Ffz&sig=AAAA&se=1")}).MarshalBinary()
	f.Add(good)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{0x10, 0x00})
	f.Add(append([]byte{0x10, 0x80, 0x80, 0x80, 0x80, 0x01}, good...))
	f.Fuzz(func(t *testing.T, in []byte) {
		client, server := transport.Pipe(transport.PipeOptions{MaxRead: 5})
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.serveConn(server, "fuzz")
		}()
		go io.Copy(io.Discard, client)
		client.Write(in)
		client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("handshake did not end after the peer closed")
		}
	})
}
