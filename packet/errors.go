package packet

import (
	"errors"
	"strconv"
)

// Sentinel errors. Every error returned by this package for bad input wraps
// exactly one of ErrMalformed, ErrProtocol or ErrPacketTooLarge (and
// ErrUnsupportedProtocolLevel additionally wraps ErrProtocol), so callers
// branch with errors.Is.
var (
	// ErrShortBuffer is returned by ParseHeader when b ends before the fixed
	// header does. It is not a failure: read more bytes and call again.
	ErrShortBuffer = errors.New("packet: short buffer")

	// ErrMalformed means the bytes cannot be a packet: a length runs past
	// the end of the frame, a remaining length takes five bytes, a string
	// is not UTF-8, bytes trail the last field.
	ErrMalformed = errors.New("packet: malformed packet")

	// ErrProtocol means the bytes are well-formed but break a rule of the
	// protocol: reserved flags set, QoS 3, a wildcard in a topic name.
	ErrProtocol = errors.New("packet: protocol violation")

	// ErrPacketTooLarge means a remaining length exceeds the limit the
	// caller set (or the protocol's 268,435,455).
	ErrPacketTooLarge = errors.New("packet: packet too large")

	// ErrUnsupportedProtocolLevel is returned for a CONNECT whose protocol
	// level is not 4. A server answers it with CONNACK
	// ConnackUnacceptableProtocolVersion [MQTT-3.1.2-2]. It wraps
	// ErrProtocol.
	ErrUnsupportedProtocolLevel = &protoLevelError{}
)

type protoLevelError struct{}

func (*protoLevelError) Error() string { return "packet: unsupported protocol level" }
func (*protoLevelError) Unwrap() error { return ErrProtocol }

// DecodeError describes why a packet was rejected. Every field holds a
// constant string, so a rejection costs one small allocation (the
// DecodeError itself) and no formatting: the message is built only when
// Error is called.
type DecodeError struct {
	Type   Type   // packet type being decoded (0 if the header itself failed)
	Field  string // the field being read, e.g. "topic name"
	Detail string // what is wrong with it beyond the class, e.g. "truncated", or ""
	Rule   string // the spec's statement id, e.g. "MQTT-3.3.2-2", if one applies
	Err    error  // ErrMalformed, ErrProtocol, ErrPacketTooLarge or ErrUnsupportedProtocolLevel
}

// Error formats the error as "packet: PUBLISH topic name: protocol
// violation [MQTT-3.3.2-2]", or with a Detail as "packet: PUBACK packet
// identifier (truncated): malformed packet [MQTT-2.2.3]".
func (e *DecodeError) Error() string {
	return string(e.appendTo(make([]byte, 0, 96), "packet: "))
}

// appendTo appends the message with prefix in place of "packet: ".
func (e *DecodeError) appendTo(b []byte, prefix string) []byte {
	b = append(b, prefix...)
	if e.Type != 0 {
		b = append(b, e.Type.String()...)
		b = append(b, ' ')
	}
	b = append(b, e.Field...)
	if e.Detail != "" {
		b = append(b, " ("...)
		b = append(b, e.Detail...)
		b = append(b, ')')
	}
	b = append(b, ": "...)
	msg := "<nil>"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	if len(msg) > 8 && msg[:8] == "packet: " {
		msg = msg[8:]
	}
	b = append(b, msg...)
	if e.Rule != "" {
		b = append(b, " ["...)
		b = append(b, e.Rule...)
		b = append(b, ']')
	}
	return b
}

// Unwrap returns the sentinel class of the error.
func (e *DecodeError) Unwrap() error { return e.Err }

func malformed(t Type, field, rule string) error {
	return &DecodeError{Type: t, Field: field, Rule: rule, Err: ErrMalformed}
}

// malformedDetail is malformed with a Detail, e.g. "truncated".
func malformedDetail(t Type, field, detail, rule string) error {
	return &DecodeError{Type: t, Field: field, Detail: detail, Rule: rule, Err: ErrMalformed}
}

func protocolErr(t Type, field, rule string) error {
	return &DecodeError{Type: t, Field: field, Rule: rule, Err: ErrProtocol}
}

// frameIs holds the Detail of a frame of another type than the decoder's,
// "frame is PUBACK", for each type: constant strings, built once.
var frameIs = func() (d [16]string) {
	for t := range d {
		d[t] = "frame is " + Type(t).String()
	}
	return d
}()

// EncodeError describes a packet value that cannot be encoded, such as a
// PUBLISH with QoS 3 or a string longer than 65,535 bytes.
type EncodeError struct {
	Type  Type
	Field string
	Rule  string
	Err   error // ErrMalformed, ErrProtocol or ErrPacketTooLarge
}

// Error formats the error like DecodeError does, prefixed "packet: encode".
func (e *EncodeError) Error() string {
	d := DecodeError{Type: e.Type, Field: e.Field, Rule: e.Rule, Err: e.Err}
	return string(d.appendTo(make([]byte, 0, 96), "packet: encode "))
}

// Unwrap returns the sentinel class of the error.
func (e *EncodeError) Unwrap() error { return e.Err }

func encodeErr(t Type, field, rule string, class error) error {
	return &EncodeError{Type: t, Field: field, Rule: rule, Err: class}
}

// ConnackCode is the return code of a CONNACK packet [MQTT-3.2.2.3]. A
// non-zero code is an error: it implements error so a client can return it
// directly and callers can test for it with errors.Is or errors.As.
type ConnackCode byte

// The CONNACK return codes of MQTT 3.1.1.
const (
	ConnackAccepted                    ConnackCode = 0
	ConnackUnacceptableProtocolVersion ConnackCode = 1
	ConnackIdentifierRejected          ConnackCode = 2
	ConnackServerUnavailable           ConnackCode = 3
	ConnackBadUsernameOrPassword       ConnackCode = 4
	ConnackNotAuthorized               ConnackCode = 5
)

var connackText = [6]string{
	"connection accepted",
	"unacceptable protocol version",
	"identifier rejected",
	"server unavailable",
	"bad user name or password",
	"not authorized",
}

// Error returns the spec's description of the code, prefixed like every
// error of this package: "packet: CONNACK: not authorized".
func (c ConnackCode) Error() string {
	if int(c) < len(connackText) {
		return "packet: CONNACK: " + connackText[c]
	}
	return "packet: CONNACK: reserved return code " + strconv.Itoa(int(c))
}

// Valid reports whether c is one of the six codes MQTT 3.1.1 defines.
func (c ConnackCode) Valid() bool { return c <= ConnackNotAuthorized }
