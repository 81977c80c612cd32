package bench

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/invalid.md from the decoders' current behaviour")

// What the spec makes of an input.
const (
	mustReject = "reject" // a MUST: the receiver closes the connection
	mayEither  = "either" // a SHOULD/MAY, a server-level answer, or no rule
	mustAccept = "accept" // valid, though it looks odd
)

// badInput is one input of the invalid-input table.
type badInput struct {
	name   string
	expect string // mustReject, mayEither or mustAccept
	rule   string // the spec's statement id or section that decides
	frame  []byte
}

// Helpers that build packet bytes by hand.

func u16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }

func str(s string) []byte { return append(u16(uint16(len(s))), s...) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// frame prefixes body with the fixed header byte hdr and a minimal
// remaining length.
func frame(hdr byte, body ...[]byte) []byte {
	b := cat(body...)
	out := []byte{hdr}
	n := len(b)
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		out = append(out, d)
		if n == 0 {
			break
		}
	}
	return append(out, b...)
}

// connectBody is a CONNECT variable header for protocol name and level,
// connect flags, keep alive 60.
func connectBody(name string, level, flags byte) []byte {
	return cat(str(name), []byte{level, flags}, u16(60))
}

// badInputs returns the inputs, grouped by the rule they break.
func badInputs() []badInput {
	validConnect := cat(connectBody("MQTT", 4, 0x02), str("c"))
	return []badInput{
		// Fixed header.
		{"header/type-0-reserved", mustReject, "MQTT-2.2.1 (type 0 is forbidden)", []byte{0x00, 0x00}},
		{"header/type-15-reserved", mustReject, "MQTT-2.2.1 (type 15 is forbidden)", []byte{0xf0, 0x00}},
		{"header/remaining-length-5-bytes", mustReject, "MQTT-2.2.3 (at most four bytes)", []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x01, 'a'}},
		{"header/remaining-length-non-minimal", mayEither, "2.2.3 (3.1.1 shows minimal encodings; only MQTT 5 [MQTT-1.5.5-1] requires them)", []byte{0xc0, 0x80, 0x00}},
		{"header/connect-flags-0001", mustReject, "MQTT-2.2.2-2", frame(0x11, validConnect)},
		{"header/puback-flags-0010", mustReject, "MQTT-2.2.2-2", frame(0x42, u16(1))},
		{"header/pubrel-flags-0000", mustReject, "MQTT-3.6.1-1", frame(0x60, u16(1))},
		{"header/subscribe-flags-0000", mustReject, "MQTT-3.8.1-1", frame(0x80, u16(1), str("a"), []byte{0})},
		{"header/unsubscribe-flags-0000", mustReject, "MQTT-3.10.1-1", frame(0xa0, u16(1), str("a"))},
		{"header/pingreq-flags-0001", mustReject, "MQTT-2.2.2-2", []byte{0xc1, 0x00}},

		// PUBLISH.
		{"publish/qos-3", mustReject, "MQTT-3.3.1-4", frame(0x36, str("a"), u16(1), []byte("x"))},
		{"publish/dup-with-qos0", mustReject, "MQTT-3.3.1-2", frame(0x38, str("a"), []byte("x"))},
		{"publish/qos1-packet-id-0", mustReject, "MQTT-2.3.1-1", frame(0x32, str("a"), u16(0), []byte("x"))},
		{"publish/qos1-missing-packet-id", mustReject, "3.3.2.2 (malformed: ends before the packet id)", frame(0x32, str("a"))},
		{"publish/topic-plus", mustReject, "MQTT-3.3.2-2", frame(0x30, str("a/+/b"), []byte("x"))},
		{"publish/topic-hash", mustReject, "MQTT-3.3.2-2", frame(0x30, str("a/#"), []byte("x"))},
		{"publish/topic-empty", mustReject, "MQTT-4.7.3-1", frame(0x30, str(""), []byte("x"))},
		{"publish/topic-invalid-utf8", mustReject, "MQTT-1.5.3-1", frame(0x30, str("a\xc3\x28"), []byte("x"))},
		{"publish/topic-surrogate", mustReject, "MQTT-1.5.3-1 (U+D800 encoded)", frame(0x30, str("\xed\xa0\x80"), []byte("x"))},
		{"publish/topic-overlong-nul", mustReject, "MQTT-1.5.3-1 (overlong C0 80)", frame(0x30, str("a\xc0\x80"), []byte("x"))},
		{"publish/topic-nul", mustReject, "MQTT-1.5.3-2", frame(0x30, str("a\x00b"), []byte("x"))},
		{"publish/topic-length-overruns", mustReject, "1.5.3 (malformed: length prefix past the packet)", frame(0x30, u16(5), []byte("a"))},
		{"publish/topic-control-char", mayEither, "1.5.3 (U+0001..U+001F SHOULD NOT; receiver MAY close)", frame(0x30, str("a\x01b"), []byte("x"))},
		{"publish/topic-noncharacter", mayEither, "1.5.3 (non-characters SHOULD NOT; receiver MAY close)", frame(0x30, str("a\xef\xbf\xbf"), []byte("x"))},
		{"publish/topic-bom", mustAccept, "MQTT-1.5.3-3 (U+FEFF is kept, not skipped)", frame(0x30, str("\xef\xbb\xbfa"), []byte("x"))},

		// CONNECT.
		{"connect/protocol-name-MQTX", mustReject, "MQTT-3.1.2-1", frame(0x10, connectBody("MQTX", 4, 0x02), str("c"))},
		{"connect/protocol-level-3", mustReject, "MQTT-3.1.2-2 (server answers CONNACK 1)", frame(0x10, connectBody("MQTT", 3, 0x02), str("c"))},
		{"connect/protocol-level-5", mustReject, "MQTT-3.1.2-2 (a 3.1.1 server answers CONNACK 1)", frame(0x10, connectBody("MQTT", 5, 0x02), []byte{0}, str("c"))},
		{"connect/reserved-flag", mustReject, "MQTT-3.1.2-3", frame(0x10, connectBody("MQTT", 4, 0x03), str("c"))},
		{"connect/will-qos-3", mustReject, "MQTT-3.1.2-14", frame(0x10, connectBody("MQTT", 4, 0x1e), str("c"), str("w"), str("m"))},
		{"connect/will-qos-without-will-flag", mustReject, "MQTT-3.1.2-13", frame(0x10, connectBody("MQTT", 4, 0x0a), str("c"))},
		{"connect/will-retain-without-will-flag", mustReject, "MQTT-3.1.2-15", frame(0x10, connectBody("MQTT", 4, 0x22), str("c"))},
		{"connect/will-flag-missing-will-fields", mustReject, "MQTT-3.1.2-9", frame(0x10, connectBody("MQTT", 4, 0x06), str("c"))},
		{"connect/will-topic-wildcard", mustReject, "MQTT-3.1.3-10 + 4.7.1 (the Will Topic is a Topic Name: no wildcards)", frame(0x10, connectBody("MQTT", 4, 0x06), str("c"), str("a/#"), str("m"))},
		{"connect/password-without-username", mustReject, "MQTT-3.1.2-22", frame(0x10, connectBody("MQTT", 4, 0x42), str("c"), str("p"))},
		{"connect/username-flag-missing-username", mustReject, "MQTT-3.1.2-19", frame(0x10, connectBody("MQTT", 4, 0x82), str("c"))},
		{"connect/client-id-invalid-utf8", mustReject, "MQTT-3.1.3-4 / MQTT-1.5.3-1", frame(0x10, connectBody("MQTT", 4, 0x02), str("c\xff"))},
		{"connect/username-nul", mustReject, "MQTT-1.5.3-2", frame(0x10, connectBody("MQTT", 4, 0x82), str("c"), str("u\x00"))},
		{"connect/client-id-overruns", mustReject, "1.5.3 (malformed: length prefix past the packet)", frame(0x10, connectBody("MQTT", 4, 0x02), u16(100), []byte("c"))},
		{"connect/trailing-byte", mustReject, "3.1.3 (malformed: bytes after the last field)", frame(0x10, validConnect, []byte{0})},
		{"connect/empty-client-id-persistent", mayEither, "MQTT-3.1.3-8 (server answers CONNACK 2; well-formed)", frame(0x10, connectBody("MQTT", 4, 0x00), str(""))},

		// CONNACK.
		{"connack/reserved-ack-flags", mustReject, "3.2.2.1 (bits 7-1 reserved, MUST be 0)", frame(0x20, []byte{0x02, 0x00})},
		{"connack/session-present-with-error", mayEither, "MQTT-3.2.2-4 (server fault; client may close)", frame(0x20, []byte{0x01, 0x05})},
		{"connack/return-code-6", mayEither, "3.2.2.3 (6-255 reserved)", frame(0x20, []byte{0x00, 0x06})},
		{"connack/trailing-byte", mustReject, "3.2.1 (remaining length is 2)", frame(0x20, []byte{0x00, 0x00, 0x00})},

		// Acknowledgements and empty packets.
		{"puback/trailing-byte", mustReject, "3.4.1 (remaining length is 2; this is MQTT 5's form with a reason code)", frame(0x40, u16(1), []byte{0x10})},
		{"puback/short", mustReject, "3.4.1 (remaining length is 2)", frame(0x40, []byte{0x01})},
		{"puback/packet-id-0", mayEither, "2.3.1 (MQTT-2.3.1-1 names PUBLISH/SUBSCRIBE/UNSUBSCRIBE; an ack can only echo one)", frame(0x40, u16(0))},
		{"pingreq/trailing-byte", mustReject, "3.12.1 (remaining length is 0)", frame(0xc0, []byte{0})},
		{"disconnect/trailing-byte", mustReject, "3.14.1 (remaining length is 0; this is MQTT 5's form with a reason code)", frame(0xe0, []byte{0})},

		// SUBSCRIBE.
		{"subscribe/no-filters", mustReject, "MQTT-3.8.3-3", frame(0x82, u16(1))},
		{"subscribe/qos-3", mustReject, "MQTT-3-8.3-4", frame(0x82, u16(1), str("a"), []byte{3})},
		{"subscribe/reserved-option-bits", mustReject, "MQTT-3-8.3-4 (bits 7-2 reserved; MQTT 5's No Local)", frame(0x82, u16(1), str("a"), []byte{0x04})},
		{"subscribe/packet-id-0", mustReject, "MQTT-2.3.1-1", frame(0x82, u16(0), str("a"), []byte{0})},
		{"subscribe/filter-missing-qos", mustReject, "3.8.3 (malformed: ends before the QoS byte)", frame(0x82, u16(1), str("a"))},
		{"subscribe/filter-empty", mustReject, "MQTT-4.7.3-1", frame(0x82, u16(1), str(""), []byte{0})},
		{"subscribe/filter-invalid-utf8", mustReject, "MQTT-1.5.3-1", frame(0x82, u16(1), str("a\xff"), []byte{0})},
		{"subscribe/hash-not-last", mustReject, "MQTT-4.7.1-2", frame(0x82, u16(1), str("a/#/b"), []byte{0})},
		{"subscribe/hash-not-alone", mustReject, "MQTT-4.7.1-2", frame(0x82, u16(1), str("a/b#"), []byte{0})},
		{"subscribe/plus-not-alone", mustReject, "MQTT-4.7.1-3", frame(0x82, u16(1), str("a+/b"), []byte{0})},

		// SUBACK.
		{"suback/return-code-3", mustReject, "MQTT-3.9.3-2", frame(0x90, u16(1), []byte{0x03})},
		{"suback/no-return-codes", mayEither, "3.9.3 (one code per filter, and a SUBSCRIBE has at least one; no statement)", frame(0x90, u16(1))},

		// UNSUBSCRIBE.
		{"unsubscribe/no-filters", mustReject, "MQTT-3.10.3-2", frame(0xa2, u16(1))},
		{"unsubscribe/filter-empty", mustReject, "MQTT-4.7.3-1", frame(0xa2, u16(1), str(""))},
		{"unsubscribe/hash-not-last", mustReject, "MQTT-4.7.1-2", frame(0xa2, u16(1), str("a/#/b"))},
		{"unsubscribe/packet-id-0", mustReject, "MQTT-2.3.1-1", frame(0xa2, u16(0), str("a"))},
	}
}

// decoderUnderTest is one column of the invalid-input table.
type decoderUnderTest struct {
	name      string
	unmarshal func([]byte) (*pkt, error)
}

// invalidDecoders are the MQTT 3.1.1 decoders. paho.golang is left out: it
// decodes MQTT 5, whose rules for these bytes differ (a PUBACK with a
// reason code, a SUBSCRIBE option byte with No Local are valid MQTT 5).
func invalidDecoders() []decoderUnderTest {
	return []decoderUnderTest{
		{hubwireCodec.name, hubwireUnmarshal},
		{pahoCodec.name, pahoCodec.unmarshal},
		{mochiCodec.name, mochiCodec.unmarshal},
	}
}

// verdict runs one decoder on one input and says what it did: "reject",
// "accept", "accept, N bytes unread" or "panic", plus the heap allocated
// when that is more than 1 MiB (a decoder that trusts a length field).
func verdict(unmarshal func([]byte) (*pkt, error), in []byte) (v string) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	defer func() {
		if r := recover(); r != nil {
			v = "panic"
		}
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			v += fmt.Sprintf(" (allocates %d MiB)", n>>20)
		}
	}()
	_, err := unmarshal(in)
	switch e, ok := err.(leftoverError); {
	case ok:
		return fmt.Sprintf("accept, %d byte(s) unread", e.n)
	case err != nil:
		return "reject"
	}
	return "accept"
}

// TestInvalidInputs feeds every input to every 3.1.1 decoder. hubwire must
// reject every input the spec says MUST be rejected and accept the valid
// ones; what the peers do is recorded in testdata/invalid.md, which the
// test keeps current (run with -update after a deliberate change).
func TestInvalidInputs(t *testing.T) {
	decs := invalidDecoders()
	inputs := badInputs()
	var md strings.Builder
	md.WriteString("# Invalid inputs: who rejects what\n\n")
	md.WriteString("Generated by `go test -run TestInvalidInputs -update` in bench/ (invalid_test.go has the inputs).\n")
	md.WriteString("Each input is one whole packet fed to each MQTT 3.1.1 decoder the way its users decode ")
	md.WriteString("(hubwire: `packet.Decode`; paho: `ReadPacket`, plus `ConnectPacket.Validate` for CONNECT; ")
	md.WriteString("mochi: the broker's read path plus the `Validate` its `processPacket` runs). ")
	md.WriteString("*expect* is what the MQTT 3.1.1 rule cited decides: `reject` for a MUST, `either` where the spec leaves it ")
	md.WriteString("to the receiver or answers at a higher level, `accept` for valid input. A verdict in **bold** disagrees with the spec. ")
	md.WriteString("paho.golang is not in the table: it decodes MQTT 5, where several of these inputs are valid.\n\n")
	md.WriteString("| input | rule | expect |")
	for _, d := range decs {
		md.WriteString(" " + d.name + " |")
	}
	md.WriteString(" bytes |\n|---|---|---|")
	for range decs {
		md.WriteString("---|")
	}
	md.WriteString("---|\n")

	wrong := make(map[string]int)
	for _, in := range inputs {
		fmt.Fprintf(&md, "| %s | %s | %s |", in.name, in.rule, in.expect)
		for _, d := range decs {
			v := verdict(d.unmarshal, in.frame)
			bad := (in.expect == mustReject && !strings.HasPrefix(v, "reject")) ||
				(in.expect == mustAccept && v != "accept") ||
				strings.HasPrefix(v, "panic")
			if bad {
				wrong[d.name]++
				fmt.Fprintf(&md, " **%s** |", v)
			} else {
				fmt.Fprintf(&md, " %s |", v)
			}
			if d.name == hubwireCodec.name && bad {
				t.Errorf("%s (%s, expect %s): hubwire says %s", in.name, in.rule, in.expect, v)
			}
		}
		fmt.Fprintf(&md, " `% x`%s |\n", head(in.frame), map[bool]string{true: "…"}[len(in.frame) > 24])
	}
	md.WriteString("\nVerdicts that disagree with the spec:")
	note := ("\nNote on mochi: past its codec, the broker checks SUBSCRIBE and UNSUBSCRIBE filters with " +
		"`IsValidFilter` (processSubscribe, processUnsubscribe) and answers a filter that breaks MQTT-4.7.1-2/3 or " +
		"MQTT-4.7.3-1 with a SUBACK failure code instead of closing the connection; the table shows the codec path.\n")
	for _, d := range decs {
		fmt.Fprintf(&md, " %s %d of %d;", d.name, wrong[d.name], len(inputs))
	}
	md.WriteString("\n" + note)

	path := filepath.Join("testdata", "invalid.md")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(md.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestInvalidInputs -update)", err)
	}
	if string(old) != md.String() {
		t.Errorf("decoders' verdicts changed; rerun with -update and review the diff of %s. New table:\n%s", path, md.String())
	}
}
