package bench

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	pahov5 "github.com/eclipse/paho.golang/packets"
)

// pahov5Codec is github.com/eclipse/paho.golang v0.23.0, package packets.
// It is an MQTT 5 codec: it cannot speak 3.1.1. Its CONNECT carries level 5
// and every packet with a variable header carries a properties length
// (here 0, one byte), so its bytes for the same logical packet are one byte
// longer and differ from the 3.1.1 encoding. The benchmarks use its own
// encoding of each logical packet; the differential test uses it only
// where 3.1.1 and 5 bytes coincide (see differential_test.go). Its client
// reads with packets.ReadPacket(conn) and writes with WriteTo(conn).
var pahov5Codec = &codec{
	name:   "pahov5",
	note:   "paho.golang v0.23.0 (MQTT 5 codec; its bytes carry a properties length): packets.ReadPacket / WriteTo",
	wire:   pahov5Marshal,
	encode: pahov5EncodeBench,
	decode: pahov5DecodeBench,
	stream: pahov5StreamBench,
	// marshal/unmarshal stay nil: MQTT 5 bytes are not MQTT 3.1.1 bytes.
	// differential_test.go exercises the byte-compatible subset directly.
}

// toPahov5 builds paho.golang's packet for the MQTT 5 equivalent of p
// (same fields, no properties).
func toPahov5(p *pkt) (*pahov5.ControlPacket, error) {
	cp := pahov5.NewControlPacket(p.Type)
	if cp == nil {
		return nil, fmt.Errorf("pahov5: no packet type %d", p.Type)
	}
	switch v := cp.Content.(type) {
	case *pahov5.Connect:
		v.ProtocolName, v.ProtocolVersion = "MQTT", 5
		v.CleanStart, v.KeepAlive, v.ClientID = p.CleanSession, p.KeepAlive, p.ClientID
		v.WillFlag, v.WillQOS, v.WillRetain = p.WillFlag, p.WillQoS, p.WillRetain
		v.WillTopic, v.WillMessage = p.WillTopic, p.WillPayload
		if p.WillFlag {
			v.WillProperties = &pahov5.Properties{}
		}
		v.UsernameFlag, v.Username = p.UsernameFlag, p.Username
		v.PasswordFlag, v.Password = p.PasswordFlag, p.Password
	case *pahov5.Connack:
		v.SessionPresent, v.ReasonCode = p.SessionPresent, p.ReturnCode
	case *pahov5.Publish:
		v.Duplicate, v.QoS, v.Retain = p.Dup, p.QoS, p.Retain
		v.Topic, v.PacketID, v.Payload = p.Topic, p.ID, p.Payload
	case *pahov5.Puback:
		v.PacketID = p.ID
	case *pahov5.Pubrec:
		v.PacketID = p.ID
	case *pahov5.Pubrel:
		v.PacketID = p.ID
	case *pahov5.Pubcomp:
		v.PacketID = p.ID
	case *pahov5.Subscribe:
		v.PacketID = p.ID
		for _, s := range p.Subs {
			v.Subscriptions = append(v.Subscriptions, pahov5.SubOptions{Topic: s.Filter, QoS: s.QoS})
		}
	case *pahov5.Suback:
		v.PacketID, v.Reasons = p.ID, p.ReturnCodes
	case *pahov5.Unsubscribe:
		v.PacketID = p.ID
		for _, s := range p.Subs {
			v.Topics = append(v.Topics, s.Filter)
		}
	case *pahov5.Unsuback:
		v.PacketID = p.ID
	case *pahov5.Pingreq, *pahov5.Pingresp, *pahov5.Disconnect:
	default:
		return nil, fmt.Errorf("pahov5: unexpected %T", cp.Content)
	}
	return cp, nil
}

// fromPahov5 maps a decoded packet to the neutral form, leaving out what
// only MQTT 5 has (properties, reason codes of acks).
func fromPahov5(cp *pahov5.ControlPacket) *pkt {
	switch v := cp.Content.(type) {
	case *pahov5.Connect:
		return &pkt{Type: tConnect, ProtocolName: v.ProtocolName, ProtocolLevel: v.ProtocolVersion,
			CleanSession: v.CleanStart, KeepAlive: v.KeepAlive, ClientID: v.ClientID,
			WillFlag: v.WillFlag, WillQoS: v.WillQOS, WillRetain: v.WillRetain,
			WillTopic: v.WillTopic, WillPayload: v.WillMessage,
			UsernameFlag: v.UsernameFlag, Username: v.Username,
			PasswordFlag: v.PasswordFlag, Password: v.Password}
	case *pahov5.Connack:
		return &pkt{Type: tConnack, SessionPresent: v.SessionPresent, ReturnCode: v.ReasonCode}
	case *pahov5.Publish:
		return &pkt{Type: tPublish, Dup: v.Duplicate, QoS: v.QoS, Retain: v.Retain,
			Topic: v.Topic, ID: v.PacketID, Payload: v.Payload}
	case *pahov5.Puback:
		return &pkt{Type: tPuback, ID: v.PacketID}
	case *pahov5.Pubrec:
		return &pkt{Type: tPubrec, ID: v.PacketID}
	case *pahov5.Pubrel:
		return &pkt{Type: tPubrel, ID: v.PacketID}
	case *pahov5.Pubcomp:
		return &pkt{Type: tPubcomp, ID: v.PacketID}
	case *pahov5.Subscribe:
		p := &pkt{Type: tSubscribe, ID: v.PacketID}
		for _, s := range v.Subscriptions {
			p.Subs = append(p.Subs, sub{Filter: s.Topic, QoS: s.QoS})
		}
		return p
	case *pahov5.Suback:
		return &pkt{Type: tSuback, ID: v.PacketID, ReturnCodes: v.Reasons}
	case *pahov5.Unsubscribe:
		p := &pkt{Type: tUnsubscribe, ID: v.PacketID}
		for _, f := range v.Topics {
			p.Subs = append(p.Subs, sub{Filter: f})
		}
		return p
	case *pahov5.Unsuback:
		return &pkt{Type: tUnsuback, ID: v.PacketID}
	case *pahov5.Pingreq:
		return &pkt{Type: tPingreq}
	case *pahov5.Pingresp:
		return &pkt{Type: tPingresp}
	case *pahov5.Disconnect:
		return &pkt{Type: tDisconnect}
	}
	panic(fmt.Sprintf("pahov5: unexpected %T", cp.Content))
}

func pahov5Marshal(p *pkt) ([]byte, error) {
	cp, err := toPahov5(p)
	if err != nil {
		return nil, err
	}
	var w bytes.Buffer
	if _, err := cp.WriteTo(&w); err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}

// pahov5Read decodes one packet like paho.golang's client does.
func pahov5Read(frame []byte) (*pkt, error) {
	return readAllFrom(frame, func(r io.Reader) (*pkt, error) {
		cp, err := pahov5.ReadPacket(r)
		if err != nil {
			return nil, err
		}
		return fromPahov5(cp), nil
	})
}

// pahov5Writer returns what paho.golang's client writes for p: the
// *packets.Publish etc. it builds, whose WriteTo wraps it in a ControlPacket.
func pahov5Writer(p *pkt) (io.WriterTo, error) {
	cp, err := toPahov5(p)
	if err != nil {
		return nil, err
	}
	if wt, ok := cp.Content.(io.WriterTo); ok {
		return wt, nil
	}
	return cp, nil
}

func pahov5EncodeBench(b *testing.B, p *pkt) {
	wt, err := pahov5Writer(p)
	if err != nil {
		b.Fatal(err)
	}
	var w bytes.Buffer
	for b.Loop() {
		w.Reset()
		if _, err := wt.WriteTo(&w); err != nil {
			b.Fatal(err)
		}
	}
	sink = w.Bytes()
}

func pahov5DecodeBench(b *testing.B, p *pkt) {
	frame, err := pahov5Marshal(p)
	if err != nil {
		b.Fatal(err)
	}
	conn := newCyclicReader(frame)
	for b.Loop() {
		cp, err := pahov5.ReadPacket(conn)
		if err != nil {
			b.Fatal(err)
		}
		sink = cp
	}
}

func pahov5StreamBench(b *testing.B, p *pkt, n int) {
	frame, err := pahov5Marshal(p)
	if err != nil {
		b.Fatal(err)
	}
	conn := newCyclicReader(bytes.Repeat(frame, n))
	for b.Loop() {
		for range n {
			cp, err := pahov5.ReadPacket(conn)
			if err != nil {
				b.Fatal(err)
			}
			pub, ok := cp.Content.(*pahov5.Publish)
			if !ok || pub.PacketID != p.ID {
				b.Fatalf("stream out of step: %v", cp)
			}
		}
	}
}
