package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"testing"

	mochi "github.com/mochi-mqtt/server/v2/packets"
)

// mochiCodec is github.com/mochi-mqtt/server/v2 v2.7.9, package packets,
// protocol version 4, used the way mochi's broker uses it (clients.go,
// server.go): reading, Client.ReadFixedHeader + Client.ReadPacket from a
// bufio.Reader of 2 KiB (the default ClientNetReadBufferSize): one byte,
// FixedHeader.Decode, DecodeLength, make the body, io.ReadFull, copy it,
// then the type's XxxDecode, and the XxxValidate that processPacket runs
// for CONNECT, PUBLISH, SUBSCRIBE and UNSUBSCRIBE; writing, WritePacket: a
// new bytes.Buffer per packet and the type's XxxEncode.
var mochiCodec = &codec{
	name:      "mochi",
	note:      "mochi-mqtt/server v2.7.9 as its broker uses it: bufio 2 KiB + ReadFixedHeader/ReadPacket path + Validate; new bytes.Buffer + XxxEncode",
	wire:      mochiMarshal,
	encode:    mochiEncodeBench,
	decode:    mochiDecodeBench,
	stream:    mochiStreamBench,
	marshal:   mochiMarshal,
	unmarshal: mochiUnmarshal,
}

// mochiInplaceCodec is mochi's codec functions alone, the cheapest way to
// call them: encode into one reused bytes.Buffer, decode in place on a
// buffer that already holds the packet (FixedHeader.Decode, DecodeLength,
// XxxDecode on the body; no read, no copy, no Validate); for streams, the
// same decoding in place in a bufio.Reader's buffer (Peek, Discard). It is
// the floor of what mochi's code can do, not a way mochi uses it.
var mochiInplaceCodec = &codec{
	name:   "mochi-inplace",
	note:   "mochi's XxxEncode into a reused bytes.Buffer; XxxDecode in place on a ready buffer, or in a bufio.Reader's buffer for streams (no copy, no Validate)",
	wire:   mochiMarshal,
	encode: mochiInplaceEncodeBench,
	decode: mochiInplaceDecodeBench,
	stream: mochiInplaceStreamBench,
}

// mochiTopicAliasMaximum is the broker's default capability, the argument
// processPacket passes to PublishValidate.
const mochiTopicAliasMaximum = math.MaxUint16

// mochiReadBufferSize is the broker's default ClientNetReadBufferSize.
const mochiReadBufferSize = 2 << 10

func toMochi(p *pkt) mochi.Packet {
	pk := mochi.Packet{
		FixedHeader:     mochi.FixedHeader{Type: p.Type},
		ProtocolVersion: 4,
		PacketID:        p.ID,
	}
	switch p.Type {
	case tConnect:
		pk.ProtocolVersion = p.ProtocolLevel
		pk.Connect = mochi.ConnectParams{
			ProtocolName: []byte(p.ProtocolName), Clean: p.CleanSession,
			Keepalive: p.KeepAlive, ClientIdentifier: p.ClientID,
			WillFlag: p.WillFlag, WillQos: p.WillQoS, WillRetain: p.WillRetain,
			WillTopic: p.WillTopic, WillPayload: p.WillPayload,
			UsernameFlag: p.UsernameFlag, Username: []byte(p.Username),
			PasswordFlag: p.PasswordFlag, Password: p.Password,
		}
	case tConnack:
		pk.SessionPresent, pk.ReasonCode = p.SessionPresent, p.ReturnCode
	case tPublish:
		pk.FixedHeader.Dup, pk.FixedHeader.Qos, pk.FixedHeader.Retain = p.Dup, p.QoS, p.Retain
		pk.TopicName, pk.Payload = p.Topic, p.Payload
	case tPubrel:
		pk.FixedHeader.Qos = 1 // flags 0010 [MQTT-3.6.1-1]
	case tSubscribe, tUnsubscribe:
		pk.FixedHeader.Qos = 1 // flags 0010 [MQTT-3.8.1-1] [MQTT-3.10.1-1]
		for _, s := range p.Subs {
			pk.Filters = append(pk.Filters, mochi.Subscription{Filter: s.Filter, Qos: s.QoS})
		}
	case tSuback:
		pk.ReasonCodes = p.ReturnCodes
	}
	return pk
}

func fromMochi(pk *mochi.Packet) *pkt {
	p := &pkt{Type: pk.FixedHeader.Type}
	switch p.Type {
	case tConnect:
		c := &pk.Connect
		p.ProtocolName, p.ProtocolLevel = string(c.ProtocolName), pk.ProtocolVersion
		p.CleanSession, p.KeepAlive, p.ClientID = c.Clean, c.Keepalive, c.ClientIdentifier
		p.WillFlag, p.WillQoS, p.WillRetain = c.WillFlag, c.WillQos, c.WillRetain
		p.WillTopic, p.WillPayload = c.WillTopic, c.WillPayload
		p.UsernameFlag, p.Username = c.UsernameFlag, string(c.Username)
		p.PasswordFlag, p.Password = c.PasswordFlag, c.Password
	case tConnack:
		p.SessionPresent, p.ReturnCode = pk.SessionPresent, pk.ReasonCode
	case tPublish:
		p.Dup, p.QoS, p.Retain = pk.FixedHeader.Dup, pk.FixedHeader.Qos, pk.FixedHeader.Retain
		p.Topic, p.ID, p.Payload = pk.TopicName, pk.PacketID, pk.Payload
	case tPuback, tPubrec, tPubrel, tPubcomp, tUnsuback:
		p.ID = pk.PacketID
	case tSubscribe:
		p.ID = pk.PacketID
		for _, s := range pk.Filters {
			p.Subs = append(p.Subs, sub{Filter: s.Filter, QoS: s.Qos})
		}
	case tUnsubscribe:
		p.ID = pk.PacketID
		for _, s := range pk.Filters {
			p.Subs = append(p.Subs, sub{Filter: s.Filter})
		}
	case tSuback:
		p.ID, p.ReturnCodes = pk.PacketID, pk.ReasonCodes
	}
	return p
}

// mochiEncode is the type switch of mochi's Client.WritePacket.
func mochiEncode(pk *mochi.Packet, buf *bytes.Buffer) error {
	switch pk.FixedHeader.Type {
	case mochi.Connect:
		return pk.ConnectEncode(buf)
	case mochi.Connack:
		return pk.ConnackEncode(buf)
	case mochi.Publish:
		return pk.PublishEncode(buf)
	case mochi.Puback:
		return pk.PubackEncode(buf)
	case mochi.Pubrec:
		return pk.PubrecEncode(buf)
	case mochi.Pubrel:
		return pk.PubrelEncode(buf)
	case mochi.Pubcomp:
		return pk.PubcompEncode(buf)
	case mochi.Subscribe:
		return pk.SubscribeEncode(buf)
	case mochi.Suback:
		return pk.SubackEncode(buf)
	case mochi.Unsubscribe:
		return pk.UnsubscribeEncode(buf)
	case mochi.Unsuback:
		return pk.UnsubackEncode(buf)
	case mochi.Pingreq:
		return pk.PingreqEncode(buf)
	case mochi.Pingresp:
		return pk.PingrespEncode(buf)
	case mochi.Disconnect:
		return pk.DisconnectEncode(buf)
	}
	return fmt.Errorf("mochi: no packet type %d", pk.FixedHeader.Type)
}

// mochiDecodeBody is the type switch of mochi's Client.ReadPacket.
func mochiDecodeBody(pk *mochi.Packet, body []byte) error {
	switch pk.FixedHeader.Type {
	case mochi.Connect:
		return pk.ConnectDecode(body)
	case mochi.Disconnect:
		return pk.DisconnectDecode(body)
	case mochi.Connack:
		return pk.ConnackDecode(body)
	case mochi.Publish:
		return pk.PublishDecode(body)
	case mochi.Puback:
		return pk.PubackDecode(body)
	case mochi.Pubrec:
		return pk.PubrecDecode(body)
	case mochi.Pubrel:
		return pk.PubrelDecode(body)
	case mochi.Pubcomp:
		return pk.PubcompDecode(body)
	case mochi.Subscribe:
		return pk.SubscribeDecode(body)
	case mochi.Suback:
		return pk.SubackDecode(body)
	case mochi.Unsubscribe:
		return pk.UnsubscribeDecode(body)
	case mochi.Unsuback:
		return pk.UnsubackDecode(body)
	case mochi.Pingreq, mochi.Pingresp:
		return nil
	}
	return fmt.Errorf("invalid packet type; %v", pk.FixedHeader.Type)
}

// mochiValidate runs the checks mochi's Server.processPacket (and, for
// CONNECT, validateConnect) applies before acting on a packet.
func mochiValidate(pk *mochi.Packet) error {
	var code mochi.Code
	switch pk.FixedHeader.Type {
	case mochi.Connect:
		code = pk.ConnectValidate()
	case mochi.Publish:
		code = pk.PublishValidate(mochiTopicAliasMaximum)
	case mochi.Subscribe:
		code = pk.SubscribeValidate()
	case mochi.Unsubscribe:
		code = pk.UnsubscribeValidate()
	default:
		return nil
	}
	if code != mochi.CodeSuccess {
		return code
	}
	return nil
}

// mochiRead reads one packet the way mochi's broker does (ReadFixedHeader
// then ReadPacket, with the client's protocol version 4) and validates it
// like processPacket.
func mochiRead(br *bufio.Reader) (mochi.Packet, error) {
	fh := new(mochi.FixedHeader)
	b, err := br.ReadByte()
	if err != nil {
		return mochi.Packet{}, err
	}
	if err := fh.Decode(b); err != nil {
		return mochi.Packet{}, err
	}
	fh.Remaining, _, err = mochi.DecodeLength(br)
	if err != nil {
		return mochi.Packet{}, err
	}

	var pk mochi.Packet
	pk.ProtocolVersion = 4
	pk.FixedHeader = *fh
	p := make([]byte, pk.FixedHeader.Remaining)
	if _, err := io.ReadFull(br, p); err != nil {
		return pk, err
	}
	px := append([]byte{}, p[:]...) // as ReadPacket: "a fresh copy of the bytes"
	if err := mochiDecodeBody(&pk, px); err != nil {
		return pk, err
	}
	return pk, mochiValidate(&pk)
}

func mochiMarshal(p *pkt) ([]byte, error) {
	pk := toMochi(p)
	buf := new(bytes.Buffer)
	if err := mochiEncode(&pk, buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func mochiUnmarshal(frame []byte) (*pkt, error) {
	r := bytes.NewReader(frame)
	br := bufio.NewReaderSize(r, mochiReadBufferSize)
	pk, err := mochiRead(br)
	if err != nil {
		return nil, err
	}
	if n := r.Len() + br.Buffered(); n != 0 {
		return nil, leftoverError{n}
	}
	return fromMochi(&pk), nil
}

func mochiEncodeBench(b *testing.B, p *pkt) {
	pk := toMochi(p)
	for b.Loop() {
		buf := new(bytes.Buffer) // as Client.WritePacket
		if err := mochiEncode(&pk, buf); err != nil {
			b.Fatal(err)
		}
		sink = buf
	}
}

func mochiInplaceEncodeBench(b *testing.B, p *pkt) {
	pk := toMochi(p)
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := mochiEncode(&pk, &buf); err != nil {
			b.Fatal(err)
		}
	}
	sink = buf.Bytes()
}

func mochiDecodeBench(b *testing.B, p *pkt) {
	frame, err := mochiMarshal(p)
	if err != nil {
		b.Fatal(err)
	}
	br := bufio.NewReaderSize(newCyclicReader(frame), mochiReadBufferSize)
	for b.Loop() {
		pk, err := mochiRead(br)
		if err != nil {
			b.Fatal(err)
		}
		sink = pk.PacketID
	}
}

// mochiHeader decodes the fixed header at the start of buf into pk the way
// mochi does (FixedHeader.Decode, DecodeLength) and returns the remaining
// length and the number of length bytes. lr is the io.ByteReader
// DecodeLength needs; callers keep one so it is not allocated per packet.
func mochiHeader(pk *mochi.Packet, buf []byte, lr *bytes.Reader) (end, rem, n int, err error) {
	// Only the header is reset: XxxDecode overwrites the fields it owns,
	// and clearing the whole (large) Packet would be our cost, not mochi's.
	pk.FixedHeader, pk.ProtocolVersion = mochi.FixedHeader{}, 4
	if len(buf) == 0 {
		return 0, 0, 0, io.ErrUnexpectedEOF
	}
	if err := pk.FixedHeader.Decode(buf[0]); err != nil {
		return 0, 0, 0, err
	}
	lr.Reset(buf[1:])
	rem, n, err = mochi.DecodeLength(lr)
	if err != nil {
		return 0, 0, 0, err
	}
	pk.FixedHeader.Remaining = rem
	return 1 + n + rem, rem, n, nil
}

// mochiInplace decodes the packet at the start of buf in place and returns
// its length.
func mochiInplace(pk *mochi.Packet, buf []byte, lr *bytes.Reader) (int, error) {
	end, _, n, err := mochiHeader(pk, buf, lr)
	if err != nil {
		return 0, err
	}
	if end > len(buf) {
		return 0, io.ErrUnexpectedEOF
	}
	return end, mochiDecodeBody(pk, buf[1+n:end])
}

func mochiInplaceDecodeBench(b *testing.B, p *pkt) {
	frame, err := mochiMarshal(p)
	if err != nil {
		b.Fatal(err)
	}
	var pk mochi.Packet
	lr := new(bytes.Reader)
	for b.Loop() {
		if _, err := mochiInplace(&pk, frame, lr); err != nil {
			b.Fatal(err)
		}
	}
	sink = pk.PacketID
}

func mochiStreamBench(b *testing.B, p *pkt, n int) {
	frame, err := mochiMarshal(p)
	if err != nil {
		b.Fatal(err)
	}
	br := bufio.NewReaderSize(newCyclicReader(bytes.Repeat(frame, n)), mochiReadBufferSize)
	for b.Loop() {
		for range n {
			pk, err := mochiRead(br)
			if err != nil {
				b.Fatal(err)
			}
			if pk.FixedHeader.Type != mochi.Publish || pk.PacketID != p.ID {
				b.Fatalf("stream out of step: %+v", pk.FixedHeader)
			}
		}
	}
}

// mochiInplaceStreamBench gives mochi's decode functions the best stream
// reader they could have: a bufio.Reader as large as hubwire's Reader
// buffer, each packet decoded in place in it (Peek, decode, Discard). Like
// every stream reader it pays the copy from the source; unlike mochi's
// broker it copies nothing else.
func mochiInplaceStreamBench(b *testing.B, p *pkt, n int) {
	frame, err := mochiMarshal(p)
	if err != nil {
		b.Fatal(err)
	}
	br := bufio.NewReaderSize(newCyclicReader(bytes.Repeat(frame, n)), mochiInplaceStreamBuffer)
	var pk mochi.Packet
	lr := new(bytes.Reader)
	for b.Loop() {
		for range n {
			if err := mochiPeekDecode(&pk, br, lr); err != nil {
				b.Fatal(err)
			}
			if pk.PacketID != p.ID {
				b.Fatalf("stream out of step: %+v", pk.FixedHeader)
			}
		}
	}
}

// mochiInplaceStreamBuffer matches hubwire's default Reader buffer (4 KiB).
const mochiInplaceStreamBuffer = 4 << 10

// mochiPeekDecode decodes the next packet of br in place in br's buffer
// and discards it; the packet's slices alias that buffer until the next
// call. Packets must fit the buffer.
func mochiPeekDecode(pk *mochi.Packet, br *bufio.Reader, lr *bytes.Reader) error {
	hdr, err := br.Peek(5) // type byte + up to 4 length bytes
	if len(hdr) < 2 {
		return err
	}
	_, rem, n, err := mochiHeader(pk, hdr, lr)
	if err != nil {
		return err
	}
	whole, err := br.Peek(1 + n + rem)
	if err != nil {
		return err
	}
	if err := mochiDecodeBody(pk, whole[1+n:]); err != nil {
		return err
	}
	_, err = br.Discard(len(whole))
	return err
}
