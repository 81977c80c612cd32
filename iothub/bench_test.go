package iothub

import "testing"

// Topics as the hub and devices send them (contract §4–§6).
var (
	benchC2D           = []byte("devices/dev1/messages/devicebound/%24.mid=2c2d6f3e-4b1a-4a8e-9d7c-0e5f7a9b1c2d&%24.to=%2Fdevices%2Fdev1%2Fmessages%2Fdevicebound&%24.ce=utf-8&iothub-ack=none")
	benchTwinResponse  = []byte("$iothub/twin/res/204/?$rid=12345&$version=678")
	benchMethodRequest = []byte("$iothub/methods/POST/reboot/?$rid=1f0e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
	benchTelemetry     = []byte("devices/dev1/messages/events/%24.mid=42&%24.ct=application%2Fjson&%24.ce=utf-8&alert=high%20temp")
)

func benchProps() *Properties {
	p := &Properties{}
	p.Add("alert", "high temp")
	p.Add("zone", "north/2")
	return p
}

func BenchmarkAppendTelemetryTopic(b *testing.B) {
	b.Run("props=2", func(b *testing.B) {
		p := benchProps()
		buf := make([]byte, 0, 256)
		b.SetBytes(int64(len(AppendTelemetryTopic(buf[:0], "dev1", "", p))))
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendTelemetryTopic(buf[:0], "dev1", "", p)
		}
	})
	b.Run("props=2+sys=3", func(b *testing.B) {
		p := benchProps()
		p.MessageID, p.ContentType, p.ContentEncoding = "42", "application/json", "utf-8"
		buf := make([]byte, 0, 256)
		b.SetBytes(int64(len(AppendTelemetryTopic(buf[:0], "dev1", "", p))))
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendTelemetryTopic(buf[:0], "dev1", "", p)
		}
	})
}

func BenchmarkParseTopic(b *testing.B) {
	for _, tc := range []struct {
		name  string
		topic []byte
	}{
		{"c2d", benchC2D},
		{"twin-response", benchTwinResponse},
		{"method-request", benchMethodRequest},
		{"telemetry", benchTelemetry},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.topic)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseTopic(tc.topic); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBagIter(b *testing.B) {
	r, _ := ParseTopic(benchC2D)
	b.SetBytes(int64(len(r.Bag)))
	b.ReportAllocs()
	for b.Loop() {
		it := ScanBag(r.Bag)
		for p, ok := it.Next(); ok; p, ok = it.Next() {
			_ = ClassifyKey(p.Key)
		}
	}
}

func BenchmarkPropertiesParse(b *testing.B) {
	r, _ := ParseTopic(benchC2D)
	var p Properties
	b.SetBytes(int64(len(r.Bag)))
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Parse(r.Bag); err != nil {
			b.Fatal(err)
		}
	}
}
