package bench

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang/packets"
)

// pahoCodec is github.com/eclipse/paho.mqtt.golang v1.5.1, package packets,
// used the way its client uses it: packets.ReadPacket(conn) for every
// inbound packet and ControlPacket.Write(conn) for every outbound one. The
// client reads the net.Conn unbuffered; here the conn is an in-memory
// cyclic reader and the writer a reused bytes.Buffer, which flatters paho
// (no syscalls).
var pahoCodec = &codec{
	name:      "paho",
	note:      "paho.mqtt.golang v1.5.1: packets.ReadPacket(io.Reader) / ControlPacket.Write(io.Writer)",
	wire:      pahoMarshal,
	encode:    pahoEncodeBench,
	decode:    pahoDecodeBench,
	stream:    pahoStreamBench,
	marshal:   pahoMarshal,
	unmarshal: pahoUnmarshal,
}

// toPaho builds paho's struct for p.
func toPaho(p *pkt) (paho.ControlPacket, error) {
	cp := paho.NewControlPacket(p.Type)
	switch v := cp.(type) {
	case *paho.ConnectPacket:
		v.ProtocolName, v.ProtocolVersion = p.ProtocolName, p.ProtocolLevel
		v.CleanSession, v.Keepalive, v.ClientIdentifier = p.CleanSession, p.KeepAlive, p.ClientID
		v.WillFlag, v.WillQos, v.WillRetain = p.WillFlag, p.WillQoS, p.WillRetain
		v.WillTopic, v.WillMessage = p.WillTopic, p.WillPayload
		v.UsernameFlag, v.Username = p.UsernameFlag, p.Username
		v.PasswordFlag, v.Password = p.PasswordFlag, p.Password
	case *paho.ConnackPacket:
		v.SessionPresent, v.ReturnCode = p.SessionPresent, p.ReturnCode
	case *paho.PublishPacket:
		v.Dup, v.Qos, v.Retain = p.Dup, p.QoS, p.Retain
		v.TopicName, v.MessageID, v.Payload = p.Topic, p.ID, p.Payload
	case *paho.PubackPacket:
		v.MessageID = p.ID
	case *paho.PubrecPacket:
		v.MessageID = p.ID
	case *paho.PubrelPacket:
		v.MessageID = p.ID
	case *paho.PubcompPacket:
		v.MessageID = p.ID
	case *paho.SubscribePacket:
		v.MessageID = p.ID
		for _, s := range p.Subs {
			v.Topics = append(v.Topics, s.Filter)
			v.Qoss = append(v.Qoss, s.QoS)
		}
	case *paho.SubackPacket:
		v.MessageID, v.ReturnCodes = p.ID, p.ReturnCodes
	case *paho.UnsubscribePacket:
		v.MessageID = p.ID
		for _, s := range p.Subs {
			v.Topics = append(v.Topics, s.Filter)
		}
	case *paho.UnsubackPacket:
		v.MessageID = p.ID
	case *paho.PingreqPacket, *paho.PingrespPacket, *paho.DisconnectPacket:
	default:
		return nil, fmt.Errorf("paho: no packet type %d", p.Type)
	}
	return cp, nil
}

// fromPaho maps a packet paho decoded to the neutral form.
func fromPaho(cp paho.ControlPacket) *pkt {
	switch v := cp.(type) {
	case *paho.ConnectPacket:
		return &pkt{Type: tConnect, ProtocolName: v.ProtocolName, ProtocolLevel: v.ProtocolVersion,
			CleanSession: v.CleanSession, KeepAlive: v.Keepalive, ClientID: v.ClientIdentifier,
			WillFlag: v.WillFlag, WillQoS: v.WillQos, WillRetain: v.WillRetain,
			WillTopic: v.WillTopic, WillPayload: v.WillMessage,
			UsernameFlag: v.UsernameFlag, Username: v.Username,
			PasswordFlag: v.PasswordFlag, Password: v.Password}
	case *paho.ConnackPacket:
		return &pkt{Type: tConnack, SessionPresent: v.SessionPresent, ReturnCode: v.ReturnCode}
	case *paho.PublishPacket:
		return &pkt{Type: tPublish, Dup: v.Dup, QoS: v.Qos, Retain: v.Retain,
			Topic: v.TopicName, ID: v.MessageID, Payload: v.Payload}
	case *paho.PubackPacket:
		return &pkt{Type: tPuback, ID: v.MessageID}
	case *paho.PubrecPacket:
		return &pkt{Type: tPubrec, ID: v.MessageID}
	case *paho.PubrelPacket:
		return &pkt{Type: tPubrel, ID: v.MessageID}
	case *paho.PubcompPacket:
		return &pkt{Type: tPubcomp, ID: v.MessageID}
	case *paho.SubscribePacket:
		p := &pkt{Type: tSubscribe, ID: v.MessageID}
		for i, f := range v.Topics {
			p.Subs = append(p.Subs, sub{Filter: f, QoS: v.Qoss[i]})
		}
		return p
	case *paho.SubackPacket:
		return &pkt{Type: tSuback, ID: v.MessageID, ReturnCodes: v.ReturnCodes}
	case *paho.UnsubscribePacket:
		p := &pkt{Type: tUnsubscribe, ID: v.MessageID}
		for _, f := range v.Topics {
			p.Subs = append(p.Subs, sub{Filter: f})
		}
		return p
	case *paho.UnsubackPacket:
		return &pkt{Type: tUnsuback, ID: v.MessageID}
	case *paho.PingreqPacket:
		return &pkt{Type: tPingreq}
	case *paho.PingrespPacket:
		return &pkt{Type: tPingresp}
	case *paho.DisconnectPacket:
		return &pkt{Type: tDisconnect}
	}
	panic(fmt.Sprintf("paho: unexpected %T", cp))
}

func pahoMarshal(p *pkt) ([]byte, error) {
	cp, err := toPaho(p)
	if err != nil {
		return nil, err
	}
	var w bytes.Buffer
	if err := cp.Write(&w); err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}

// pahoUnmarshal decodes like paho's client (ReadPacket). paho is a client
// library and checks nothing a client would not need, except for CONNECT,
// where ConnectPacket.Validate is the check paho offers to servers built on
// its packets; a code other than Accepted counts as a rejection here.
func pahoUnmarshal(frame []byte) (*pkt, error) {
	return readAllFrom(frame, func(r io.Reader) (*pkt, error) {
		cp, err := paho.ReadPacket(r)
		if err != nil {
			return nil, err
		}
		if c, ok := cp.(*paho.ConnectPacket); ok {
			if code := c.Validate(); code != paho.Accepted {
				return nil, fmt.Errorf("ConnectPacket.Validate: %s", paho.ConnackReturnCodes[code])
			}
		}
		return fromPaho(cp), nil
	})
}

func pahoEncodeBench(b *testing.B, p *pkt) {
	cp, err := toPaho(p)
	if err != nil {
		b.Fatal(err)
	}
	var w bytes.Buffer
	for b.Loop() {
		w.Reset()
		if err := cp.Write(&w); err != nil {
			b.Fatal(err)
		}
	}
	sink = w.Bytes()
}

func pahoDecodeBench(b *testing.B, p *pkt) {
	frame, err := pahoMarshal(p)
	if err != nil {
		b.Fatal(err)
	}
	conn := newCyclicReader(frame)
	for b.Loop() {
		cp, err := paho.ReadPacket(conn)
		if err != nil {
			b.Fatal(err)
		}
		sink = cp
	}
}

func pahoStreamBench(b *testing.B, p *pkt, n int) {
	frame, err := pahoMarshal(p)
	if err != nil {
		b.Fatal(err)
	}
	conn := newCyclicReader(bytes.Repeat(frame, n))
	for b.Loop() {
		for range n {
			cp, err := paho.ReadPacket(conn)
			if err != nil {
				b.Fatal(err)
			}
			pub, ok := cp.(*paho.PublishPacket)
			if !ok || pub.MessageID != p.ID {
				b.Fatalf("stream out of step: %v", cp)
			}
		}
	}
}
