package packet

// A client keeps its unacknowledged QoS 1 and 2 packets encoded, exactly as
// they go on the wire (a PUBLISH, or the PUBREL that replaces it once the
// PUBREC arrived), and resends them after a reconnect. The two functions
// below read and adjust such a stored packet in place, without decoding it
// into a Publish and without allocating.

// Stored describes an encoded PUBLISH or PUBREL as a client stores it.
type Stored struct {
	Type Type // TypePublish or TypePubrel
	QoS  QoS  // the PUBLISH's QoS (1 or 2); QoS2 for a PUBREL
	Dup  bool // the PUBLISH's DUP flag
	ID   ID   // the packet identifier
}

// PeekStored reads the fixed header and the packet identifier of pkt, one
// whole encoded PUBLISH with QoS 1 or 2, or one PUBREL: the packets a client
// keeps until they are acknowledged. It checks the fixed header
// [MQTT-2.2.2-2] [MQTT-3.3.1-4], that the frame is exactly one packet, and a
// non-zero identifier [MQTT-2.3.1-1], but not the topic name or payload. Any
// other packet, a QoS 0 PUBLISH included, is a *DecodeError wrapping
// ErrProtocol. It does not allocate unless it fails.
func PeekStored(pkt []byte) (Stored, error) {
	if len(pkt) == 0 {
		return Stored{}, malformed(0, "stored packet (empty)", "MQTT-2.2")
	}
	switch t := Type(pkt[0] >> 4); t {
	case TypePubrel:
		id, err := decodeIDPacket(pkt, TypePubrel)
		if err != nil {
			return Stored{}, err
		}
		return Stored{Type: TypePubrel, QoS: QoS2, ID: id}, nil
	case TypePublish:
		body, err := frameBody(pkt, TypePublish)
		if err != nil {
			return Stored{}, err
		}
		qos := QoS(pkt[0]>>1) & 3
		if qos == QoS0 {
			return Stored{}, protocolErr(t, "stored PUBLISH QoS (0 is never stored)", "MQTT-4.4.0-1")
		}
		if len(body) < 2 {
			return Stored{}, malformed(t, "topic name length (truncated)", "MQTT-3.3.2.1")
		}
		n := int(body[0])<<8 | int(body[1])
		if 4+n > len(body) {
			return Stored{}, malformed(t, "topic name (length exceeds packet)", "MQTT-1.5.3")
		}
		id := ID(body[2+n])<<8 | ID(body[3+n])
		if id == 0 {
			return Stored{}, protocolErr(t, "packet identifier (zero)", "MQTT-2.3.1-1")
		}
		return Stored{Type: TypePublish, QoS: qos, Dup: pkt[0]&0b1000 != 0, ID: id}, nil
	default:
		return Stored{}, protocolErr(t, "stored packet type (must be PUBLISH or PUBREL)", "MQTT-4.4.0-1")
	}
}

// SetDup sets or clears, in place, the DUP flag of pkt, the first byte of an
// encoded PUBLISH: a client sets it when it resends a message on a resumed
// session [MQTT-3.3.1-1] and clears it when it sends the message as new.
// Setting DUP on a QoS 0 PUBLISH is a *DecodeError wrapping ErrProtocol
// [MQTT-3.3.1-2], as is a pkt that does not start with a PUBLISH header;
// pkt is then left unchanged.
func SetDup(pkt []byte, dup bool) error {
	if len(pkt) == 0 || Type(pkt[0]>>4) != TypePublish {
		return protocolErr(TypePublish, "DUP flag (not a PUBLISH)", "MQTT-3.3.1-1")
	}
	if !dup {
		pkt[0] &^= 0b1000
		return nil
	}
	if (pkt[0]>>1)&3 == 0 {
		return protocolErr(TypePublish, "DUP flag with QoS 0", "MQTT-3.3.1-2")
	}
	pkt[0] |= 0b1000
	return nil
}
