package packet

import (
	"errors"
	"testing"
)

// TestDecodeRejects holds one failing input per validation rule. Each case
// names the spec statement it enforces and the error class it must give.
func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name  string
		hex   string
		class error
		rule  string
	}{
		// Fixed header.
		{"reserved-type-0", "00 00", ErrProtocol, "MQTT-2.2.1"},
		{"reserved-type-15", "f0 00", ErrProtocol, "MQTT-2.2.1"},
		{"connect-flags", "11 00", ErrMalformed, "MQTT-2.2.2-2"},
		{"puback-flags", "42 02 0001", ErrMalformed, "MQTT-2.2.2-2"},
		{"pubrel-flags-0000", "60 02 0001", ErrMalformed, "MQTT-2.2.2-2"},               // [MQTT-3.6.1-1]
		{"subscribe-flags-0000", "80 06 0001 0001 61 00", ErrMalformed, "MQTT-2.2.2-2"}, // [MQTT-3.8.1-1]
		{"unsubscribe-flags-0011", "a3 05 0001 0001 61", ErrMalformed, "MQTT-2.2.2-2"},  // [MQTT-3.10.1-1]
		{"pingreq-flags", "c1 00", ErrMalformed, "MQTT-2.2.2-2"},
		{"remaining-length-5-bytes", "30 ff ff ff ff 01", ErrMalformed, "MQTT-2.2.3"},
		{"remaining-length-non-minimal", "c0 80 00", ErrMalformed, "MQTT-1.5.5-1"},
		{"remaining-length-exceeds-frame", "30 07 0001 61", ErrMalformed, "MQTT-2.2.3"},
		{"trailing-bytes-pingreq", "c0 00 00", ErrMalformed, "MQTT-2.2.3"},
		{"truncated-header", "30", ErrMalformed, "MQTT-2.2"},

		// CONNECT.
		{"connect/protocol-name", "10 0c 0004 4d515458 04 02 003c 0000", ErrProtocol, "MQTT-3.1.2-1"},
		{"connect/protocol-level-5", "10 0c 0004 4d515454 05 02 003c 0000", ErrUnsupportedProtocolLevel, "MQTT-3.1.2-2"},
		{"connect/mqtt31", "10 0e 0006 4d5149736470 03 02 003c 0000", ErrUnsupportedProtocolLevel, "MQTT-3.1.2-2"},
		{"connect/reserved-flag", "10 0c 0004 4d515454 04 03 003c 0000", ErrMalformed, "MQTT-3.1.2-3"},
		{"connect/will-qos-without-will", "10 0c 0004 4d515454 04 0a 003c 0000", ErrProtocol, "MQTT-3.1.2-13"},
		{"connect/will-retain-without-will", "10 0c 0004 4d515454 04 22 003c 0000", ErrProtocol, "MQTT-3.1.2-15"},
		{"connect/will-qos-3", "10 11 0004 4d515454 04 1e 003c 0000 0001 77 0000", ErrProtocol, "MQTT-3.1.2-14"},
		{"connect/password-without-username", "10 10 0004 4d515454 04 42 003c 0000 0002 7077", ErrProtocol, "MQTT-3.1.2-22"},
		{"connect/empty-client-id-persistent", "10 0c 0004 4d515454 04 00 003c 0000", ErrClientIDRejected, "MQTT-3.1.3-8"},
		{"connect/client-id-nul", "10 0f 0004 4d515454 04 02 003c 0003 610062", ErrMalformed, "MQTT-1.5.3-2"},
		{"connect/client-id-bad-utf8", "10 0e 0004 4d515454 04 02 003c 0002 c328", ErrMalformed, "MQTT-1.5.3-1"},
		{"connect/client-id-surrogate", "10 0f 0004 4d515454 04 02 003c 0003 eda080", ErrMalformed, "MQTT-1.5.3-1"},
		{"connect/client-id-overruns", "10 0d 0004 4d515454 04 02 003c 0005 61", ErrMalformed, "MQTT-1.5.3"},
		{"connect/will-topic-wildcard", "10 13 0004 4d515454 04 06 003c 0000 0003 612f23 0000", ErrProtocol, "MQTT-3.3.2-2"},
		{"connect/will-missing", "10 0c 0004 4d515454 04 06 003c 0000", ErrMalformed, "MQTT-1.5.3"},
		{"connect/username-bad-utf8", "10 0f 0004 4d515454 04 82 003c 0000 0001 ff", ErrMalformed, "MQTT-1.5.3-1"},
		{"connect/password-overruns", "10 12 0004 4d515454 04 c2 003c 0000 0001 75 0009 70", ErrMalformed, "MQTT-1.5.3"},
		{"connect/trailing", "10 0d 0004 4d515454 04 02 003c 0000 00", ErrMalformed, "MQTT-2.2.3"},
		{"connect/truncated-keepalive", "10 09 0004 4d515454 04 02 00", ErrMalformed, "MQTT-2.2.3"},

		// CONNACK.
		{"connack/reserved-flags", "20 02 02 00", ErrMalformed, "MQTT-3.2.2.1"},
		{"connack/session-present-with-error", "20 02 01 05", ErrProtocol, "MQTT-3.2.2-4"},
		{"connack/reserved-code", "20 02 00 06", ErrProtocol, "MQTT-3.2.2.3"},
		{"connack/length-3", "20 03 00 00 00", ErrMalformed, "MQTT-3.2.1"},

		// PUBLISH.
		{"publish/qos3", "36 05 0001 61 0001", ErrProtocol, "MQTT-3.3.1-4"},
		{"publish/dup-qos0", "38 03 0001 61", ErrProtocol, "MQTT-3.3.1-2"},
		{"publish/zero-packet-id", "32 05 0001 61 0000", ErrProtocol, "MQTT-2.3.1-1"},
		{"publish/empty-topic", "30 02 0000", ErrProtocol, "MQTT-4.7.3-1"},
		{"publish/topic-plus", "30 05 0003 612f2b", ErrProtocol, "MQTT-3.3.2-2"},
		{"publish/topic-hash", "30 05 0003 612f23", ErrProtocol, "MQTT-3.3.2-2"},
		{"publish/topic-hash-long", "30 0c 000a 61616161616161616123", ErrProtocol, "MQTT-3.3.2-2"},
		{"publish/topic-nul", "30 05 0003 610062", ErrMalformed, "MQTT-1.5.3-2"},
		{"publish/topic-nul-long", "30 0c 000a 61616161616161616100", ErrMalformed, "MQTT-1.5.3-2"},
		{"publish/topic-bad-utf8", "30 04 0002 c328", ErrMalformed, "MQTT-1.5.3-1"},
		{"publish/topic-overlong-utf8", "30 04 0002 c0af", ErrMalformed, "MQTT-1.5.3-1"},
		{"publish/topic-overruns", "30 04 0009 6161", ErrMalformed, "MQTT-1.5.3"},
		{"publish/no-topic-length", "30 01 00", ErrMalformed, "MQTT-3.3.2.1"},
		{"publish/qos1-missing-id", "32 03 0001 61", ErrMalformed, "MQTT-1.5.3"},

		// Acknowledgements.
		{"puback/zero-id", "40 02 0000", ErrProtocol, "MQTT-2.3.1-1"},
		{"puback/length-3", "40 03 000100", ErrMalformed, "MQTT-2.3.1"},
		{"pubrec/length-1", "50 01 01", ErrMalformed, "MQTT-2.3.1"},
		{"unsuback/zero-id", "b0 02 0000", ErrProtocol, "MQTT-2.3.1-1"},

		// SUBSCRIBE.
		{"subscribe/no-filters", "82 02 0001", ErrProtocol, "MQTT-3.8.3-3"},
		{"subscribe/zero-id", "82 06 0000 0001 61 00", ErrProtocol, "MQTT-2.3.1-1"},
		{"subscribe/qos-3", "82 06 0001 0001 61 03", ErrMalformed, "MQTT-3.8.3-4"},
		{"subscribe/reserved-qos-bits", "82 06 0001 0001 61 41", ErrMalformed, "MQTT-3.8.3-4"},
		{"subscribe/missing-qos", "82 05 0001 0001 61", ErrMalformed, "MQTT-2.2.3"},
		{"subscribe/hash-not-last", "82 08 0001 0003 232f61 00", ErrProtocol, "MQTT-4.7.1-2"},
		{"subscribe/hash-not-alone", "82 07 0001 0002 6123 00", ErrProtocol, "MQTT-4.7.1-2"},
		{"subscribe/plus-not-alone", "82 07 0001 0002 612b 00", ErrProtocol, "MQTT-4.7.1-3"},
		{"subscribe/empty-filter", "82 05 0001 0000 00", ErrProtocol, "MQTT-4.7.3-1"},
		{"subscribe/filter-nul", "82 07 0001 0002 6100 00", ErrMalformed, "MQTT-1.5.3-2"},
		{"subscribe/filter-overruns", "82 06 0001 0009 61 00", ErrMalformed, "MQTT-1.5.3"},

		// SUBACK.
		{"suback/reserved-code", "90 03 0001 03", ErrProtocol, "MQTT-3.9.3-2"},
		{"suback/no-codes", "90 02 0001", ErrProtocol, "MQTT-3.8.4-5"},

		// UNSUBSCRIBE.
		{"unsubscribe/no-filters", "a2 02 0001", ErrProtocol, "MQTT-3.10.3-2"},
		{"unsubscribe/bad-filter", "a2 06 0001 0002 2361", ErrProtocol, "MQTT-4.7.1-2"},
		{"unsubscribe/filter-bad-utf8", "a2 05 0001 0001 80", ErrMalformed, "MQTT-1.5.3-1"},

		// Empty packets.
		{"disconnect/body", "e0 01 00", ErrMalformed, "MQTT-2.2.3"},
		{"pingresp/body", "d0 02 0000", ErrMalformed, "MQTT-2.2.3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := unhex(t, tc.hex)
			_, err := Decode(b)
			if !errors.Is(err, tc.class) {
				t.Fatalf("Decode(% x) = %v, want %v", b, err, tc.class)
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Rule != tc.rule {
				t.Fatalf("Decode(% x) = %v, want rule %s", b, err, tc.rule)
			}
			// The typed decoder agrees with the generic one, when the
			// type bits name a real packet type.
			if ty := Type(b[0] >> 4); ty.Valid() {
				if err2 := New(ty).Decode(b); err2 == nil || err2.Error() != err.Error() {
					t.Fatalf("%v.Decode = %v, generic Decode = %v", ty, err2, err)
				}
			}
		})
	}
}

// TestEncodeRejects checks that AppendBinary refuses what Decode would
// refuse, leaving dst unchanged.
func TestEncodeRejects(t *testing.T) {
	big := make([]byte, 65536)
	tests := []struct {
		name  string
		p     Packet
		class error
		rule  string
	}{
		{"publish/qos3", &Publish{QoS: 3, ID: 1, Topic: []byte("a")}, ErrProtocol, "MQTT-3.3.1-4"},
		{"publish/dup-qos0", &Publish{Dup: true, Topic: []byte("a")}, ErrProtocol, "MQTT-3.3.1-2"},
		{"publish/id-qos0", &Publish{ID: 4, Topic: []byte("a")}, ErrProtocol, "MQTT-2.3.1-5"},
		{"publish/zero-id", &Publish{QoS: 1, Topic: []byte("a")}, ErrProtocol, "MQTT-2.3.1-1"},
		{"publish/empty-topic", &Publish{}, ErrProtocol, "MQTT-4.7.3-1"},
		{"publish/topic-65536", &Publish{Topic: big}, ErrPacketTooLarge, "MQTT-1.5.3"},
		{"connect/will-qos3", &Connect{CleanSession: true, WillFlag: true, WillQoS: 3, WillTopic: []byte("w")}, ErrProtocol, "MQTT-3.1.2-14"},
		{"connect/will-fields-no-flag", &Connect{CleanSession: true, WillRetain: true}, ErrProtocol, "MQTT-3.1.2-11"},
		{"connect/password-no-username", &Connect{CleanSession: true, PasswordFlag: true, Password: []byte("p")}, ErrProtocol, "MQTT-3.1.2-22"},
		{"connect/username-no-flag", &Connect{CleanSession: true, Username: []byte("u")}, ErrProtocol, "MQTT-3.1.2-18"},
		{"connect/password-no-flag", &Connect{CleanSession: true, UsernameFlag: true, Password: []byte("p")}, ErrProtocol, "MQTT-3.1.2-20"},
		{"connect/empty-id-persistent", &Connect{}, ErrProtocol, "MQTT-3.1.3-7"},
		{"connect/client-id-65536", &Connect{CleanSession: true, ClientID: big}, ErrPacketTooLarge, "MQTT-1.5.3"},
		{"connect/password-65536", &Connect{CleanSession: true, UsernameFlag: true, PasswordFlag: true, Password: big}, ErrPacketTooLarge, "MQTT-1.5.3"},
		{"connect/will-topic-wildcard", &Connect{CleanSession: true, WillFlag: true, WillTopic: []byte("+")}, ErrProtocol, "MQTT-3.3.2-2"},
		{"connack/reserved-code", &Connack{ReturnCode: 6}, ErrProtocol, "MQTT-3.2.2.3"},
		{"connack/session-present-error", &Connack{SessionPresent: true, ReturnCode: 1}, ErrProtocol, "MQTT-3.2.2-4"},
		{"puback/zero", &Puback{}, ErrProtocol, "MQTT-2.3.1-1"},
		{"pubrel/zero", &Pubrel{}, ErrProtocol, "MQTT-2.3.1-1"},
		{"subscribe/none", &Subscribe{ID: 1}, ErrProtocol, "MQTT-3.8.3-3"},
		{"subscribe/zero-id", &Subscribe{Filters: []Subscription{{Filter: []byte("a")}}}, ErrProtocol, "MQTT-2.3.1-1"},
		{"subscribe/bad-filter", &Subscribe{ID: 1, Filters: []Subscription{{Filter: []byte("a#")}}}, ErrProtocol, "MQTT-4.7.1-2"},
		{"subscribe/qos3", &Subscribe{ID: 1, Filters: []Subscription{{Filter: []byte("a"), QoS: 3}}}, ErrMalformed, "MQTT-3.8.3-4"},
		{"suback/reserved", &Suback{ID: 1, ReturnCodes: []byte{3}}, ErrProtocol, "MQTT-3.9.3-2"},
		{"suback/none", &Suback{ID: 1}, ErrProtocol, "MQTT-3.8.4-5"},
		{"unsubscribe/none", &Unsubscribe{ID: 1}, ErrProtocol, "MQTT-3.10.3-2"},
		{"unsubscribe/bad", &Unsubscribe{ID: 1, Filters: [][]byte{[]byte("a+")}}, ErrProtocol, "MQTT-4.7.1-3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := tc.p.AppendBinary(dst)
			if !errors.Is(err, tc.class) {
				t.Fatalf("AppendBinary = %v, want %v", err, tc.class)
			}
			var ee *EncodeError
			if !errors.As(err, &ee) || ee.Rule != tc.rule {
				t.Fatalf("AppendBinary = %v, want rule %s", err, tc.rule)
			}
			if string(out) != "keep" {
				t.Fatalf("dst changed to %q", out)
			}
		})
	}
}

func TestPacketTooLargeEncode(t *testing.T) {
	// A remaining length over 268,435,455 cannot be encoded. Build the
	// payload as a sub-slice of one allocation to keep the test cheap.
	p := &Publish{Topic: []byte("t"), Payload: make([]byte, MaxRemainingLength-2)}
	if _, err := p.AppendBinary(nil); !errors.Is(err, ErrPacketTooLarge) {
		t.Fatalf("err = %v, want ErrPacketTooLarge", err)
	}
}

// TestPublishValidate: AppendBinary trusts a PUBLISH topic's bytes (the hot
// path), and Validate checks them as Decode would.
func TestPublishValidate(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		class error
		rule  string
	}{
		{"wildcard-hash", "a/#", ErrProtocol, "MQTT-3.3.2-2"},
		{"wildcard-plus-long", "devices/+/messages/events/", ErrProtocol, "MQTT-3.3.2-2"},
		{"nul", "a\x00", ErrMalformed, "MQTT-1.5.3-2"},
		{"bad-utf8", "a/\xc3\x28/b/c/d/e", ErrMalformed, "MQTT-1.5.3-1"},
		{"surrogate", "\xed\xa0\x80", ErrMalformed, "MQTT-1.5.3-1"},
		{"empty", "", ErrProtocol, "MQTT-4.7.3-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &Publish{Topic: []byte(tc.topic)}
			err := p.Validate()
			var ee *EncodeError
			if !errors.Is(err, tc.class) || !errors.As(err, &ee) || ee.Rule != tc.rule {
				t.Fatalf("Validate = %v, want %v [%s]", err, tc.class, tc.rule)
			}
			if len(tc.topic) == 0 {
				return
			}
			// The encoder does not scan the topic, but the decoder does:
			// what Validate refuses, Decode refuses too.
			b, err := p.AppendBinary(nil)
			if err != nil {
				t.Fatalf("AppendBinary = %v; it should trust the topic", err)
			}
			if _, err := Decode(b); !errors.Is(err, tc.class) {
				t.Fatalf("Decode = %v, want %v", err, tc.class)
			}
		})
	}
	for _, ok := range []string{"a", "devices/d/messages/events/%24.ct=application%2Fjson", "ü/ö/ä", "$iothub/twin/GET/?$rid=1"} {
		if err := (&Publish{Topic: []byte(ok)}).Validate(); err != nil {
			t.Errorf("Validate(%q) = %v", ok, err)
		}
	}
	if err := (&Publish{QoS: 1, Topic: []byte("a")}).Validate(); !errors.Is(err, ErrProtocol) {
		t.Errorf("Validate without packet id = %v", err)
	}
}

// TestConnectEmptyFieldsWithoutFlags: an empty (non-nil) will topic, user
// name or password with its flag clear is absent, not an error.
func TestConnectEmptyFieldsWithoutFlags(t *testing.T) {
	p := &Connect{CleanSession: true, WillTopic: []byte{}, WillPayload: []byte{}, Username: []byte{}, Password: []byte{}}
	b, err := p.AppendBinary(nil)
	if err != nil {
		t.Fatalf("AppendBinary: %v", err)
	}
	var q Connect
	if err := q.Decode(b); err != nil || q.WillFlag || q.UsernameFlag || q.PasswordFlag || len(b) != p.Size() {
		t.Fatalf("Decode = %+v, %v", q, err)
	}
}
