package bench

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// codecs lists every codec under comparison, hubwire first. To add one,
// write a peer_<name>_test.go with a *codec value and append it here.
var codecs = []*codec{hubwireCodec, pahoCodec, pahov5Codec, mochiCodec, mochiInplaceCodec}

// pktOpts compare neutral packets: byte slices with bytes.Equal (fast on a
// 2 MB payload, and nil equals empty: codecs differ in which they return
// for an empty payload or an absent password, and MQTT cannot tell), and
// nil filter lists equal to empty ones.
var pktOpts = cmp.Options{
	cmp.Comparer(bytes.Equal),
	cmp.FilterPath(func(p cmp.Path) bool { return p.Last().Type() == reflect.TypeOf([]sub(nil)) }, cmpopts.EquateEmpty()),
}

// diffPkt returns "" when want and got are the same packet, otherwise a
// go-cmp diff in which long byte strings are summarised.
func diffPkt(want, got *pkt) string {
	if cmp.Equal(want, got, pktOpts) {
		return ""
	}
	return cmp.Diff(summarize(want), summarize(got), pktOpts)
}

// summarize shortens long byte fields so that a diff stays readable.
func summarize(p *pkt) *pkt {
	if p == nil {
		return nil
	}
	q := *p
	for _, f := range []*[]byte{&q.Payload, &q.WillPayload, &q.Password} {
		if len(*f) > 64 {
			*f = fmt.Appendf(nil, "<%d bytes, crc32 %08x, from % x>", len(*f), crc32.ChecksumIEEE(*f), (*f)[:16])
		}
	}
	return &q
}

// benchEncode runs one sub-benchmark per codec encoding p.
func benchEncode(b *testing.B, p *pkt) {
	for _, c := range codecs {
		if c.encode == nil {
			continue
		}
		b.Run("codec="+c.name, func(b *testing.B) {
			setBytes(b, c, p, 1)
			b.ReportAllocs()
			withCPU(b, func() { c.encode(b, p) })
		})
	}
}

// benchDecode runs one sub-benchmark per codec decoding its own encoding
// of p.
func benchDecode(b *testing.B, p *pkt) {
	for _, c := range codecs {
		if c.decode == nil {
			continue
		}
		b.Run("codec="+c.name, func(b *testing.B) {
			setBytes(b, c, p, 1)
			b.ReportAllocs()
			withCPU(b, func() { c.decode(b, p) })
		})
	}
}

// withCPU runs a benchmark body and reports the process CPU time per
// iteration as cpu-ns/op beside the wall-clock ns/op. The body's set-up is
// included; it is microseconds against a run of 100 ms or more.
func withCPU(b *testing.B, body func()) {
	t0 := processCPU()
	body()
	if t1 := processCPU(); t0 >= 0 && t1 >= 0 && b.N > 0 {
		b.ReportMetric(float64(t1-t0)/float64(b.N), "cpu-ns/op")
	}
}

// setBytes sets b.SetBytes to the size of n packets p as c encodes them.
func setBytes(b *testing.B, c *codec, p *pkt, n int) {
	b.Helper()
	wire, err := c.wire(p)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(wire) * n))
}

// Encode: PUBLISH QoS 0 with 16 B, 256 B and 4 KiB payloads, PUBLISH QoS 1
// with 256 B, CONNECT with a 150-byte password, SUBSCRIBE with 3 filters,
// PUBACK.

func BenchmarkEncodePublish16(b *testing.B)      { benchEncode(b, benchPublish16) }
func BenchmarkEncodePublish256(b *testing.B)     { benchEncode(b, benchPublish256) }
func BenchmarkEncodePublish4096(b *testing.B)    { benchEncode(b, benchPublish4096) }
func BenchmarkEncodePublish256QoS1(b *testing.B) { benchEncode(b, benchPublishQoS1) }
func BenchmarkEncodeConnect(b *testing.B)        { benchEncode(b, benchConnect) }
func BenchmarkEncodeSubscribe(b *testing.B)      { benchEncode(b, benchSubscribe) }
func BenchmarkEncodePuback(b *testing.B)         { benchEncode(b, benchPuback) }

// Decode: the same packets, each codec decoding its own bytes the way its
// users do (see each codec's doc comment).

func BenchmarkDecodePublish16(b *testing.B)      { benchDecode(b, benchPublish16) }
func BenchmarkDecodePublish256(b *testing.B)     { benchDecode(b, benchPublish256) }
func BenchmarkDecodePublish4096(b *testing.B)    { benchDecode(b, benchPublish4096) }
func BenchmarkDecodePublish256QoS1(b *testing.B) { benchDecode(b, benchPublishQoS1) }
func BenchmarkDecodeConnect(b *testing.B)        { benchDecode(b, benchConnect) }
func BenchmarkDecodeSubscribe(b *testing.B)      { benchDecode(b, benchSubscribe) }
func BenchmarkDecodePuback(b *testing.B)         { benchDecode(b, benchPuback) }

// BenchmarkCopyPublish256QoS1 is the floor: a copy of the bytes of the
// 256 B QoS 1 PUBLISH, as hubwire encodes them, into a reused buffer.
func BenchmarkCopyPublish256QoS1(b *testing.B) {
	b.Run("codec=copy", func(b *testing.B) {
		src, err := pahoMarshal(benchPublishQoS1) // 3.1.1 bytes; every 3.1.1 encoder agrees
		if err != nil {
			b.Fatal(err)
		}
		dst := make([]byte, len(src))
		b.SetBytes(int64(len(src)))
		b.ReportAllocs()
		withCPU(b, func() {
			for b.Loop() {
				copy(dst, src)
			}
		})
		sink = dst
	})
}

// TestBenchmarkInputs checks that what every benchmark decodes is what the
// case means: each codec's encoding of each case decodes, with that codec,
// to the case's packet.
func TestBenchmarkInputs(t *testing.T) {
	cases := map[string]*pkt{
		"Publish16": benchPublish16, "Publish256": benchPublish256, "Publish4096": benchPublish4096,
		"Publish256QoS1": benchPublishQoS1, "Connect": benchConnect, "Subscribe": benchSubscribe,
		"Puback": benchPuback,
	}
	for name, p := range cases {
		for _, c := range codecs {
			unmarshal := c.unmarshal
			want := *p
			switch c.name {
			case pahov5Codec.name:
				unmarshal = pahov5Read
				if want.Type == tConnect {
					want.ProtocolLevel = 5
				}
			case mochiInplaceCodec.name:
				continue // same bytes as mochi
			}
			if c.wire == nil || unmarshal == nil {
				continue
			}
			t.Run(name+"/codec="+c.name, func(t *testing.T) {
				wire, err := c.wire(p)
				if err != nil {
					t.Fatal(err)
				}
				got, err := unmarshal(wire)
				if err != nil {
					t.Fatal(err)
				}
				if d := diffPkt(&want, got); d != "" {
					t.Errorf("decoded packet differs (-want +got):\n%s", d)
				}
			})
		}
	}
}
