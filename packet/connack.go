package packet

// Connack is the CONNACK packet [MQTT-3.2], the server's answer to CONNECT.
type Connack struct {
	SessionPresent bool
	ReturnCode     ConnackCode
}

// Type returns TypeConnack.
func (*Connack) Type() Type { return TypeConnack }

// Size returns 4, the encoded length of every CONNACK.
func (*Connack) Size() int { return 4 }

// AppendBinary appends the encoded packet to dst. A session-present flag
// with a non-zero return code [MQTT-3.2.2-4] or a reserved return code is an
// *EncodeError.
func (p *Connack) AppendBinary(dst []byte) ([]byte, error) {
	if !p.ReturnCode.Valid() {
		return dst, encodeErr(TypeConnack, "return code (reserved)", "MQTT-3.2.2.3", ErrProtocol)
	}
	if p.SessionPresent && p.ReturnCode != ConnackAccepted {
		return dst, encodeErr(TypeConnack, "session present with non-zero return code", "MQTT-3.2.2-4", ErrProtocol)
	}
	var sp byte
	if p.SessionPresent {
		sp = 1
	}
	return append(dst, byte(TypeConnack)<<4, 2, sp, byte(p.ReturnCode)), nil
}

// Decode decodes frame, one whole CONNACK packet, into p. The reserved bits
// of the acknowledge flags must be zero [MQTT-3.2.2.1], session present
// must be 0 with a non-zero return code [MQTT-3.2.2-4], and return codes 6
// to 255 are reserved [MQTT-3.2.2.3].
func (p *Connack) Decode(frame []byte) error {
	const t = TypeConnack
	body, err := frameBody(frame, t)
	if err != nil {
		return err
	}
	if len(body) != 2 {
		return malformed(t, "remaining length (must be 2)", "MQTT-3.2.1")
	}
	if body[0]&^1 != 0 {
		return malformed(t, "reserved acknowledge flags", "MQTT-3.2.2.1")
	}
	code := ConnackCode(body[1])
	if !code.Valid() {
		return protocolErr(t, "return code (reserved)", "MQTT-3.2.2.3")
	}
	if body[0] == 1 && code != ConnackAccepted {
		return protocolErr(t, "session present with non-zero return code", "MQTT-3.2.2-4")
	}
	*p = Connack{SessionPresent: body[0] == 1, ReturnCode: code}
	return nil
}

// MarshalBinary returns the encoded packet in a new slice. Allocates.
func (p *Connack) MarshalBinary() ([]byte, error) { return marshal(p) }

// UnmarshalBinary decodes data into p.
func (p *Connack) UnmarshalBinary(data []byte) error { return p.Decode(data) }
