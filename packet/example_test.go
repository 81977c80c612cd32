package packet_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/hubwire/hubwire/packet"
)

// Encoding appends to a buffer the caller owns, so a connection can encode
// packet after packet into one reused slice.
func ExamplePublish_AppendBinary() {
	p := packet.Publish{QoS: packet.QoS1, ID: 10, Topic: []byte("a/b"), Payload: []byte("hi")}
	buf := make([]byte, 0, 64)
	buf, err := p.AppendBinary(buf)
	if err != nil {
		panic(err)
	}
	fmt.Printf("% x\n", buf)
	// Output: 32 09 00 03 61 2f 62 00 0a 68 69
}

// Decode does not copy: Topic and Payload are views of the frame.
func ExamplePublish_Decode() {
	frame := []byte{0x30, 0x06, 0x00, 0x01, 't', 'a', 'b', 'c'}
	var p packet.Publish
	if err := p.Decode(frame); err != nil {
		panic(err)
	}
	fmt.Printf("%s %s qos=%d\n", p.Topic, p.Payload, p.QoS)
	// Output: t abc qos=0
}

// A Reader splits a byte stream into frames; each is valid until the next
// call, so decode (or copy) before reading on.
func ExampleReader() {
	var stream []byte
	stream, _ = (&packet.Publish{Topic: []byte("devices/d1/messages/events/"), Payload: []byte("21.5")}).AppendBinary(stream)
	stream, _ = (&packet.Pingreq{}).AppendBinary(stream)

	r := packet.NewReader(bytes.NewReader(stream), 1<<20)
	var pub packet.Publish
	for {
		f, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		switch f.Type() {
		case packet.TypePublish:
			if err := pub.Decode(f); err != nil {
				panic(err)
			}
			fmt.Printf("PUBLISH %s: %s\n", pub.Topic, pub.Payload)
		default:
			fmt.Println(f.Type())
		}
	}
	// Output:
	// PUBLISH devices/d1/messages/events/: 21.5
	// PINGREQ
}

// Errors name the field and the spec statement, and wrap a class to branch
// on with errors.Is.
func ExampleDecode_error() {
	_, err := packet.Decode([]byte{0x30, 0x05, 0x00, 0x03, 'a', '/', '#'})
	fmt.Println(err)
	fmt.Println(errors.Is(err, packet.ErrProtocol))
	// Output:
	// packet: PUBLISH topic name: protocol violation [MQTT-3.3.2-2]
	// true
}

// A server answers a CONNECT of another protocol level with CONNACK 1.
func ExampleConnect_Decode() {
	frame := []byte{0x10, 0x0c, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 0, 0}
	var c packet.Connect
	err := c.Decode(frame)
	if errors.Is(err, packet.ErrUnsupportedProtocolLevel) {
		ack, _ := (&packet.Connack{ReturnCode: packet.ConnackUnacceptableProtocolVersion}).AppendBinary(nil)
		fmt.Printf("answer % x\n", ack)
	}
	// Output: answer 20 02 00 01
}
