package packet

import "slices"

// Publish is the PUBLISH packet [MQTT-3.3], an application message.
//
// After Decode, Topic and Payload alias the decoded frame: they are valid
// only as long as the frame is (for a Reader, until its next call). Use
// Clone to keep a message. An empty payload decodes as nil.
type Publish struct {
	Dup     bool // re-delivery of an earlier attempt; only with QoS > 0
	QoS     QoS
	Retain  bool
	Topic   []byte
	ID      ID // packet identifier; present only when QoS > 0
	Payload []byte
}

// Type returns TypePublish.
func (*Publish) Type() Type { return TypePublish }

func (p *Publish) remaining() int {
	n := 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		n += 2
	}
	return n
}

// Size returns the encoded length of the packet, fixed header included.
func (p *Publish) Size() int { r := p.remaining(); return 1 + varintLen(r) + r }

// encodeError explains why p cannot be encoded; AppendBinary calls it only
// once its combined fast test has failed.
func (p *Publish) encodeError() error {
	const t = TypePublish
	switch {
	case !p.QoS.Valid():
		return encodeErr(t, "QoS (3)", "MQTT-3.3.1-4", ErrProtocol)
	case p.QoS == 0 && p.Dup:
		return encodeErr(t, "DUP flag with QoS 0", "MQTT-3.3.1-2", ErrProtocol)
	case p.QoS == 0 && p.ID != 0:
		return encodeErr(t, "packet identifier with QoS 0", "MQTT-2.3.1-5", ErrProtocol)
	case p.QoS > 0 && p.ID == 0:
		return encodeErr(t, "packet identifier (zero)", "MQTT-2.3.1-1", ErrProtocol)
	case len(p.Topic) == 0:
		return encodeErr(t, "topic name (empty)", "MQTT-4.7.3-1", ErrProtocol)
	case len(p.Topic) > maxString:
		return encodeErr(t, "topic name (longer than 65,535 bytes)", "MQTT-1.5.3", ErrPacketTooLarge)
	}
	return checkRemaining(t, p.remaining())
}

// Validate reports whether p is a PUBLISH that Decode would accept: what
// AppendBinary checks, plus the topic name's bytes (UTF-8, no U+0000, no
// wildcards). Use it on topics that come from untrusted input; the mqtt
// client does so for every topic a caller passes in.
func (p *Publish) Validate() error {
	if err := p.encodeError(); err != nil {
		return err
	}
	if r, m := checkTopicName(p.Topic); r != "" {
		return encodeErr(TypePublish, "topic name", r, classOf(m))
	}
	return nil
}

// AppendBinary appends the encoded packet to dst, allocating only when dst
// lacks capacity for Size bytes. It returns an *EncodeError, and dst
// unchanged, for a QoS of 3, DUP with QoS 0, a packet identifier that is
// zero with QoS > 0 or set with QoS 0, an empty or over-long topic, or a
// packet over the size limit.
//
// PUBLISH is the hot path, so AppendBinary trusts the topic's bytes: it
// does not scan them for invalid UTF-8, U+0000 or wildcards, which would
// cost more than the rest of the encoding. Call Validate (or
// ValidateTopicName) first when the topic comes from outside the program.
func (p *Publish) AppendBinary(dst []byte) ([]byte, error) {
	tl := len(p.Topic)
	rem := 2 + tl + len(p.Payload)
	if p.QoS != 0 {
		rem += 2
	}
	// One test for every encoding rule; encodeError sorts out which failed.
	if p.QoS > 2 || tl == 0 || tl > maxString || rem > MaxRemainingLength ||
		(p.QoS == 0) != (p.ID == 0) || (p.Dup && p.QoS == 0) {
		return dst, p.encodeError()
	}
	size := 1 + varintLen(rem) + rem
	orig := len(dst)
	dst = slices.Grow(dst, size)[:orig+size]
	out := dst[orig:]
	b0 := byte(TypePublish)<<4 | byte(p.QoS)<<1
	if p.Dup {
		b0 |= 0b1000
	}
	if p.Retain {
		b0 |= 1
	}
	out[0] = b0
	i := 1
	for v := rem; ; i++ {
		if v < 0x80 {
			out[i] = byte(v)
			i++
			break
		}
		out[i] = byte(v) | 0x80
		v >>= 7
	}
	out[i], out[i+1] = byte(tl>>8), byte(tl)
	i += 2 + copy(out[i+2:], p.Topic)
	if p.QoS > 0 {
		out[i], out[i+1] = byte(p.ID>>8), byte(p.ID)
		i += 2
	}
	copy(out[i:], p.Payload)
	return dst, nil
}

// Decode decodes frame, one whole PUBLISH packet with its fixed header, into
// p without copying: Topic and Payload alias frame afterwards. It checks the
// QoS [MQTT-3.3.1-4], DUP with QoS 0 [MQTT-3.3.1-2], the topic name (UTF-8
// [MQTT-1.5.3-1], no U+0000 [MQTT-1.5.3-2], not empty [MQTT-4.7.3-1], no
// wildcards [MQTT-3.3.2-2]) and a non-zero packet identifier for QoS > 0
// [MQTT-2.3.1-1]. The payload is opaque and not checked.
func (p *Publish) Decode(frame []byte) error {
	const t = TypePublish
	// Fast path for the fixed header: type PUBLISH, QoS 0 to 2, no DUP
	// without QoS, a one- or two-byte remaining length that matches the
	// frame. Anything else goes through frameBody for the verdict.
	var body []byte
	if len(frame) >= 3 && frame[0]>>4 == byte(t) && (frame[0]>>1)&3 != 3 && frame[0]&0b1110 != 0b1000 {
		if frame[1] < 0x80 && int(frame[1]) == len(frame)-2 {
			body = frame[2:]
		} else if frame[1] >= 0x80 && frame[2] >= 0x01 && frame[2] < 0x80 && int(frame[1]&0x7F)|int(frame[2])<<7 == len(frame)-3 {
			body = frame[3:]
		}
	}
	if body == nil {
		var err error
		if body, err = frameBody(frame, t); err != nil {
			return err
		}
	}
	b0 := frame[0]
	qos := QoS(b0>>1) & 3
	if len(body) < 2 {
		return malformed(t, "topic name length (truncated)", "MQTT-3.3.2.1")
	}
	n := int(body[0])<<8 | int(body[1])
	end := 2 + n
	if qos > 0 {
		end += 2
	}
	if end > len(body) {
		return malformed(t, "topic name (length exceeds packet)", "MQTT-1.5.3")
	}
	topic := body[2 : 2+n : 2+n]
	if r, m := checkTopicName(topic); r != "" {
		return classErr(t, "topic name", r, m)
	}
	var id ID
	if qos > 0 {
		id = ID(body[2+n])<<8 | ID(body[3+n])
		if id == 0 {
			return protocolErr(t, "packet identifier (zero)", "MQTT-2.3.1-1")
		}
	}
	var payload []byte
	if end < len(body) {
		payload = body[end:]
	}
	// Field by field: assigning a composite literal to *p copies a
	// temporary through typedmemmove, which costs more than the decode.
	p.Dup = b0&0b1000 != 0
	p.QoS = qos
	p.Retain = b0&1 != 0
	p.Topic = topic
	p.ID = id
	p.Payload = payload
	return nil
}

// Clone returns a deep copy of p that does not alias any frame, using one
// allocation for topic and payload. Allocates.
func (p *Publish) Clone() *Publish {
	c := *p
	buf := make([]byte, len(p.Topic)+len(p.Payload))
	n := copy(buf, p.Topic)
	copy(buf[n:], p.Payload)
	c.Topic = buf[:n:n]
	c.Payload = nil
	if len(p.Payload) > 0 {
		c.Payload = buf[n:]
	}
	return &c
}

// MarshalBinary returns the encoded packet in a new slice. Allocates.
func (p *Publish) MarshalBinary() ([]byte, error) { return marshal(p) }

// UnmarshalBinary decodes a copy of data into p, so p does not alias data.
// Allocates.
func (p *Publish) UnmarshalBinary(data []byte) error { return unmarshal(p, data) }
