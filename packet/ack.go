package packet

// The five packets whose body is a packet identifier and nothing else share
// one implementation: PUBACK, PUBREC, PUBREL, PUBCOMP and UNSUBACK. The
// identifier must be non-zero [MQTT-2.3.1-1].

func appendIDPacket(dst []byte, b0 byte, t Type, id ID) ([]byte, error) {
	if id == 0 {
		return dst, encodeErr(t, "packet identifier (zero)", "MQTT-2.3.1-1", ErrProtocol)
	}
	return append(dst, b0, 2, byte(id>>8), byte(id)), nil
}

func decodeIDPacket(frame []byte, t Type) (ID, error) {
	body, err := frameBody(frame, t)
	if err != nil {
		return 0, err
	}
	if len(body) != 2 {
		return 0, malformed(t, "remaining length (must be 2)", "MQTT-2.3.1")
	}
	id := ID(body[0])<<8 | ID(body[1])
	if id == 0 {
		return 0, protocolErr(t, "packet identifier (zero)", "MQTT-2.3.1-1")
	}
	return id, nil
}

// Puback is the PUBACK packet [MQTT-3.4], the acknowledgement of a QoS 1 PUBLISH.
type Puback struct {
	ID ID
}

// Type returns TypePuback.
func (*Puback) Type() Type { return TypePuback }

// Size returns 4, the encoded length of every PUBACK.
func (*Puback) Size() int { return 4 }

// AppendBinary appends the encoded packet to dst. A zero ID is an
// *EncodeError.
func (p *Puback) AppendBinary(dst []byte) ([]byte, error) {
	return appendIDPacket(dst, byte(TypePuback)<<4, TypePuback, p.ID)
}

// Decode decodes frame, one whole PUBACK packet, into p.
func (p *Puback) Decode(frame []byte) (err error) {
	p.ID, err = decodeIDPacket(frame, TypePuback)
	return err
}

// MarshalBinary returns the encoded packet in a new slice. Allocates.
func (p *Puback) MarshalBinary() ([]byte, error) { return marshal(p) }

// UnmarshalBinary decodes data into p.
func (p *Puback) UnmarshalBinary(data []byte) error { return p.Decode(data) }

// Pubrec is the PUBREC packet [MQTT-3.5], the first acknowledgement of a QoS 2 PUBLISH.
type Pubrec struct {
	ID ID
}

// Type returns TypePubrec.
func (*Pubrec) Type() Type { return TypePubrec }

// Size returns 4, the encoded length of every PUBREC.
func (*Pubrec) Size() int { return 4 }

// AppendBinary appends the encoded packet to dst. A zero ID is an
// *EncodeError.
func (p *Pubrec) AppendBinary(dst []byte) ([]byte, error) {
	return appendIDPacket(dst, byte(TypePubrec)<<4, TypePubrec, p.ID)
}

// Decode decodes frame, one whole PUBREC packet, into p.
func (p *Pubrec) Decode(frame []byte) (err error) {
	p.ID, err = decodeIDPacket(frame, TypePubrec)
	return err
}

// MarshalBinary returns the encoded packet in a new slice. Allocates.
func (p *Pubrec) MarshalBinary() ([]byte, error) { return marshal(p) }

// UnmarshalBinary decodes data into p.
func (p *Pubrec) UnmarshalBinary(data []byte) error { return p.Decode(data) }

// Pubrel is the PUBREL packet [MQTT-3.6], the release of a QoS 2 PUBLISH; its fixed-header flags are 0010 [MQTT-3.6.1-1].
type Pubrel struct {
	ID ID
}

// Type returns TypePubrel.
func (*Pubrel) Type() Type { return TypePubrel }

// Size returns 4, the encoded length of every PUBREL.
func (*Pubrel) Size() int { return 4 }

// AppendBinary appends the encoded packet to dst. A zero ID is an
// *EncodeError.
func (p *Pubrel) AppendBinary(dst []byte) ([]byte, error) {
	return appendIDPacket(dst, byte(TypePubrel)<<4|0b0010, TypePubrel, p.ID)
}

// Decode decodes frame, one whole PUBREL packet, into p.
func (p *Pubrel) Decode(frame []byte) (err error) {
	p.ID, err = decodeIDPacket(frame, TypePubrel)
	return err
}

// MarshalBinary returns the encoded packet in a new slice. Allocates.
func (p *Pubrel) MarshalBinary() ([]byte, error) { return marshal(p) }

// UnmarshalBinary decodes data into p.
func (p *Pubrel) UnmarshalBinary(data []byte) error { return p.Decode(data) }

// Pubcomp is the PUBCOMP packet [MQTT-3.7], the last acknowledgement of a QoS 2 exchange.
type Pubcomp struct {
	ID ID
}

// Type returns TypePubcomp.
func (*Pubcomp) Type() Type { return TypePubcomp }

// Size returns 4, the encoded length of every PUBCOMP.
func (*Pubcomp) Size() int { return 4 }

// AppendBinary appends the encoded packet to dst. A zero ID is an
// *EncodeError.
func (p *Pubcomp) AppendBinary(dst []byte) ([]byte, error) {
	return appendIDPacket(dst, byte(TypePubcomp)<<4, TypePubcomp, p.ID)
}

// Decode decodes frame, one whole PUBCOMP packet, into p.
func (p *Pubcomp) Decode(frame []byte) (err error) {
	p.ID, err = decodeIDPacket(frame, TypePubcomp)
	return err
}

// MarshalBinary returns the encoded packet in a new slice. Allocates.
func (p *Pubcomp) MarshalBinary() ([]byte, error) { return marshal(p) }

// UnmarshalBinary decodes data into p.
func (p *Pubcomp) UnmarshalBinary(data []byte) error { return p.Decode(data) }

// Unsuback is the UNSUBACK packet [MQTT-3.11], the acknowledgement of an UNSUBSCRIBE.
type Unsuback struct {
	ID ID
}

// Type returns TypeUnsuback.
func (*Unsuback) Type() Type { return TypeUnsuback }

// Size returns 4, the encoded length of every UNSUBACK.
func (*Unsuback) Size() int { return 4 }

// AppendBinary appends the encoded packet to dst. A zero ID is an
// *EncodeError.
func (p *Unsuback) AppendBinary(dst []byte) ([]byte, error) {
	return appendIDPacket(dst, byte(TypeUnsuback)<<4, TypeUnsuback, p.ID)
}

// Decode decodes frame, one whole UNSUBACK packet, into p.
func (p *Unsuback) Decode(frame []byte) (err error) {
	p.ID, err = decodeIDPacket(frame, TypeUnsuback)
	return err
}

// MarshalBinary returns the encoded packet in a new slice. Allocates.
func (p *Unsuback) MarshalBinary() ([]byte, error) { return marshal(p) }

// UnmarshalBinary decodes data into p.
func (p *Unsuback) UnmarshalBinary(data []byte) error { return p.Decode(data) }
