package packet

import "slices"

// Unsubscribe is the UNSUBSCRIBE packet [MQTT-3.10]. Its fixed-header flags
// are 0010 [MQTT-3.10.1-1]. Decode reuses the capacity of Filters, and each
// filter aliases the decoded frame.
type Unsubscribe struct {
	ID      ID
	Filters [][]byte
}

// Type returns TypeUnsubscribe.
func (*Unsubscribe) Type() Type { return TypeUnsubscribe }

func (p *Unsubscribe) remaining() int {
	n := 2
	for _, f := range p.Filters {
		n += 2 + len(f)
	}
	return n
}

// Size returns the encoded length of the packet, fixed header included.
func (p *Unsubscribe) Size() int { r := p.remaining(); return 1 + varintLen(r) + r }

// AppendBinary appends the encoded packet to dst. A zero ID, no filters or
// an invalid filter gives an *EncodeError and dst unchanged.
func (p *Unsubscribe) AppendBinary(dst []byte) ([]byte, error) {
	const t = TypeUnsubscribe
	if p.ID == 0 {
		return dst, encodeErr(t, "packet identifier (zero)", "MQTT-2.3.1-1", ErrProtocol)
	}
	if len(p.Filters) == 0 {
		return dst, encodeErr(t, "no topic filters", "MQTT-3.10.3-2", ErrProtocol)
	}
	for _, f := range p.Filters {
		if err := checkEncFilter(t, f); err != nil {
			return dst, err
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
	for _, f := range p.Filters {
		dst = appendBytes(dst, f)
	}
	return dst, nil
}

// Decode decodes frame, one whole UNSUBSCRIBE packet, into p without
// copying. It requires a non-zero packet identifier [MQTT-2.3.1-1], at
// least one filter [MQTT-3.10.3-2] and valid filters.
func (p *Unsubscribe) Decode(frame []byte) error {
	const t = TypeUnsubscribe
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
		return protocolErr(t, "no topic filters", "MQTT-3.10.3-2")
	}
	for r.off < len(body) {
		f, err := r.filter()
		if err != nil {
			return err
		}
		p.Filters = append(p.Filters, f)
	}
	return nil
}

// MarshalBinary returns the encoded packet in a new slice. Allocates.
func (p *Unsubscribe) MarshalBinary() ([]byte, error) { return marshal(p) }

// UnmarshalBinary decodes a copy of data into p, so p does not alias data.
// Allocates.
func (p *Unsubscribe) UnmarshalBinary(data []byte) error { return unmarshal(p, data) }
