package fuzz

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hubwire/hubwire/packet"
)

// seedPackets are valid packets of every type, used to seed the packet
// fuzz targets alongside the committed corpus.
func seedPackets() []packet.Packet {
	return []packet.Packet{
		&packet.Connect{CleanSession: true, KeepAlive: 60, ClientID: []byte("dev1"), WillFlag: true, WillQoS: 1, WillTopic: []byte("w/t"), WillPayload: []byte("gone"),
			UsernameFlag: true, Username: []byte("hub/dev1/?api-version=2021-04-12"), PasswordFlag: true, Password: []byte("SharedAccessSignature sr=a&sig=b&se=1")},
		&packet.Connect{ClientID: []byte("c")},
		&packet.Connack{SessionPresent: true},
		&packet.Connack{ReturnCode: packet.ConnackNotAuthorized},
		&packet.Publish{Topic: []byte("devices/d/messages/events/%24.ct=application%2Fjson"), Payload: []byte(`{"t":21.5}`)},
		&packet.Publish{QoS: 1, ID: 1, Dup: true, Retain: true, Topic: []byte("a/ü"), Payload: make([]byte, 200)},
		&packet.Publish{QoS: 2, ID: 65535, Topic: []byte("x")},
		&packet.Puback{ID: 1}, &packet.Pubrec{ID: 2}, &packet.Pubrel{ID: 3}, &packet.Pubcomp{ID: 4},
		&packet.Subscribe{ID: 5, Filters: []packet.Subscription{{Filter: []byte("a/+/c"), QoS: 1}, {Filter: []byte("#"), QoS: 2}}},
		&packet.Suback{ID: 5, ReturnCodes: []byte{1, 0x80}},
		&packet.Unsubscribe{ID: 6, Filters: [][]byte{[]byte("a/#")}},
		&packet.Unsuback{ID: 6},
		&packet.Pingreq{}, &packet.Pingresp{}, &packet.Disconnect{},
	}
}

func encode(t testing.TB, p packet.Packet) []byte {
	b, err := p.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzDecode: any bytes decode without panic, and whatever decodes
// re-encodes to exactly the same bytes (every accepted packet has one
// encoding) that decode to an equal packet.
func FuzzDecode(f *testing.F) {
	for _, p := range seedPackets() {
		f.Add(encode(f, p))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := packet.Decode(b)
		if err != nil {
			if !errors.Is(err, packet.ErrMalformed) && !errors.Is(err, packet.ErrProtocol) && !errors.Is(err, packet.ErrPacketTooLarge) {
				t.Fatalf("Decode error %v has no class", err)
			}
			return
		}
		if p.Size() != len(b) {
			t.Fatalf("Size() = %d for a %d-byte packet", p.Size(), len(b))
		}
		enc, err := p.AppendBinary(nil)
		if err != nil {
			t.Fatalf("re-encode of %#v: %v", p, err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoded\n % x\nfrom\n % x", enc, b)
		}
		q := packet.New(p.Type())
		if err := q.Decode(enc); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if diff := cmp.Diff(p, q); diff != "" {
			t.Fatalf("re-decoded packet differs (-first +second):\n%s", diff)
		}
		// The header parser agrees with the packet decoder.
		h, n, err := packet.ParseHeader(b)
		if err != nil || h.Type != p.Type() || n+h.Remaining != len(b) || h.Size() != len(b) {
			t.Fatalf("ParseHeader = %+v, %d, %v", h, n, err)
		}
	})
}

// chunkReader returns the stream in chunks whose sizes come from sizes.
type chunkReader struct {
	data  []byte
	sizes []byte
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(c.sizes) > 0 {
		n = int(c.sizes[0]) + 1
		c.sizes = c.sizes[1:]
	}
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

type frameResult struct {
	frames [][]byte
	err    string
}

func readFrames(r io.Reader, max int) frameResult {
	var res frameResult
	rd := packet.NewReader(r, max)
	for i := 0; i < 10_000; i++ {
		f, err := rd.Next()
		if err != nil {
			if err != io.EOF {
				res.err = err.Error()
			}
			return res
		}
		res.frames = append(res.frames, append([]byte(nil), f...))
	}
	return res
}

// FuzzReader: a stream split into chunks of any sizes yields exactly the
// frames (and the same final error) as the stream read whole.
func FuzzReader(f *testing.F) {
	var stream []byte
	for _, p := range seedPackets() {
		stream = append(stream, encode(f, p)...)
	}
	f.Add(stream, []byte{0, 3, 200, 1, 7}, uint16(0))
	f.Add(stream, []byte{255}, uint16(64))
	f.Add(stream[:len(stream)-3], []byte{5}, uint16(0))
	f.Fuzz(func(t *testing.T, data, sizes []byte, max uint16) {
		whole := readFrames(bytes.NewReader(data), int(max))
		split := readFrames(&chunkReader{data: data, sizes: sizes}, int(max))
		if diff := cmp.Diff(whole, split, cmp.AllowUnexported(frameResult{})); diff != "" {
			t.Fatalf("split read differs from whole read (-whole +split):\n%s", diff)
		}
		// Every frame the Reader returns has a valid header of its length.
		for _, fr := range whole.frames {
			h, n, err := packet.ParseHeader(fr)
			if err != nil || n+h.Remaining != len(fr) {
				t.Fatalf("frame % x: header %+v %d %v", fr, h, n, err)
			}
		}
	})
}
