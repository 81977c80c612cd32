package bench

import "testing"

// streamPackets is the number of back-to-back packets one iteration of the
// stream benchmark reads.
const streamPackets = 10_000

// BenchmarkStreamPublish256QoS1 reads 10,000 back-to-back 256 B QoS 1
// PUBLISH packets per iteration through each codec's stream reader (paho:
// ReadPacket; mochi: the broker's read path; hubwire: packet.Reader.Next
// plus Publish.Decode; mochi-inplace: decode functions walking one buffer).
// The source is an endless in-memory reader, so readers keep their buffers
// across iterations. ns/pkt is the time per packet.
func BenchmarkStreamPublish256QoS1(b *testing.B) {
	p := benchPublishQoS1
	for _, c := range codecs {
		if c.stream == nil {
			continue
		}
		b.Run("codec="+c.name, func(b *testing.B) {
			setBytes(b, c, p, streamPackets)
			b.ReportAllocs()
			withCPU(b, func() { c.stream(b, p, streamPackets) })
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*streamPackets), "ns/pkt")
		})
	}
}
