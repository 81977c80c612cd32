package packet

// Packet is implemented by a pointer to each of the 14 packet types. It is
// the write path's common shape and what Decode returns.
type Packet interface {
	// Type returns the packet's control type.
	Type() Type
	// Size returns the exact encoded length, fixed header included.
	Size() int
	// AppendBinary appends the encoded packet to dst (encoding.BinaryAppender).
	AppendBinary(dst []byte) ([]byte, error)
	// Decode decodes one whole packet, fixed header included, aliasing frame.
	Decode(frame []byte) error
	// MarshalBinary returns the encoded packet in a new slice.
	MarshalBinary() ([]byte, error)
	// UnmarshalBinary decodes a private copy of data.
	UnmarshalBinary(data []byte) error
}

// New returns a new zero packet of type t, or nil if t is not one of the
// 14 packet types. Allocates.
func New(t Type) Packet {
	switch t {
	case TypeConnect:
		return new(Connect)
	case TypeConnack:
		return new(Connack)
	case TypePublish:
		return new(Publish)
	case TypePuback:
		return new(Puback)
	case TypePubrec:
		return new(Pubrec)
	case TypePubrel:
		return new(Pubrel)
	case TypePubcomp:
		return new(Pubcomp)
	case TypeSubscribe:
		return new(Subscribe)
	case TypeSuback:
		return new(Suback)
	case TypeUnsubscribe:
		return new(Unsubscribe)
	case TypeUnsuback:
		return new(Unsuback)
	case TypePingreq:
		return new(Pingreq)
	case TypePingresp:
		return new(Pingresp)
	case TypeDisconnect:
		return new(Disconnect)
	}
	return nil
}

// Decode decodes one whole packet of any type. The packet's []byte fields
// alias frame. Allocates the packet value.
func Decode(frame []byte) (Packet, error) {
	if len(frame) == 0 {
		return nil, malformed(0, "fixed header", "MQTT-2.2")
	}
	if err := checkFirstByte(frame[0]); err != nil {
		return nil, err
	}
	p := New(Type(frame[0] >> 4))
	if err := p.Decode(frame); err != nil {
		return nil, err
	}
	return p, nil
}

func marshal(p Packet) ([]byte, error) {
	b, err := p.AppendBinary(make([]byte, 0, p.Size()))
	if err != nil {
		return nil, err
	}
	return b, nil
}

func unmarshal(p Packet, data []byte) error {
	return p.Decode(append([]byte(nil), data...))
}
