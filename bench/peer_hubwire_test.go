package bench

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/hubwire/hubwire/packet"
)

// hubwireCodec is github.com/hubwire/hubwire/packet (this repository, via
// the replace directive in go.mod): AppendBinary into a reused buffer;
// Decode on one whole frame, zero-copy with full validation; packet.Reader
// (Next, then Decode of the frame) for streams.
var hubwireCodec = &codec{
	name:      "hubwire",
	note:      "hubwire packet: T.AppendBinary into a reused buffer; T.Decode(frame) zero-copy, fully validated; packet.Reader.Next + Decode",
	wire:      hubwireMarshal,
	encode:    hubwireEncodeBench,
	decode:    hubwireDecodeBench,
	stream:    hubwireStreamBench,
	marshal:   hubwireMarshal,
	unmarshal: hubwireUnmarshal,
}

// hubwireMaxPacket is the maximum packet size the stream reader accepts.
const hubwireMaxPacket = 1 << 20

func toHubwire(p *pkt) (packet.Packet, error) {
	switch p.Type {
	case tConnect:
		// hubwire's encoder refuses a non-nil will topic, user name or
		// password whose flag is clear, so fields are set only with flags.
		c := &packet.Connect{
			CleanSession: p.CleanSession, KeepAlive: p.KeepAlive, ClientID: []byte(p.ClientID),
			WillFlag: p.WillFlag, WillQoS: packet.QoS(p.WillQoS), WillRetain: p.WillRetain,
			UsernameFlag: p.UsernameFlag, PasswordFlag: p.PasswordFlag,
		}
		if p.WillFlag {
			c.WillTopic, c.WillPayload = []byte(p.WillTopic), nonNil(p.WillPayload)
		}
		if p.UsernameFlag {
			c.Username = []byte(p.Username)
		}
		if p.PasswordFlag {
			c.Password = nonNil(p.Password)
		}
		return c, nil
	case tConnack:
		return &packet.Connack{SessionPresent: p.SessionPresent, ReturnCode: packet.ConnackCode(p.ReturnCode)}, nil
	case tPublish:
		return &packet.Publish{Dup: p.Dup, QoS: packet.QoS(p.QoS), Retain: p.Retain,
			Topic: []byte(p.Topic), ID: packet.ID(p.ID), Payload: p.Payload}, nil
	case tPuback:
		return &packet.Puback{ID: packet.ID(p.ID)}, nil
	case tPubrec:
		return &packet.Pubrec{ID: packet.ID(p.ID)}, nil
	case tPubrel:
		return &packet.Pubrel{ID: packet.ID(p.ID)}, nil
	case tPubcomp:
		return &packet.Pubcomp{ID: packet.ID(p.ID)}, nil
	case tSubscribe:
		s := &packet.Subscribe{ID: packet.ID(p.ID)}
		for _, f := range p.Subs {
			s.Filters = append(s.Filters, packet.Subscription{Filter: []byte(f.Filter), QoS: packet.QoS(f.QoS)})
		}
		return s, nil
	case tSuback:
		return &packet.Suback{ID: packet.ID(p.ID), ReturnCodes: p.ReturnCodes}, nil
	case tUnsubscribe:
		u := &packet.Unsubscribe{ID: packet.ID(p.ID)}
		for _, f := range p.Subs {
			u.Filters = append(u.Filters, []byte(f.Filter))
		}
		return u, nil
	case tUnsuback:
		return &packet.Unsuback{ID: packet.ID(p.ID)}, nil
	case tPingreq:
		return &packet.Pingreq{}, nil
	case tPingresp:
		return &packet.Pingresp{}, nil
	case tDisconnect:
		return &packet.Disconnect{}, nil
	}
	return nil, fmt.Errorf("hubwire: no packet type %d", p.Type)
}

// nonNil returns b, or an empty non-nil slice for nil.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func fromHubwire(v packet.Packet) *pkt {
	switch v := v.(type) {
	case *packet.Connect:
		return &pkt{Type: tConnect, ProtocolName: "MQTT", ProtocolLevel: 4, // implied by a successful Decode
			CleanSession: v.CleanSession, KeepAlive: v.KeepAlive, ClientID: string(v.ClientID),
			WillFlag: v.WillFlag, WillQoS: byte(v.WillQoS), WillRetain: v.WillRetain,
			WillTopic: string(v.WillTopic), WillPayload: v.WillPayload,
			UsernameFlag: v.UsernameFlag, Username: string(v.Username),
			PasswordFlag: v.PasswordFlag, Password: v.Password}
	case *packet.Connack:
		return &pkt{Type: tConnack, SessionPresent: v.SessionPresent, ReturnCode: byte(v.ReturnCode)}
	case *packet.Publish:
		return &pkt{Type: tPublish, Dup: v.Dup, QoS: byte(v.QoS), Retain: v.Retain,
			Topic: string(v.Topic), ID: uint16(v.ID), Payload: v.Payload}
	case *packet.Puback:
		return &pkt{Type: tPuback, ID: uint16(v.ID)}
	case *packet.Pubrec:
		return &pkt{Type: tPubrec, ID: uint16(v.ID)}
	case *packet.Pubrel:
		return &pkt{Type: tPubrel, ID: uint16(v.ID)}
	case *packet.Pubcomp:
		return &pkt{Type: tPubcomp, ID: uint16(v.ID)}
	case *packet.Subscribe:
		p := &pkt{Type: tSubscribe, ID: uint16(v.ID)}
		for _, f := range v.Filters {
			p.Subs = append(p.Subs, sub{Filter: string(f.Filter), QoS: byte(f.QoS)})
		}
		return p
	case *packet.Suback:
		return &pkt{Type: tSuback, ID: uint16(v.ID), ReturnCodes: v.ReturnCodes}
	case *packet.Unsubscribe:
		p := &pkt{Type: tUnsubscribe, ID: uint16(v.ID)}
		for _, f := range v.Filters {
			p.Subs = append(p.Subs, sub{Filter: string(f)})
		}
		return p
	case *packet.Unsuback:
		return &pkt{Type: tUnsuback, ID: uint16(v.ID)}
	case *packet.Pingreq:
		return &pkt{Type: tPingreq}
	case *packet.Pingresp:
		return &pkt{Type: tPingresp}
	case *packet.Disconnect:
		return &pkt{Type: tDisconnect}
	}
	panic(fmt.Sprintf("hubwire: unexpected %T", v))
}

// hubwireMarshal encodes p and checks that Size predicted the length.
func hubwireMarshal(p *pkt) ([]byte, error) {
	v, err := toHubwire(p)
	if err != nil {
		return nil, err
	}
	b, err := v.AppendBinary(nil)
	if err != nil {
		return nil, err
	}
	if len(b) != v.Size() {
		return nil, fmt.Errorf("hubwire: Size() = %d, AppendBinary wrote %d bytes", v.Size(), len(b))
	}
	return b, nil
}

func hubwireUnmarshal(frame []byte) (*pkt, error) {
	v, err := packet.Decode(frame)
	if err != nil {
		return nil, err
	}
	return fromHubwire(v), nil
}

// The benchmark loops call the concrete types' methods, as a caller that
// knows what it is encoding or has switched on Frame.Type would.

func hubwireEncodeBench(b *testing.B, p *pkt) {
	v, err := toHubwire(p)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, v.Size())
	switch v := v.(type) {
	case *packet.Publish:
		for b.Loop() {
			if buf, err = v.AppendBinary(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	case *packet.Connect:
		for b.Loop() {
			if buf, err = v.AppendBinary(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	case *packet.Subscribe:
		for b.Loop() {
			if buf, err = v.AppendBinary(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	case *packet.Puback:
		for b.Loop() {
			if buf, err = v.AppendBinary(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	default:
		for b.Loop() {
			if buf, err = v.AppendBinary(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	}
	sink = buf
}

func hubwireDecodeBench(b *testing.B, p *pkt) {
	frame, err := hubwireMarshal(p)
	if err != nil {
		b.Fatal(err)
	}
	switch p.Type {
	case tPublish:
		var v packet.Publish
		for b.Loop() {
			if err := v.Decode(frame); err != nil {
				b.Fatal(err)
			}
		}
		sink = v.ID
	case tConnect:
		var v packet.Connect
		for b.Loop() {
			if err := v.Decode(frame); err != nil {
				b.Fatal(err)
			}
		}
		sink = v.KeepAlive
	case tSubscribe:
		var v packet.Subscribe
		for b.Loop() {
			if err := v.Decode(frame); err != nil {
				b.Fatal(err)
			}
		}
		sink = v.ID
	case tPuback:
		var v packet.Puback
		for b.Loop() {
			if err := v.Decode(frame); err != nil {
				b.Fatal(err)
			}
		}
		sink = v.ID
	default:
		v, err := toHubwire(p)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := v.Decode(frame); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func hubwireStreamBench(b *testing.B, p *pkt, n int) {
	frame, err := hubwireMarshal(p)
	if err != nil {
		b.Fatal(err)
	}
	r := packet.NewReader(newCyclicReader(bytes.Repeat(frame, n)), hubwireMaxPacket)
	// Read one packet before timing: the Reader sizes its buffer on first
	// use, and the stream is cyclic, so each iteration still reads n.
	if _, err := r.Next(); err != nil {
		b.Fatal(err)
	}
	var v packet.Publish
	for b.Loop() {
		for range n {
			f, err := r.Next()
			if err != nil {
				b.Fatal(err)
			}
			if err := v.Decode(f); err != nil {
				b.Fatal(err)
			}
			if uint16(v.ID) != p.ID {
				b.Fatalf("stream out of step: id %d", v.ID)
			}
		}
	}
}
