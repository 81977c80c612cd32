package packet

import "slices"

// ErrClientIDRejected is returned when decoding a CONNECT with a zero-length
// client id and CleanSession false; a server answers it with CONNACK
// ConnackIdentifierRejected [MQTT-3.1.3-8]. It wraps ErrProtocol.
var ErrClientIDRejected = &clientIDError{}

type clientIDError struct{}

func (*clientIDError) Error() string { return "packet: client id rejected" }
func (*clientIDError) Unwrap() error { return ErrProtocol }

// Connect is the CONNECT packet [MQTT-3.1], the first packet a client sends.
// The protocol name "MQTT" and level 4 are implied: Decode rejects any other
// level with ErrUnsupportedProtocolLevel.
//
// After Decode, the []byte fields alias the decoded frame. Absent optional
// fields are nil; the flags say whether the will, username and password are
// present, since MQTT distinguishes an empty username from none.
type Connect struct {
	CleanSession bool
	KeepAlive    uint16 // seconds; 0 turns keep-alive off
	ClientID     []byte
	WillFlag     bool
	WillQoS      QoS
	WillRetain   bool
	WillTopic    []byte
	WillPayload  []byte
	UsernameFlag bool
	Username     []byte
	PasswordFlag bool
	Password     []byte
}

// Type returns TypeConnect.
func (*Connect) Type() Type { return TypeConnect }

const (
	connectFlagReserved = 1 << 0
	connectFlagClean    = 1 << 1
	connectFlagWill     = 1 << 2
	connectFlagWillQoS  = 3 << 3
	connectFlagRetain   = 1 << 5
	connectFlagPassword = 1 << 6
	connectFlagUsername = 1 << 7
)

// variable header: protocol name (6) + level (1) + flags (1) + keep-alive (2)
const connectVarHeader = 10

func (p *Connect) remaining() int {
	n := connectVarHeader + 2 + len(p.ClientID)
	if p.WillFlag {
		n += 4 + len(p.WillTopic) + len(p.WillPayload)
	}
	if p.UsernameFlag {
		n += 2 + len(p.Username)
	}
	if p.PasswordFlag {
		n += 2 + len(p.Password)
	}
	return n
}

// Size returns the encoded length of the packet, fixed header included.
func (p *Connect) Size() int { r := p.remaining(); return 1 + varintLen(r) + r }

func (p *Connect) check() error {
	const t = TypeConnect
	if err := checkEncString(t, "client id", p.ClientID); err != nil {
		return err
	}
	if len(p.ClientID) == 0 && !p.CleanSession {
		return encodeErr(t, "empty client id with CleanSession false", "MQTT-3.1.3-7", ErrProtocol)
	}
	if p.WillFlag {
		if !p.WillQoS.Valid() {
			return encodeErr(t, "will QoS", "MQTT-3.1.2-14", ErrProtocol)
		}
		if err := checkLen(t, "will topic", p.WillTopic); err != nil {
			return err
		}
		if r, m := checkTopicName(p.WillTopic); r != "" {
			return encodeErr(t, "will topic", r, classOf(m))
		}
		if err := checkLen(t, "will payload", p.WillPayload); err != nil {
			return err
		}
	} else if p.WillQoS != 0 || p.WillRetain || len(p.WillTopic) > 0 || len(p.WillPayload) > 0 {
		return encodeErr(t, "will fields without will flag", "MQTT-3.1.2-11", ErrProtocol)
	}
	if p.UsernameFlag {
		if err := checkEncString(t, "user name", p.Username); err != nil {
			return err
		}
	} else if len(p.Username) > 0 {
		return encodeErr(t, "user name without user name flag", "MQTT-3.1.2-18", ErrProtocol)
	}
	if p.PasswordFlag {
		if !p.UsernameFlag {
			return encodeErr(t, "password without user name", "MQTT-3.1.2-22", ErrProtocol)
		}
		if err := checkLen(t, "password", p.Password); err != nil {
			return err
		}
	} else if len(p.Password) > 0 {
		return encodeErr(t, "password without password flag", "MQTT-3.1.2-20", ErrProtocol)
	}
	return checkRemaining(t, p.remaining())
}

func classOf(isMalformed bool) error {
	if isMalformed {
		return ErrMalformed
	}
	return ErrProtocol
}

// AppendBinary appends the encoded packet to dst. It allocates only when dst
// lacks capacity for Size bytes. It returns an *EncodeError, and dst
// unchanged, for a packet that breaks a rule of the spec.
func (p *Connect) AppendBinary(dst []byte) ([]byte, error) {
	if err := p.check(); err != nil {
		return dst, err
	}
	rem := p.remaining()
	dst = slices.Grow(dst, 1+varintLen(rem)+rem)
	dst = append(dst, byte(TypeConnect)<<4)
	dst = appendVarint(dst, rem)
	var flags byte
	if p.CleanSession {
		flags |= connectFlagClean
	}
	if p.WillFlag {
		flags |= connectFlagWill | byte(p.WillQoS)<<3
		if p.WillRetain {
			flags |= connectFlagRetain
		}
	}
	if p.UsernameFlag {
		flags |= connectFlagUsername
	}
	if p.PasswordFlag {
		flags |= connectFlagPassword
	}
	dst = append(dst, 0, 4, 'M', 'Q', 'T', 'T', 4, flags, byte(p.KeepAlive>>8), byte(p.KeepAlive))
	dst = appendBytes(dst, p.ClientID)
	if p.WillFlag {
		dst = appendBytes(dst, p.WillTopic)
		dst = appendBytes(dst, p.WillPayload)
	}
	if p.UsernameFlag {
		dst = appendBytes(dst, p.Username)
	}
	if p.PasswordFlag {
		dst = appendBytes(dst, p.Password)
	}
	return dst, nil
}

// Decode decodes frame, one whole CONNECT packet with its fixed header,
// into p without copying: p's []byte fields alias frame afterwards.
//
// It checks the protocol name [MQTT-3.1.2-1] and level
// [MQTT-3.1.2-2] (a level other than 4, or MQTT 3.1's "MQIsdp" name with
// level 3, gives ErrUnsupportedProtocolLevel so a server can answer CONNACK
// 1), the reserved flag [MQTT-3.1.2-3], will flag, QoS and retain
// consistency [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-14]
// [MQTT-3.1.2-15], a password without user name [MQTT-3.1.2-22], every
// string's UTF-8 [MQTT-1.5.3], the will topic's wildcards [MQTT-3.3.2-2], a
// zero-length client id with CleanSession false (ErrClientIDRejected,
// [MQTT-3.1.3-8]) and trailing bytes.
func (p *Connect) Decode(frame []byte) error {
	const t = TypeConnect
	body, err := frameBody(frame, t)
	if err != nil {
		return err
	}
	r := reader{b: body, t: t}
	name, err := r.bytes("protocol name")
	if err != nil {
		return err
	}
	level, err := r.u8("protocol level")
	if err != nil {
		return err
	}
	if string(name) != "MQTT" {
		if string(name) == "MQIsdp" && level == 3 {
			return &DecodeError{Type: t, Field: "protocol (MQTT 3.1)", Rule: "MQTT-3.1.2-2", Err: ErrUnsupportedProtocolLevel}
		}
		return protocolErr(t, "protocol name", "MQTT-3.1.2-1")
	}
	if level != 4 {
		return &DecodeError{Type: t, Field: "protocol level", Rule: "MQTT-3.1.2-2", Err: ErrUnsupportedProtocolLevel}
	}
	flags, err := r.u8("connect flags")
	if err != nil {
		return err
	}
	if flags&connectFlagReserved != 0 {
		return malformed(t, "reserved connect flag", "MQTT-3.1.2-3")
	}
	keepAlive, err := r.u16("keep alive")
	if err != nil {
		return err
	}
	// Field by field: a composite literal stored through p is a typed copy
	// with a write-barrier check per slice field, a fifth of the decode.
	p.CleanSession = flags&connectFlagClean != 0
	p.KeepAlive = keepAlive
	p.WillFlag = flags&connectFlagWill != 0
	p.WillQoS = QoS(flags&connectFlagWillQoS) >> 3
	p.WillRetain = flags&connectFlagRetain != 0
	p.UsernameFlag = flags&connectFlagUsername != 0
	p.PasswordFlag = flags&connectFlagPassword != 0
	p.ClientID, p.WillTopic, p.WillPayload, p.Username, p.Password = nil, nil, nil, nil, nil
	if p.WillFlag {
		if p.WillQoS == 3 {
			return protocolErr(t, "will QoS (3)", "MQTT-3.1.2-14")
		}
	} else {
		if p.WillQoS != 0 {
			return protocolErr(t, "will QoS without will flag", "MQTT-3.1.2-13")
		}
		if p.WillRetain {
			return protocolErr(t, "will retain without will flag", "MQTT-3.1.2-15")
		}
	}
	if p.PasswordFlag && !p.UsernameFlag {
		return protocolErr(t, "password flag without user name flag", "MQTT-3.1.2-22")
	}
	if p.ClientID, err = r.string("client id"); err != nil {
		return err
	}
	if len(p.ClientID) == 0 && !p.CleanSession {
		return &DecodeError{Type: t, Field: "empty client id with CleanSession false", Rule: "MQTT-3.1.3-8", Err: ErrClientIDRejected}
	}
	if p.WillFlag {
		if p.WillTopic, err = r.bytes("will topic"); err != nil {
			return err
		}
		if rule, m := checkTopicName(p.WillTopic); rule != "" {
			return classErr(t, "will topic", rule, m)
		}
		if p.WillPayload, err = r.bytes("will message"); err != nil {
			return err
		}
	}
	if p.UsernameFlag {
		if p.Username, err = r.string("user name"); err != nil {
			return err
		}
	}
	if p.PasswordFlag {
		if p.Password, err = r.bytes("password"); err != nil {
			return err
		}
	}
	return r.done()
}

// MarshalBinary returns the encoded packet in a new slice. Allocates.
func (p *Connect) MarshalBinary() ([]byte, error) { return marshal(p) }

// UnmarshalBinary decodes a copy of data into p, so p does not alias data.
// Allocates.
func (p *Connect) UnmarshalBinary(data []byte) error { return unmarshal(p, data) }
