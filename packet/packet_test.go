package packet

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// unhex decodes a hex string, ignoring spaces, so vectors can be written in
// byte groups as the spec draws them.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// roundTripCases covers every packet type with the field combinations that
// change its encoding.
func roundTripCases() []struct {
	name string
	p    Packet
} {
	big := bytes.Repeat([]byte("x"), 20000)
	return []struct {
		name string
		p    Packet
	}{
		{"connect/minimal", &Connect{CleanSession: true}},
		{"connect/client-id", &Connect{ClientID: []byte("dev1"), KeepAlive: 60}},
		{"connect/will-qos1-retain", &Connect{ClientID: []byte("c"), CleanSession: true, WillFlag: true, WillQoS: QoS1, WillRetain: true, WillTopic: []byte("a/b"), WillPayload: []byte("bye")}},
		{"connect/will-empty-payload", &Connect{ClientID: []byte("c"), WillFlag: true, WillQoS: QoS2, WillTopic: []byte("w")}},
		{"connect/username-password", &Connect{ClientID: []byte("c"), UsernameFlag: true, Username: []byte("hub/dev/?api-version=2021-04-12"), PasswordFlag: true, Password: []byte("SharedAccessSignature sr=x")}},
		{"connect/empty-username", &Connect{ClientID: []byte("c"), UsernameFlag: true}},
		{"connect/empty-password", &Connect{ClientID: []byte("c"), UsernameFlag: true, Username: []byte("u"), PasswordFlag: true}},
		{"connect/unicode-client-id", &Connect{ClientID: []byte("gerät-ü-😀")}},
		{"connack/accepted", &Connack{}},
		{"connack/session-present", &Connack{SessionPresent: true}},
		{"connack/not-authorized", &Connack{ReturnCode: ConnackNotAuthorized}},
		{"publish/qos0", &Publish{Topic: []byte("a/b"), Payload: []byte("hello")}},
		{"publish/qos0-empty", &Publish{Topic: []byte("a")}},
		{"publish/qos1-dup-retain", &Publish{QoS: QoS1, Dup: true, Retain: true, Topic: []byte("devices/d/messages/events/"), ID: 1, Payload: []byte{0, 1, 2}}},
		{"publish/qos2", &Publish{QoS: QoS2, Topic: []byte("t"), ID: 65535, Payload: []byte("x")}},
		{"publish/large", &Publish{QoS: QoS1, Topic: []byte("t"), ID: 7, Payload: big}},
		{"puback", &Puback{ID: 1}},
		{"pubrec", &Pubrec{ID: 2}},
		{"pubrel", &Pubrel{ID: 3}},
		{"pubcomp", &Pubcomp{ID: 65535}},
		{"subscribe/one", &Subscribe{ID: 10, Filters: []Subscription{{Filter: []byte("a/+/c"), QoS: QoS1}}}},
		{"subscribe/three", &Subscribe{ID: 11, Filters: []Subscription{{Filter: []byte("#")}, {Filter: []byte("$iothub/twin/res/#"), QoS: QoS0}, {Filter: []byte("+"), QoS: QoS2}}}},
		{"suback", &Suback{ID: 10, ReturnCodes: []byte{0, 1, 2, SubackFailure}}},
		{"unsubscribe", &Unsubscribe{ID: 12, Filters: [][]byte{[]byte("a/#"), []byte("b")}}},
		{"unsuback", &Unsuback{ID: 12}},
		{"pingreq", &Pingreq{}},
		{"pingresp", &Pingresp{}},
		{"disconnect", &Disconnect{}},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range roundTripCases() {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.p.AppendBinary(nil)
			if err != nil {
				t.Fatalf("AppendBinary: %v", err)
			}
			if len(b) != tc.p.Size() {
				t.Fatalf("Size() = %d, encoded %d bytes", tc.p.Size(), len(b))
			}
			// Zero-copy decode into a fresh value of the same type.
			got := New(tc.p.Type())
			if err := got.Decode(b); err != nil {
				t.Fatalf("Decode(% x): %v", b[:min(len(b), 32)], err)
			}
			if diff := cmp.Diff(tc.p, got); diff != "" {
				t.Fatalf("round trip mismatch (-want +got):\n%s", diff)
			}
			// The generic Decode agrees.
			any, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(tc.p, any); diff != "" {
				t.Fatalf("generic Decode mismatch (-want +got):\n%s", diff)
			}
			// MarshalBinary gives the same bytes; UnmarshalBinary copies.
			m, err := tc.p.MarshalBinary()
			if err != nil || !bytes.Equal(m, b) {
				t.Fatalf("MarshalBinary = % x, %v; want % x", m, err, b)
			}
			cp := New(tc.p.Type())
			if err := cp.UnmarshalBinary(m); err != nil {
				t.Fatal(err)
			}
			for i := range m {
				m[i] = 0xFF
			}
			if diff := cmp.Diff(tc.p, cp); diff != "" {
				t.Fatalf("UnmarshalBinary aliased its input (-want +got):\n%s", diff)
			}
			// Appending after existing bytes leaves them alone.
			prefix := []byte("keep")
			b2, err := tc.p.AppendBinary(prefix)
			if err != nil || string(b2[:4]) != "keep" || !bytes.Equal(b2[4:], b) {
				t.Fatalf("AppendBinary with prefix: %v", err)
			}
		})
	}
}

func TestDecodeAliasesFrame(t *testing.T) {
	b, _ := (&Publish{QoS: QoS1, ID: 9, Topic: []byte("a/b"), Payload: []byte("xyz")}).AppendBinary(nil)
	var p Publish
	if err := p.Decode(b); err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] = 'Z'
	if string(p.Payload) != "xyZ" {
		t.Fatalf("payload %q does not alias the frame", p.Payload)
	}
	c := p.Clone()
	b[len(b)-1] = 'Q'
	if string(c.Payload) != "xyZ" || string(c.Topic) != "a/b" {
		t.Fatalf("Clone aliases the frame: %q %q", c.Topic, c.Payload)
	}
}

// TestGolden checks encodings written out by hand from the spec's figures.
func TestGolden(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		p    Packet
	}{
		// §3.1 figure 3.6: CONNECT with protocol "MQTT", level 4, flags
		// (username, password, will QoS 1, will, clean) and keep-alive 10.
		{"connect/spec-figure", "10 22 0004 4d515454 04 ce 000a 0003 636964 0001 77 0002 6869 0004 75736572 0004 70617373",
			&Connect{CleanSession: true, KeepAlive: 10, ClientID: []byte("cid"), WillFlag: true, WillQoS: QoS1, WillTopic: []byte("w"), WillPayload: []byte("hi"),
				UsernameFlag: true, Username: []byte("user"), PasswordFlag: true, Password: []byte("pass")}},
		{"connack/session-present", "20 02 01 00", &Connack{SessionPresent: true}},
		{"connack/code-5", "20 02 00 05", &Connack{ReturnCode: ConnackNotAuthorized}},
		// §3.3 figure 3.11: topic "a/b", packet identifier 10, QoS 1.
		{"publish/spec-figure", "32 07 0003 612f62 000a", &Publish{QoS: QoS1, Topic: []byte("a/b"), ID: 10}},
		{"publish/qos0-retain", "31 06 0001 74 616263", &Publish{Retain: true, Topic: []byte("t"), Payload: []byte("abc")}},
		{"publish/qos2-dup", "3c 05 0001 74 ffff", &Publish{Dup: true, QoS: QoS2, Topic: []byte("t"), ID: 0xFFFF}},
		{"puback", "40 02 0001", &Puback{ID: 1}},
		{"pubrec", "50 02 1234", &Pubrec{ID: 0x1234}},
		{"pubrel", "62 02 1234", &Pubrel{ID: 0x1234}},
		{"pubcomp", "70 02 1234", &Pubcomp{ID: 0x1234}},
		// §3.8 figure 3.22: filters "a/b" QoS 1 and "c/d" QoS 2.
		{"subscribe/spec-figure", "82 0e 000a 0003 612f62 01 0003 632f64 02", &Subscribe{ID: 10, Filters: []Subscription{{Filter: []byte("a/b"), QoS: QoS1}, {Filter: []byte("c/d"), QoS: QoS2}}}},
		// §3.9 figure 3.26: return codes 0, 2, 0x80.
		{"suback/spec-figure", "90 05 000a 00 02 80", &Suback{ID: 10, ReturnCodes: []byte{0, 2, 0x80}}},
		// §3.10 figure 3.30: filters "a/b" and "c/d".
		{"unsubscribe/spec-figure", "a2 0c 000a 0003 612f62 0003 632f64", &Unsubscribe{ID: 10, Filters: [][]byte{[]byte("a/b"), []byte("c/d")}}},
		{"unsuback", "b0 02 000a", &Unsuback{ID: 10}},
		{"pingreq", "c0 00", &Pingreq{}},
		{"pingresp", "d0 00", &Pingresp{}},
		{"disconnect", "e0 00", &Disconnect{}},
		// U+FEFF at the start of a string is kept, not stripped [MQTT-1.5.3-3].
		{"publish/bom-topic", "30 05 0003 efbbbf", &Publish{Topic: []byte("\uFEFF")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.hex)
			got, err := tc.p.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoded\n % x\nwant\n % x", got, want)
			}
			p, err := Decode(want)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.p, p); diff != "" {
				t.Fatalf("decode mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRemainingLengthBoundaries checks the variable-length encoding at each
// byte-count boundary from the table in §2.2.3.
func TestRemainingLengthBoundaries(t *testing.T) {
	tests := []struct {
		v   int
		hex string
	}{
		{0, "00"}, {127, "7f"},
		{128, "8001"}, {16383, "ff7f"},
		{16384, "808001"}, {2097151, "ffff7f"},
		{2097152, "80808001"}, {268435455, "ffffff7f"},
	}
	for _, tc := range tests {
		want := unhex(t, tc.hex)
		if got := appendVarint(nil, tc.v); !bytes.Equal(got, want) {
			t.Errorf("appendVarint(%d) = % x, want % x", tc.v, got, want)
		}
		if varintLen(tc.v) != len(want) {
			t.Errorf("varintLen(%d) = %d, want %d", tc.v, varintLen(tc.v), len(want))
		}
		h, n, err := ParseHeader(append([]byte{0x30}, want...))
		if err != nil || h.Remaining != tc.v || n != 1+len(want) || h.Type != TypePublish {
			t.Errorf("ParseHeader(%d) = %+v, %d, %v", tc.v, h, n, err)
		}
		// Every proper prefix is a short buffer, not an error.
		full := append([]byte{0x30}, want...)
		for i := 0; i < len(full); i++ {
			if _, _, err := ParseHeader(full[:i]); err != ErrShortBuffer {
				t.Errorf("ParseHeader(% x) = %v, want ErrShortBuffer", full[:i], err)
			}
		}
	}
	// Whole packets right at the boundaries round-trip.
	for _, payload := range []int{127 - 5, 128 - 5, 16383 - 5, 16384 - 5, 2097151 - 5, 2097152 - 5} {
		p := &Publish{Topic: []byte("abc"), Payload: make([]byte, payload)}
		b, err := p.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		var q Publish
		if err := q.Decode(b); err != nil || len(q.Payload) != payload {
			t.Fatalf("payload %d: %v", payload, err)
		}
	}
}

func TestParseHeaderGETIsNamed(t *testing.T) {
	_, _, err := ParseHeader([]byte("GET / HTTP/1.1\r\n"))
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "HTTP") {
		t.Fatalf("err = %v, want a malformed error that mentions HTTP", err)
	}
}

func TestErrorText(t *testing.T) {
	err := (&Publish{}).Decode(unhex(t, "30 03 0001 2b"))
	want := "packet: PUBLISH topic name: protocol violation [MQTT-3.3.2-2]"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	var de *DecodeError
	if !errors.As(err, &de) || de.Rule != "MQTT-3.3.2-2" || de.Type != TypePublish {
		t.Fatalf("errors.As: %+v", de)
	}
	_, err = (&Publish{QoS: 3, ID: 1, Topic: []byte("a")}).AppendBinary(nil)
	if err == nil || !strings.HasPrefix(err.Error(), "packet: encode PUBLISH QoS (3)") || !errors.Is(err, ErrProtocol) {
		t.Fatalf("encode err = %v", err)
	}
	if ConnackNotAuthorized.Error() != "packet: CONNACK: not authorized" || ConnackCode(9).Error() == "" {
		t.Fatal("ConnackCode.Error")
	}
	if !errors.Is(ErrUnsupportedProtocolLevel, ErrProtocol) || !errors.Is(ErrClientIDRejected, ErrProtocol) {
		t.Fatal("CONNECT sentinels must wrap ErrProtocol")
	}
}

func TestTypeString(t *testing.T) {
	for ty := Type(0); ty < 16; ty++ {
		if ty.String() == "" {
			t.Fatalf("Type(%d) has no name", ty)
		}
		if ty.Valid() != (ty >= 1 && ty <= 14) {
			t.Fatalf("Type(%d).Valid() = %v", ty, ty.Valid())
		}
		if ty.Valid() && New(ty).Type() != ty {
			t.Fatalf("New(%v).Type() = %v", ty, New(ty).Type())
		}
	}
	if New(0) != nil || New(15) != nil || Type(200).String() != "INVALID" {
		t.Fatal("reserved types")
	}
}

func TestMatchTopic(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"#", "a", true},
		{"#", "a/b/c", true},
		{"#", "/", true},
		{"a/#", "a", true}, // # matches the parent level [MQTT-4.7.1-2]
		{"a/#", "a/", true},
		{"a/#", "a/b/c", true},
		{"a/#", "ab", false},
		{"a/+", "a/b", true},
		{"a/+", "a/", true},
		{"a/+", "a/b/c", false},
		{"a/+", "a", false},
		{"+", "a", true},
		{"+", "/a", false},
		{"+/+", "/a", true},
		{"/+", "/a", true},
		{"+/b/+", "a/b/c", true},
		{"+/b/+", "a/x/c", false},
		{"a/b", "a/b", true},
		{"a/b", "a/bc", false},
		{"a/b", "a/b/", false},
		{"a//b", "a//b", true},
		{"a/+/b", "a//b", true},
		{"#", "$SYS/x", false},     // [MQTT-4.7.2-1]
		{"+/x", "$SYS/x", false},   // [MQTT-4.7.2-1]
		{"$SYS/#", "$SYS/x", true}, // explicit $ filters match
		{"$iothub/twin/res/#", "$iothub/twin/res/200/?$rid=1", true},
		{"devices/d/messages/devicebound/#", "devices/d/messages/devicebound/%24.mid=1", true},
		{"devices/d/messages/devicebound/#", "devices/e/messages/devicebound/x", false},
	}
	for _, tc := range tests {
		if got := MatchTopic([]byte(tc.filter), []byte(tc.topic)); got != tc.want {
			t.Errorf("MatchTopic(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.want)
		}
	}
}

func TestValidateTopic(t *testing.T) {
	for _, f := range []string{"#", "+", "a/#", "+/+", "a/+/b", "/", "a//b", "$iothub/methods/POST/#"} {
		if err := ValidateTopicFilter([]byte(f)); err != nil {
			t.Errorf("ValidateTopicFilter(%q) = %v", f, err)
		}
	}
	for _, f := range []string{"", "a#", "a/#/b", "#/a", "a+", "+a", "a/b+/c", "a\x00b", "\xff"} {
		if err := ValidateTopicFilter([]byte(f)); err == nil {
			t.Errorf("ValidateTopicFilter(%q) accepted", f)
		}
	}
	for _, n := range []string{"a", "/", "a/b/c", "$SYS", "ü/ö"} {
		if err := ValidateTopicName([]byte(n)); err != nil {
			t.Errorf("ValidateTopicName(%q) = %v", n, err)
		}
	}
	for _, n := range []string{"", "a/+", "#", "a\x00", "\xc3\x28"} {
		if err := ValidateTopicName([]byte(n)); err == nil {
			t.Errorf("ValidateTopicName(%q) accepted", n)
		}
	}
}

// TestTopicFilterFastPath compares checkTopicFilter's fast path with the
// byte-by-byte reference on every string of up to four symbols from an
// alphabet of the bytes that matter.
func TestTopicFilterFastPath(t *testing.T) {
	alphabet := []string{"a", "/", "+", "#", "\x00", "\xff", "\xc3\xbc", "$"}
	var gen func(prefix string, depth int)
	count := 0
	gen = func(prefix string, depth int) {
		b := []byte(prefix)
		r1, m1 := checkTopicFilter(b)
		r2, m2 := checkTopicFilterSlow(b)
		if r1 != r2 || m1 != m2 {
			t.Fatalf("checkTopicFilter(%q) = %q,%v; reference %q,%v", prefix, r1, m1, r2, m2)
		}
		// Long forms too, so the eight-byte path is exercised.
		long := []byte("abcdefgh/ijklmnop/" + prefix)
		r1, m1 = checkTopicFilter(long)
		r2, m2 = checkTopicFilterSlow(long)
		if r1 != r2 || m1 != m2 {
			t.Fatalf("checkTopicFilter(%q) = %q,%v; reference %q,%v", long, r1, m1, r2, m2)
		}
		count++
		if depth == 0 {
			return
		}
		for _, s := range alphabet {
			gen(prefix+s, depth-1)
		}
	}
	gen("", 4)
	if count < 4000 {
		t.Fatalf("only %d cases", count)
	}
}
