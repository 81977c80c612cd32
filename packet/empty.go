package packet

// PINGREQ, PINGRESP and DISCONNECT have no variable header and no payload:
// each is the two bytes {type<<4, 0}.

func decodeEmpty(frame []byte, t Type) error {
	body, err := frameBody(frame, t)
	if err != nil {
		return err
	}
	if len(body) != 0 {
		return malformed(t, "remaining length (must be 0)", "MQTT-2.2.3")
	}
	return nil
}

// Pingreq is the PINGREQ packet [MQTT-3.12], a client's keep-alive probe.
type Pingreq struct{}

// Type returns TypePingreq.
func (*Pingreq) Type() Type { return TypePingreq }

// Size returns 2, the encoded length of every PINGREQ.
func (*Pingreq) Size() int { return 2 }

// AppendBinary appends the two bytes of a PINGREQ to dst.
func (*Pingreq) AppendBinary(dst []byte) ([]byte, error) {
	return append(dst, byte(TypePingreq)<<4, 0), nil
}

// Decode checks that frame is exactly one PINGREQ packet.
func (*Pingreq) Decode(frame []byte) error { return decodeEmpty(frame, TypePingreq) }

// MarshalBinary returns the encoded packet in a new slice. Allocates.
func (p *Pingreq) MarshalBinary() ([]byte, error) { return marshal(p) }

// UnmarshalBinary checks that data is exactly one PINGREQ packet.
func (p *Pingreq) UnmarshalBinary(data []byte) error { return p.Decode(data) }

// Pingresp is the PINGRESP packet [MQTT-3.13], the server's answer to PINGREQ.
type Pingresp struct{}

// Type returns TypePingresp.
func (*Pingresp) Type() Type { return TypePingresp }

// Size returns 2, the encoded length of every PINGRESP.
func (*Pingresp) Size() int { return 2 }

// AppendBinary appends the two bytes of a PINGRESP to dst.
func (*Pingresp) AppendBinary(dst []byte) ([]byte, error) {
	return append(dst, byte(TypePingresp)<<4, 0), nil
}

// Decode checks that frame is exactly one PINGRESP packet.
func (*Pingresp) Decode(frame []byte) error { return decodeEmpty(frame, TypePingresp) }

// MarshalBinary returns the encoded packet in a new slice. Allocates.
func (p *Pingresp) MarshalBinary() ([]byte, error) { return marshal(p) }

// UnmarshalBinary checks that data is exactly one PINGRESP packet.
func (p *Pingresp) UnmarshalBinary(data []byte) error { return p.Decode(data) }

// Disconnect is the DISCONNECT packet [MQTT-3.14], a client's clean goodbye; the server then discards the will [MQTT-3.14.4-3].
type Disconnect struct{}

// Type returns TypeDisconnect.
func (*Disconnect) Type() Type { return TypeDisconnect }

// Size returns 2, the encoded length of every DISCONNECT.
func (*Disconnect) Size() int { return 2 }

// AppendBinary appends the two bytes of a DISCONNECT to dst.
func (*Disconnect) AppendBinary(dst []byte) ([]byte, error) {
	return append(dst, byte(TypeDisconnect)<<4, 0), nil
}

// Decode checks that frame is exactly one DISCONNECT packet.
func (*Disconnect) Decode(frame []byte) error { return decodeEmpty(frame, TypeDisconnect) }

// MarshalBinary returns the encoded packet in a new slice. Allocates.
func (p *Disconnect) MarshalBinary() ([]byte, error) { return marshal(p) }

// UnmarshalBinary checks that data is exactly one DISCONNECT packet.
func (p *Disconnect) UnmarshalBinary(data []byte) error { return p.Decode(data) }
