package packet

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// benchTopic is an IoT Hub telemetry topic with a property bag.
const benchTopic = "devices/dev-0001/messages/events/%24.ct=application%2Fjson&%24.ce=utf-8"

func benchPublish(qos QoS, size int) *Publish {
	p := &Publish{QoS: qos, Topic: []byte(benchTopic), Payload: bytes.Repeat([]byte{'x'}, size)}
	if qos > 0 {
		p.ID = 42
	}
	return p
}

func benchConnect() *Connect {
	return &Connect{
		CleanSession: false, KeepAlive: 240, ClientID: []byte("dev-0001"),
		UsernameFlag: true, Username: []byte("myhub.azure-devices.net/dev-0001/?api-version=2021-04-12"),
		PasswordFlag: true, Password: bytes.Repeat([]byte{'s'}, 150),
	}
}

func benchSubscribe() *Subscribe {
	return &Subscribe{ID: 7, Filters: []Subscription{
		{Filter: []byte("devices/dev-0001/messages/devicebound/#"), QoS: QoS1},
		{Filter: []byte("$iothub/twin/res/#")},
		{Filter: []byte("$iothub/methods/POST/#")},
	}}
}

func benchEncode(b *testing.B, p Packet) {
	buf := make([]byte, 0, p.Size())
	b.SetBytes(int64(p.Size()))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := p.AppendBinary(buf[:0])
		if err != nil {
			b.Fatal(err)
		}
		buf = out
	}
}

func benchDecode(b *testing.B, p Packet, into Packet) {
	frame, err := p.AppendBinary(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := into.Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCopy256 is the floor the codec is measured against: copying the
// bytes of the 256 B QoS 1 PUBLISH.
func BenchmarkCopy256(b *testing.B) {
	frame, _ := benchPublish(QoS1, 256).AppendBinary(nil)
	dst := make([]byte, len(frame))
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		copy(dst, frame)
	}
}

func BenchmarkPublishAppend(b *testing.B) {
	for _, qos := range []QoS{QoS0, QoS1} {
		for _, size := range []int{16, 256, 4096} {
			b.Run(fmt.Sprintf("qos=%d/size=%d", qos, size), func(b *testing.B) { benchEncode(b, benchPublish(qos, size)) })
		}
	}
}

func BenchmarkPublishDecode(b *testing.B) {
	for _, qos := range []QoS{QoS0, QoS1} {
		for _, size := range []int{16, 256, 4096} {
			b.Run(fmt.Sprintf("qos=%d/size=%d", qos, size), func(b *testing.B) { benchDecode(b, benchPublish(qos, size), new(Publish)) })
		}
	}
}

func BenchmarkConnectAppend(b *testing.B)   { benchEncode(b, benchConnect()) }
func BenchmarkConnectDecode(b *testing.B)   { benchDecode(b, benchConnect(), new(Connect)) }
func BenchmarkSubscribeAppend(b *testing.B) { benchEncode(b, benchSubscribe()) }
func BenchmarkSubscribeDecode(b *testing.B) { benchDecode(b, benchSubscribe(), new(Subscribe)) }
func BenchmarkPubackAppend(b *testing.B)    { benchEncode(b, &Puback{ID: 42}) }
func BenchmarkPubackDecode(b *testing.B)    { benchDecode(b, &Puback{ID: 42}, new(Puback)) }

// BenchmarkReader reads 10,000 back-to-back 256 B QoS 1 PUBLISH packets per
// iteration with Reader.Next and decodes each with Publish.Decode. Divide
// ns/op by 10,000 for the per-packet cost.
func BenchmarkReader(b *testing.B) {
	const n = 10_000
	one, _ := benchPublish(QoS1, 256).AppendBinary(nil)
	stream := bytes.Repeat(one, n)
	src := bytes.NewReader(stream)
	r := NewReader(src, 0)
	var p Publish
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		src.Reset(stream)
		r.Reset(src)
		for {
			f, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Decode(f); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/packet")
}

func BenchmarkCheckTopicName(b *testing.B) {
	topic := []byte(benchTopic)
	b.SetBytes(int64(len(topic)))
	for i := 0; i < b.N; i++ {
		if r, _ := checkTopicName(topic); r != "" {
			b.Fatal(r)
		}
	}
}
