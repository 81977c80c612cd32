package packet_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/hubwire/hubwire/packet"
)

func encode(t *testing.T, p packet.Packet) []byte {
	t.Helper()
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPeekStored(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    packet.Packet
		want packet.Stored
	}{
		{"publish-qos1", &packet.Publish{QoS: packet.QoS1, Topic: []byte("a/b"), ID: 7, Payload: []byte("x")}, packet.Stored{Type: packet.TypePublish, QoS: packet.QoS1, ID: 7}},
		{"publish-qos2-dup", &packet.Publish{QoS: packet.QoS2, Dup: true, Topic: []byte("t"), ID: 0xfffe}, packet.Stored{Type: packet.TypePublish, QoS: packet.QoS2, Dup: true, ID: 0xfffe}},
		{"publish-long", &packet.Publish{QoS: packet.QoS1, Topic: []byte("t"), ID: 300, Payload: make([]byte, 70000)}, packet.Stored{Type: packet.TypePublish, QoS: packet.QoS1, ID: 300}},
		{"pubrel", &packet.Pubrel{ID: 513}, packet.Stored{Type: packet.TypePubrel, QoS: packet.QoS2, ID: 513}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := packet.PeekStored(encode(t, tc.p))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPeekStoredRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pkt   []byte
		class error
		rule  string
	}{
		{"empty", nil, packet.ErrMalformed, "MQTT-2.2"},
		{"qos0 publish", []byte{0x30, 3, 0, 1, 't'}, packet.ErrProtocol, "MQTT-4.4.0-1"},
		{"puback", []byte{0x40, 2, 0, 1}, packet.ErrProtocol, "MQTT-4.4.0-1"},
		{"publish id 0", []byte{0x32, 5, 0, 1, 't', 0, 0}, packet.ErrProtocol, "MQTT-2.3.1-1"},
		{"publish truncated id", []byte{0x32, 4, 0, 1, 't', 0}, packet.ErrMalformed, "MQTT-1.5.3"},
		{"publish short frame", []byte{0x32, 5, 0, 1, 't', 0}, packet.ErrMalformed, ""},
		{"publish qos3", []byte{0x36, 5, 0, 1, 't', 0, 1}, packet.ErrProtocol, "MQTT-3.3.1-4"},
		{"pubrel bad flags", []byte{0x60, 2, 0, 1}, packet.ErrMalformed, "MQTT-2.2.2-2"},
		{"pubrel id 0", []byte{0x62, 2, 0, 0}, packet.ErrProtocol, "MQTT-2.3.1-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := packet.PeekStored(tc.pkt)
			var de *packet.DecodeError
			if !errors.As(err, &de) || !errors.Is(err, tc.class) {
				t.Fatalf("PeekStored(% x) = %v, want a *DecodeError wrapping %v", tc.pkt, err, tc.class)
			}
			if tc.rule != "" && de.Rule != tc.rule {
				t.Fatalf("rule %q, want %q", de.Rule, tc.rule)
			}
		})
	}
}

func TestSetDup(t *testing.T) {
	pkt := encode(t, &packet.Publish{QoS: packet.QoS1, Retain: true, Topic: []byte("t"), ID: 9, Payload: []byte("p")})
	orig := bytes.Clone(pkt)
	if err := packet.SetDup(pkt, true); err != nil {
		t.Fatal(err)
	}
	var p packet.Publish
	if err := p.Decode(pkt); err != nil || !p.Dup || !p.Retain || p.QoS != packet.QoS1 || p.ID != 9 {
		t.Fatalf("after SetDup(true): %+v, %v", p, err)
	}
	if err := packet.SetDup(pkt, false); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pkt, orig) {
		t.Fatalf("SetDup(false) gave % x, want % x", pkt, orig)
	}

	q0 := encode(t, &packet.Publish{Topic: []byte("t")})
	before := bytes.Clone(q0)
	if err := packet.SetDup(q0, true); !errors.Is(err, packet.ErrProtocol) {
		t.Fatalf("SetDup on QoS 0 = %v, want ErrProtocol", err)
	}
	if !bytes.Equal(q0, before) {
		t.Fatal("a refused SetDup changed the packet")
	}
	if err := packet.SetDup(q0, false); err != nil {
		t.Fatalf("clearing DUP on QoS 0 = %v", err)
	}
	for _, bad := range [][]byte{nil, {0x40, 2, 0, 1}} {
		if err := packet.SetDup(bad, true); !errors.Is(err, packet.ErrProtocol) {
			t.Fatalf("SetDup(% x) = %v, want ErrProtocol", bad, err)
		}
	}
}
