package bench

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// Directions of a differential comparison between hubwire and a peer.
const (
	// dirDecode: the peer decodes the bytes hubwire encoded and must get
	// the corpus packet back.
	dirDecode = "decode"
	// dirEncode: the peer encodes the corpus packet; its bytes must equal
	// hubwire's, and hubwire must decode them to the corpus packet.
	dirEncode = "encode"
)

// knownDiff is one difference between hubwire and a peer that the
// differential test accepts, with the reason and the rule that decides it.
// The test fails on a difference not listed here, and on an entry that no
// longer matches any difference (so the table stays true).
type knownDiff struct {
	peer  string // codec name
	dir   string // dirDecode or dirEncode
	cases string // a corpus case name, or a type prefix such as "publish/"
	why   string
}

func (k knownDiff) matches(peer, dir, name string) bool {
	if k.peer != peer || k.dir != dir {
		return false
	}
	if strings.HasSuffix(k.cases, "/") {
		return strings.HasPrefix(name, k.cases)
	}
	return k.cases == name
}

// knownDiffs lists every difference the corpus shows between hubwire and
// a peer.
var knownDiffs = []knownDiff{
	// mochi: its broker's ConnectValidate is stricter than MQTT 3.1.1.
	{"mochi", dirDecode, "connect/will-empty-message",
		"mochi bug: ConnectValidate rejects a will with a zero-length message (ErrProtocolViolationWillFlagNoPayload, tagged [MQTT-3.1.2-9]). " +
			"3.1.1 §3.1.3.3 makes the Will Message binary data of 0 to 65,535 bytes; [MQTT-3.1.2-9] only requires the Will Topic and Will Message fields to be present."},
	{"mochi", dirDecode, "connect/empty-password",
		"mochi bug: ConnectValidate rejects a present but empty password (ErrProtocolViolationFlagNoPassword, tagged [MQTT-3.1.2-19]). " +
			"3.1.1 §3.1.3.5 makes the Password binary data of 0 to 65,535 bytes; [MQTT-3.1.2-21] only requires the field to be present when the flag is set."},

	// paho.golang speaks MQTT 5 only. Only PUBACK/PUBREC/PUBREL/PUBCOMP
	// with remaining length 2 and PINGREQ/PINGRESP are the same bytes in
	// both versions, so every other type differs by construction.
	{"pahov5", dirDecode, "connect/", "MQTT 5 codec: reads a properties length after the keep alive (and after the will flag) that 3.1.1 bytes do not have (MQTT 5 §3.1.2.11)."},
	{"pahov5", dirEncode, "connect/", "MQTT 5 codec: writes protocol level 5 and properties lengths; hubwire answers level 5 with ErrUnsupportedProtocolLevel [MQTT-3.1.2-2]."},
	{"pahov5", dirDecode, "connack/", "MQTT 5 codec: reads a properties length after the return code (MQTT 5 §3.2.2.3)."},
	{"pahov5", dirEncode, "connack/", "MQTT 5 codec: writes a properties length; a 3.1.1 CONNACK has remaining length 2 (§3.2.1)."},
	{"pahov5", dirDecode, "publish/", "MQTT 5 codec: reads a properties length after the packet id, taking the first payload byte for it (MQTT 5 §3.3.2.3)."},
	{"pahov5", dirEncode, "publish/", "MQTT 5 codec: writes a properties length byte that a 3.1.1 decoder reads as the first payload byte."},
	{"pahov5", dirEncode, "puback/", "MQTT 5 codec: always writes a reason code and a properties length (remaining length 4); 3.1.1 acks have remaining length 2 (§3.4.1)."},
	{"pahov5", dirEncode, "pubrec/", "as PUBACK: reason code and properties length (remaining length 4); 3.1.1 §3.5.1 says 2."},
	{"pahov5", dirEncode, "pubrel/", "as PUBACK: reason code and properties length (remaining length 4); 3.1.1 §3.6.1 says 2."},
	{"pahov5", dirEncode, "pubcomp/", "as PUBACK: reason code and properties length (remaining length 4); 3.1.1 §3.7.1 says 2."},
	{"pahov5", dirDecode, "subscribe/", "MQTT 5 codec: reads a properties length after the packet id (MQTT 5 §3.8.2.1)."},
	{"pahov5", dirEncode, "subscribe/", "MQTT 5 codec: writes a properties length after the packet id."},
	{"pahov5", dirDecode, "suback/", "MQTT 5 codec: reads a properties length after the packet id, taking the first return code for it (MQTT 5 §3.9.2.1)."},
	{"pahov5", dirEncode, "suback/", "MQTT 5 codec: writes a properties length that a 3.1.1 decoder reads as a return code."},
	{"pahov5", dirDecode, "unsubscribe/", "MQTT 5 codec: reads a properties length after the packet id (MQTT 5 §3.10.2.1)."},
	{"pahov5", dirEncode, "unsubscribe/", "MQTT 5 codec: writes a properties length after the packet id."},
	{"pahov5", dirDecode, "unsuback/", "MQTT 5 codec: reads a properties length after the packet id (MQTT 5 §3.11.2.1)."},
	{"pahov5", dirEncode, "unsuback/", "MQTT 5 codec: writes a properties length; a 3.1.1 UNSUBACK has remaining length 2 (§3.11.1)."},
	{"pahov5", dirDecode, "disconnect/empty",
		"paho.golang bug: Disconnect.Unpack reads a reason code even when the remaining length is 0, which MQTT 5 §3.14.2.1 allows (normal disconnection) and which is the only 3.1.1 form."},
	{"pahov5", dirEncode, "disconnect/", "MQTT 5 codec: writes a reason code and a properties length (remaining length 2); a 3.1.1 DISCONNECT has remaining length 0 (§3.14.1)."},
}

// TestDifferential checks, for every packet of the corpus, that bytes
// hubwire encodes decode to the same logical packet with each peer, and
// that each peer's bytes are hubwire's bytes and decode to the same packet
// with hubwire. Every difference must be listed in knownDiffs.
func TestDifferential(t *testing.T) {
	type peer struct {
		name      string
		marshal   func(*pkt) ([]byte, error)
		unmarshal func([]byte) (*pkt, error)
		want      func(*pkt) *pkt // the packet the peer should decode
	}
	same := func(p *pkt) *pkt { return p }
	peers := []peer{
		{pahoCodec.name, pahoCodec.marshal, pahoCodec.unmarshal, same},
		{mochiCodec.name, mochiCodec.marshal, mochiCodec.unmarshal, same},
		// paho.golang is tried on everything; knownDiffs says where MQTT 5
		// and 3.1.1 bytes part ways.
		{pahov5Codec.name, pahov5Marshal, pahov5Read, same},
	}

	used := make([]bool, len(knownDiffs))
	var report strings.Builder
	for _, c := range corpus() {
		hw, err := hubwireMarshal(c.p)
		if err != nil {
			t.Errorf("%s: hubwire cannot encode a valid packet: %v", c.name, err)
			continue
		}
		if got, err := hubwireUnmarshal(hw); err != nil {
			t.Errorf("%s: hubwire cannot decode its own bytes: %v", c.name, err)
		} else if d := diffPkt(c.p, got); d != "" {
			t.Errorf("%s: hubwire round trip differs (-want +got):\n%s", c.name, d)
		}

		for _, pr := range peers {
			want := pr.want(c.p)
			outcomes := map[string]string{
				dirDecode: decodeOutcome(pr.unmarshal, hw, want),
				dirEncode: encodeOutcome(pr.marshal, hw, c.p),
			}
			for _, dir := range []string{dirDecode, dirEncode} {
				outcome := outcomes[dir]
				known := -1
				for i, k := range knownDiffs {
					if k.matches(pr.name, dir, c.name) {
						known = i
						break
					}
				}
				switch {
				case outcome == "" && known >= 0:
					// A prefix entry may cover cases that agree; only an
					// entry that matches nothing at all is stale.
				case outcome == "":
				case known >= 0:
					used[known] = true
					fmt.Fprintf(&report, "%-7s %-6s %-40s %s\n", pr.name, dir, c.name, firstLine(outcome))
				default:
					t.Errorf("%s %s %s: unlisted difference: %s", pr.name, dir, c.name, outcome)
				}
			}
		}
	}
	for i, k := range knownDiffs {
		if !used[i] {
			t.Errorf("knownDiffs entry no longer matches any difference (remove it): %+v", k)
		}
	}
	t.Logf("known differences seen:\n%s", report.String())
}

// decodeOutcome is "" when unmarshal decodes frame to want, otherwise a
// description of the difference.
func decodeOutcome(unmarshal func([]byte) (*pkt, error), frame []byte, want *pkt) (outcome string) {
	defer func() {
		if r := recover(); r != nil {
			outcome = fmt.Sprintf("panic: %v", r)
		}
	}()
	got, err := unmarshal(frame)
	if err != nil {
		return "rejects: " + err.Error()
	}
	if d := diffPkt(want, got); d != "" {
		return "decodes differently (-want +got):\n" + d
	}
	return ""
}

// encodeOutcome is "" when marshal(p) produces hubwire's bytes hw (which
// hubwire decodes to p, checked by the caller), otherwise a description.
func encodeOutcome(marshal func(*pkt) ([]byte, error), hw []byte, p *pkt) (outcome string) {
	defer func() {
		if r := recover(); r != nil {
			outcome = fmt.Sprintf("panic: %v", r)
		}
	}()
	b, err := marshal(p)
	if err != nil {
		return "cannot encode: " + err.Error()
	}
	if bytes.Equal(b, hw) {
		return ""
	}
	if o := decodeOutcome(hubwireUnmarshal, b, p); o != "" {
		return fmt.Sprintf("bytes % x differ from hubwire's % x; hubwire %s", head(b), head(hw), o)
	}
	return fmt.Sprintf("bytes % x differ from hubwire's % x, yet hubwire decodes them to the same packet", head(b), head(hw))
}

func head(b []byte) []byte {
	if len(b) > 24 {
		return b[:24]
	}
	return b
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
