package packet

import "slices"

// Subscription is one topic filter and the maximum QoS requested for it.
type Subscription struct {
	Filter []byte
	QoS    QoS
}

// Subscribe is the SUBSCRIBE packet [MQTT-3.8]. Its fixed-header flags are
// 0010 [MQTT-3.8.1-1].
//
// Decode reuses the capacity of Filters, so decoding into the same value
// again allocates nothing once it has held as many filters; each Filter
// aliases the decoded frame.
type Subscribe struct {
	ID      ID
	Filters []Subscription
}

// Type returns TypeSubscribe.
func (*Subscribe) Type() Type { return TypeSubscribe }

func (p *Subscribe) remaining() int {
	n := 2
	for i := range p.Filters {
		n += 3 + len(p.Filters[i].Filter)
	}
	return n
}

// Size returns the encoded length of the packet, fixed header included.
func (p *Subscribe) Size() int { r := p.remaining(); return 1 + varintLen(r) + r }

// AppendBinary appends the encoded packet to dst. A zero ID, no filters, an
// invalid filter or QoS gives an *EncodeError and dst unchanged.
func (p *Subscribe) AppendBinary(dst []byte) ([]byte, error) {
	const t = TypeSubscribe
	if p.ID == 0 {
		return dst, encodeErr(t, "packet identifier (zero)", "MQTT-2.3.1-1", ErrProtocol)
	}
	if len(p.Filters) == 0 {
		return dst, encodeErr(t, "no topic filters", "MQTT-3.8.3-3", ErrProtocol)
	}
	for i := range p.Filters {
		s := &p.Filters[i]
		if err := checkEncFilter(t, s.Filter); err != nil {
			return dst, err
		}
		if !s.QoS.Valid() {
			return dst, encodeErr(t, "requested QoS", "MQTT-3.8.3-4", ErrMalformed)
		}
	}
	rem := p.remaining()
	if err := checkRemaining(t, rem); err != nil {
		return dst, err
	}
	dst = slices.Grow(dst, 5+rem)
	dst = append(dst, byte(t)<<4|0b0010)
	dst = appendVarint(dst, rem)
	dst = appendU16(dst, uint16(p.ID))
	for i := range p.Filters {
		dst = appendBytes(dst, p.Filters[i].Filter)
		dst = append(dst, byte(p.Filters[i].QoS))
	}
	return dst, nil
}

// Decode decodes frame, one whole SUBSCRIBE packet, into p without copying
// the filters. It requires a non-zero packet identifier [MQTT-2.3.1-1], at
// least one filter [MQTT-3.8.3-3], valid filters ([MQTT-4.7.1-2]
// [MQTT-4.7.1-3], UTF-8 [MQTT-1.5.3]) and requested QoS bytes whose reserved
// bits are zero and whose QoS is at most 2 [MQTT-3.8.3-4].
func (p *Subscribe) Decode(frame []byte) error {
	const t = TypeSubscribe
	body, err := frameBody(frame, t)
	if err != nil {
		return err
	}
	r := reader{b: body, t: t}
	id, err := r.id("packet identifier")
	if err != nil {
		return err
	}
	p.ID = id
	p.Filters = p.Filters[:0]
	if r.off == len(body) {
		return protocolErr(t, "no topic filters", "MQTT-3.8.3-3")
	}
	for r.off < len(body) {
		f, err := r.filter()
		if err != nil {
			return err
		}
		q, err := r.u8("requested QoS")
		if err != nil {
			return err
		}
		if q > 2 {
			return malformed(t, "requested QoS (reserved bits or QoS 3)", "MQTT-3.8.3-4")
		}
		p.Filters = append(p.Filters, Subscription{Filter: f, QoS: QoS(q)})
	}
	return nil
}

// MarshalBinary returns the encoded packet in a new slice. Allocates.
func (p *Subscribe) MarshalBinary() ([]byte, error) { return marshal(p) }

// UnmarshalBinary decodes a copy of data into p, so p does not alias data.
// Allocates.
func (p *Subscribe) UnmarshalBinary(data []byte) error { return unmarshal(p, data) }

// SubackFailure is the SUBACK return code for a refused subscription
// [MQTT-3.9.3].
const SubackFailure byte = 0x80

// Suback is the SUBACK packet [MQTT-3.9]: one return code per filter of the
// SUBSCRIBE it answers, in order [MQTT-3.8.4-5], each the granted QoS (0, 1,
// 2) or SubackFailure. After Decode, ReturnCodes aliases the frame.
type Suback struct {
	ID          ID
	ReturnCodes []byte
}

// Type returns TypeSuback.
func (*Suback) Type() Type { return TypeSuback }

// Size returns the encoded length of the packet, fixed header included.
func (p *Suback) Size() int { r := 2 + len(p.ReturnCodes); return 1 + varintLen(r) + r }

func checkSubackCodes(codes []byte) (int, bool) {
	for i, c := range codes {
		if c > 2 && c != SubackFailure {
			return i, false
		}
	}
	return 0, true
}

// AppendBinary appends the encoded packet to dst. A zero ID, no return
// codes or a code other than 0, 1, 2 and 0x80 is an *EncodeError.
func (p *Suback) AppendBinary(dst []byte) ([]byte, error) {
	const t = TypeSuback
	if p.ID == 0 {
		return dst, encodeErr(t, "packet identifier (zero)", "MQTT-2.3.1-1", ErrProtocol)
	}
	if len(p.ReturnCodes) == 0 {
		return dst, encodeErr(t, "no return codes", "MQTT-3.8.4-5", ErrProtocol)
	}
	if _, ok := checkSubackCodes(p.ReturnCodes); !ok {
		return dst, encodeErr(t, "return code (reserved)", "MQTT-3.9.3-2", ErrProtocol)
	}
	rem := 2 + len(p.ReturnCodes)
	if err := checkRemaining(t, rem); err != nil {
		return dst, err
	}
	dst = slices.Grow(dst, 5+rem)
	dst = append(dst, byte(t)<<4)
	dst = appendVarint(dst, rem)
	dst = appendU16(dst, uint16(p.ID))
	return append(dst, p.ReturnCodes...), nil
}

// Decode decodes frame, one whole SUBACK packet, into p without copying.
// Return codes other than 0, 1, 2 and 0x80 are reserved [MQTT-3.9.3-2];
// a SUBACK without return codes cannot answer any SUBSCRIBE [MQTT-3.8.4-5].
func (p *Suback) Decode(frame []byte) error {
	const t = TypeSuback
	body, err := frameBody(frame, t)
	if err != nil {
		return err
	}
	r := reader{b: body, t: t}
	id, err := r.id("packet identifier")
	if err != nil {
		return err
	}
	codes := r.rest()
	if len(codes) == 0 {
		return protocolErr(t, "no return codes", "MQTT-3.8.4-5")
	}
	if _, ok := checkSubackCodes(codes); !ok {
		return protocolErr(t, "return code (reserved)", "MQTT-3.9.3-2")
	}
	*p = Suback{ID: id, ReturnCodes: codes}
	return nil
}

// MarshalBinary returns the encoded packet in a new slice. Allocates.
func (p *Suback) MarshalBinary() ([]byte, error) { return marshal(p) }

// UnmarshalBinary decodes a copy of data into p, so p does not alias data.
// Allocates.
func (p *Suback) UnmarshalBinary(data []byte) error { return unmarshal(p, data) }
