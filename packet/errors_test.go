package packet

import (
	"errors"
	"strings"
	"testing"
)

// rejections are inputs whose DecodeError used to be built by string
// concatenation at the point of rejection; each is now constant fields plus
// a Detail, formatted only by Error.
var rejections = []struct {
	name   string
	into   Packet
	frame  string
	class  error
	detail string
	text   string
}{
	{"connect-protocol-name-length-truncated", new(Connect), "10 01 00", ErrMalformed, "length truncated",
		"packet: CONNECT protocol name (length truncated): malformed packet [MQTT-1.5.3]"},
	{"connect-protocol-name-past-end", new(Connect), "10 03 0005 4d", ErrMalformed, "length exceeds packet",
		"packet: CONNECT protocol name (length exceeds packet): malformed packet [MQTT-1.5.3]"},
	{"connect-keep-alive-truncated", new(Connect), "10 09 0004 4d515454 04 02 00", ErrMalformed, "truncated",
		"packet: CONNECT keep alive (truncated): malformed packet [MQTT-2.2.3]"},
	{"subscribe-id-zero", new(Subscribe), "82 06 0000 0001 61 00", ErrProtocol, "zero",
		"packet: SUBSCRIBE packet identifier (zero): protocol violation [MQTT-2.3.1-1]"},
	{"subscribe-qos-truncated", new(Subscribe), "82 05 0001 0001 61", ErrMalformed, "truncated",
		"packet: SUBSCRIBE requested QoS (truncated): malformed packet [MQTT-2.2.3]"},
	{"suback-id-truncated", new(Suback), "90 01 00", ErrMalformed, "truncated",
		"packet: SUBACK packet identifier (truncated): malformed packet [MQTT-2.2.3]"},
	{"puback-given-pubrec", new(Puback), "50 02 0001", ErrMalformed, "frame is PUBREC",
		"packet: PUBACK packet type (frame is PUBREC): malformed packet"},
}

func TestDecodeErrorDetail(t *testing.T) {
	for _, c := range rejections {
		t.Run(c.name, func(t *testing.T) {
			err := c.into.Decode(unhex(t, c.frame))
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode = %v, want a *DecodeError", err)
			}
			if !errors.Is(err, c.class) || de.Detail != c.detail {
				t.Errorf("Decode = %+v, want class %v, Detail %q", de, c.class, c.detail)
			}
			if got := err.Error(); got != c.text {
				t.Errorf("Error() = %q\nwant      %q", got, c.text)
			}
		})
	}
}

// TestErrorPrefix checks that every error text of the package starts
// "packet: ", CONNACK return codes included.
func TestErrorPrefix(t *testing.T) {
	var texts []string
	for c := ConnackCode(0); c < 8; c++ {
		texts = append(texts, c.Error())
	}
	texts = append(texts,
		(&DecodeError{Field: "f", Err: ErrMalformed}).Error(),
		(&DecodeError{Field: "f"}).Error(), // no class: still one line, no panic
		(&EncodeError{Type: TypePuback, Field: "packet identifier (zero)", Err: ErrProtocol}).Error(),
		ErrShortBuffer.Error(), ErrMalformed.Error(), ErrProtocol.Error(),
		ErrPacketTooLarge.Error(), ErrUnsupportedProtocolLevel.Error(), ErrClientIDRejected.Error())
	for _, s := range texts {
		if !strings.HasPrefix(s, "packet: ") || strings.Contains(s, "\n") {
			t.Errorf("%q: want one line starting \"packet: \"", s)
		}
	}
	if got, want := ConnackNotAuthorized.Error(), "packet: CONNACK: not authorized"; got != want {
		t.Errorf("ConnackNotAuthorized.Error() = %q, want %q", got, want)
	}
	if got, want := ConnackCode(9).Error(), "packet: CONNACK: reserved return code 9"; got != want {
		t.Errorf("ConnackCode(9).Error() = %q, want %q", got, want)
	}
	enc := (&EncodeError{Type: TypePuback, Field: "packet identifier (zero)", Rule: "MQTT-2.3.1-1", Err: ErrProtocol}).Error()
	if want := "packet: encode PUBACK packet identifier (zero): protocol violation [MQTT-2.3.1-1]"; enc != want {
		t.Errorf("EncodeError = %q, want %q", enc, want)
	}
}

// BenchmarkDecodeReject measures rejecting malformed input: one allocation,
// the *DecodeError, and no message.
func BenchmarkDecodeReject(b *testing.B) {
	for _, c := range rejections {
		frame := unhex(b, c.frame)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if c.into.Decode(frame) == nil {
					b.Fatal("accepted")
				}
			}
		})
	}
}
