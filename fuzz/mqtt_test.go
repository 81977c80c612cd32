package fuzz

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// mqttSeeds are broker-to-client byte streams: the packets a broker sends
// after CONNACK, valid and not.
func mqttSeeds() [][]byte {
	enc := func(ps ...packet.Packet) []byte {
		var out []byte
		for _, p := range ps {
			b, err := p.MarshalBinary()
			if err != nil {
				panic(err)
			}
			out = append(out, b...)
		}
		return out
	}
	return [][]byte{
		enc(&packet.Publish{Topic: []byte("a/b"), Payload: []byte("x")}),
		enc(&packet.Publish{QoS: 1, ID: 1, Topic: []byte("a/b"), Payload: []byte("x")}, &packet.Pingresp{}),
		enc(&packet.Publish{QoS: 2, ID: 7, Topic: []byte("q2")}, &packet.Publish{QoS: 2, ID: 7, Dup: true, Topic: []byte("q2")}, &packet.Pubrel{ID: 7}),
		enc(&packet.Puback{ID: 3}, &packet.Pubrec{ID: 4}, &packet.Pubcomp{ID: 5}, &packet.Unsuback{ID: 6}),
		enc(&packet.Suback{ID: 9, ReturnCodes: []byte{0, 1, 0x80}}),
		enc(&packet.Connack{}),
		enc(&packet.Pingreq{}),
		{0x30, 0x80},              // truncated remaining length
		{0x32, 3, 0, 1, 'a'},      // QoS 1 PUBLISH missing its id
		{0x40, 3, 0, 1, 0},        // PUBACK with a body too long
		{0xf0, 0},                 // reserved type
		{0x30, 4, 0, 2, '+', 'a'}, // wildcard in a topic name
	}
}

// FuzzClientStream feeds arbitrary bytes, as if from a broker, to a
// connected mqtt.Client. The client must not panic, must end the connection
// on a protocol violation or end of stream, and Close must return in time.
func FuzzClientStream(f *testing.F) {
	for _, s := range mqttSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cc, sc := net.Pipe()
		defer sc.Close()
		dialed := false
		c, err := mqtt.NewClient(mqtt.Config{
			Dialer: func(context.Context) (net.Conn, error) {
				if dialed {
					return nil, io.EOF
				}
				dialed = true
				return cc, nil
			},
			ClientID:     "fuzz",
			CleanSession: true,
			KeepAlive:    -1,
			Reconnect:    mqtt.Backoff{Disabled: true},
			OnMessage:    func(*mqtt.Message) {},
		})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			r := packet.NewReader(sc, 0)
			if _, err := r.Next(); err != nil { // CONNECT
				return
			}
			if _, err := sc.Write([]byte{0x20, 2, 0, 0}); err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, sc) }() // the client's acknowledgements
			_, _ = sc.Write(data)
			sc.Close()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := c.Connect(ctx); err != nil {
			return
		}
		if err := c.Close(ctx); err != nil && ctx.Err() != nil {
			t.Fatalf("Close did not return in time: %v", err)
		}
	})
}
