package packet

import "errors"

// MaxRemainingLength is the largest remaining length MQTT 3.1.1 can encode
// in its four-byte variable-length field [MQTT-2.2.3].
const MaxRemainingLength = 268_435_455

// MaxPacketSize is the size of the largest encodable packet: one type byte,
// four remaining-length bytes and MaxRemainingLength bytes of body.
const MaxPacketSize = 1 + 4 + MaxRemainingLength

// Header is an MQTT fixed header [MQTT-2.2].
type Header struct {
	Type      Type // high nibble of byte 0
	Flags     byte // low nibble of byte 0
	Remaining int  // remaining length: bytes after the fixed header
}

// Size returns the length of the whole packet the header introduces,
// fixed header included.
func (h Header) Size() int { return 1 + varintLen(h.Remaining) + h.Remaining }

// requiredFlags holds, per type, the fixed-header flags that type must
// carry [MQTT-2.2.2-1] [MQTT-2.2.2-2]; PUBLISH (flagsVary) is checked apart.
var requiredFlags = [16]byte{
	TypeConnect:     0,
	TypeConnack:     0,
	TypePublish:     flagsVary,
	TypePuback:      0,
	TypePubrec:      0,
	TypePubrel:      0b0010,
	TypePubcomp:     0,
	TypeSubscribe:   0b0010,
	TypeSuback:      0,
	TypeUnsubscribe: 0b0010,
	TypeUnsuback:    0,
	TypePingreq:     0,
	TypePingresp:    0,
	TypeDisconnect:  0,
	0:               flagsReserved,
	15:              flagsReserved,
}

const (
	flagsVary     = 0xF0 // PUBLISH: DUP, QoS and RETAIN carry meaning
	flagsReserved = 0xF1 // types 0 and 15 are reserved and never valid
)

// checkFirstByte validates the packet type and its flags, the part of the
// fixed header that fits in byte 0.
func checkFirstByte(b0 byte) error {
	t := Type(b0 >> 4)
	want := requiredFlags[t]
	switch want {
	case flagsReserved:
		if b0 == 'G' { // "GET / HTTP/1.1" on the MQTT port
			return &DecodeError{Field: "packet type (an HTTP request?)", Rule: "MQTT-2.2.1", Err: ErrProtocol}
		}
		return &DecodeError{Type: t, Field: "packet type (reserved)", Rule: "MQTT-2.2.1", Err: ErrProtocol}
	case flagsVary:
		qos := (b0 >> 1) & 3
		if qos == 3 {
			return protocolErr(t, "QoS (3)", "MQTT-3.3.1-4")
		}
		if qos == 0 && b0&0b1000 != 0 {
			return protocolErr(t, "DUP flag with QoS 0", "MQTT-3.3.1-2")
		}
		return nil
	}
	if b0&0x0F != want {
		if b0 == 'G' { // 0x47: looks like PUBACK with flags 7; almost surely HTTP
			return &DecodeError{Field: "fixed header flags (an HTTP request?)", Rule: "MQTT-2.2.2-2", Err: ErrMalformed}
		}
		return malformed(t, "fixed header flags", "MQTT-2.2.2-2")
	}
	return nil
}

// ParseHeader parses the fixed header at the start of b. It returns the
// header and the number of bytes it occupies (2 to 5).
//
// If b ends before the header does, ParseHeader returns ErrShortBuffer, so a
// stream reader can call it on partial input and read more. Type and flags
// are checked as soon as byte 0 is present: reserved types, wrong flags
// [MQTT-2.2.2-2] and, for PUBLISH, QoS 3 [MQTT-3.3.1-4] or DUP with QoS 0
// [MQTT-3.3.1-2] fail at once, with a *DecodeError.
//
// The remaining length must use the fewest bytes that can hold it. MQTT
// 3.1.1 gives the encoding algorithm but does not forbid padding such as
// 0x80 0x00 for zero; MQTT 5 does [MQTT-1.5.5-1], and accepting it would let
// two byte strings mean one packet. hubwire rejects it as malformed, so every
// packet it accepts has exactly one encoding. A fifth length byte is
// malformed too [MQTT-2.2.3].
func ParseHeader(b []byte) (Header, int, error) {
	if len(b) == 0 {
		return Header{}, 0, ErrShortBuffer
	}
	if err := checkFirstByte(b[0]); err != nil {
		return Header{}, 0, err
	}
	rem, n, err := parseVarint(b[1:])
	if err != nil {
		if err != ErrShortBuffer {
			err = &DecodeError{Type: Type(b[0] >> 4), Field: "remaining length", Rule: rlRule(err), Err: ErrMalformed}
		}
		return Header{}, 0, err
	}
	return Header{Type: Type(b[0] >> 4), Flags: b[0] & 0x0F, Remaining: rem}, 1 + n, nil
}

// Internal markers from parseVarint; callers turn them into *DecodeError.
var (
	errVarintTooLong    = errors.New("remaining length longer than 4 bytes")
	errVarintNonMinimal = errors.New("remaining length not minimally encoded")
)

func rlRule(err error) string {
	if err == errVarintNonMinimal {
		return "MQTT-1.5.5-1"
	}
	return "MQTT-2.2.3"
}

// parseVarint decodes a remaining length. It returns ErrShortBuffer when b
// ends inside the field, errVarintTooLong for a fifth byte and
// errVarintNonMinimal for a padded encoding.
func parseVarint(b []byte) (v, n int, err error) {
	if len(b) > 0 && b[0] < 0x80 { // one byte: the common case
		return int(b[0]), 1, nil
	}
	shift := 0
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, ErrShortBuffer
		}
		c := b[i]
		v |= int(c&0x7F) << shift
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, 0, errVarintNonMinimal
			}
			return v, i + 1, nil
		}
		shift += 7
	}
	return 0, 0, errVarintTooLong
}

// varintLen returns how many bytes the remaining length v takes.
func varintLen(v int) int {
	switch {
	case v < 128:
		return 1
	case v < 16_384:
		return 2
	case v < 2_097_152:
		return 3
	default:
		return 4
	}
}

// appendVarint appends v as a remaining length. v must be in
// [0, MaxRemainingLength].
func appendVarint(dst []byte, v int) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// frameBody checks that frame is exactly one packet of type t (flags checked
// by checkFirstByte) and returns the bytes after the fixed header.
func frameBody(frame []byte, t Type) ([]byte, error) {
	if len(frame) < 2 {
		return nil, malformed(t, "fixed header", "MQTT-2.2")
	}
	if Type(frame[0]>>4) != t {
		return nil, &DecodeError{Type: t, Field: "packet type", Detail: frameIs[frame[0]>>4], Err: ErrMalformed}
	}
	if err := checkFirstByte(frame[0]); err != nil {
		return nil, err
	}
	var rem, n int
	if frame[1] < 0x80 {
		rem, n = int(frame[1]), 1
	} else if len(frame) > 2 && frame[2] < 0x80 && frame[2] != 0 {
		rem, n = int(frame[1]&0x7F)|int(frame[2])<<7, 2
	} else {
		var err error
		rem, n, err = parseVarint(frame[1:])
		if err != nil {
			return nil, &DecodeError{Type: t, Field: "remaining length", Rule: rlRule(err), Err: ErrMalformed}
		}
	}
	body := frame[1+n:]
	if len(body) != rem {
		if len(body) > rem {
			return nil, malformed(t, "trailing bytes after packet", "MQTT-2.2.3")
		}
		return nil, malformed(t, "remaining length (exceeds frame)", "MQTT-2.2.3")
	}
	return body, nil
}
