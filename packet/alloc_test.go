//go:build !race

package packet

import (
	"bytes"
	"io"
	"testing"
)

// TestZeroAllocs holds the hot-path budget of DESIGN.md: encoding and
// zero-copy decoding of PUBLISH, PUBACK, PINGREQ, PINGRESP, CONNECT (and the
// other fixed-shape packets) and Reader.Next in steady state allocate
// nothing.
func TestZeroAllocs(t *testing.T) {
	cases := []struct {
		name string
		p    Packet
		into Packet
	}{
		{"publish-qos0", benchPublish(QoS0, 256), new(Publish)},
		{"publish-qos1", benchPublish(QoS1, 4096), new(Publish)},
		{"puback", &Puback{ID: 1}, new(Puback)},
		{"pubrec", &Pubrec{ID: 1}, new(Pubrec)},
		{"pubrel", &Pubrel{ID: 1}, new(Pubrel)},
		{"pubcomp", &Pubcomp{ID: 1}, new(Pubcomp)},
		{"pingreq", &Pingreq{}, new(Pingreq)},
		{"pingresp", &Pingresp{}, new(Pingresp)},
		{"disconnect", &Disconnect{}, new(Disconnect)},
		{"connect", benchConnect(), new(Connect)},
		{"connack", &Connack{SessionPresent: true}, new(Connack)},
		{"subscribe", benchSubscribe(), &Subscribe{Filters: make([]Subscription, 0, 4)}},
		{"suback", &Suback{ID: 1, ReturnCodes: []byte{1, 0, 0}}, new(Suback)},
		{"unsubscribe", &Unsubscribe{ID: 1, Filters: [][]byte{[]byte("a")}}, &Unsubscribe{Filters: make([][]byte, 0, 2)}},
	}
	for _, tc := range cases {
		buf := make([]byte, 0, tc.p.Size())
		if n := testing.AllocsPerRun(100, func() {
			var err error
			if buf, err = tc.p.AppendBinary(buf[:0]); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: AppendBinary allocates %.1f times", tc.name, n)
		}
		if n := testing.AllocsPerRun(100, func() {
			if err := tc.into.Decode(buf); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: Decode allocates %.1f times", tc.name, n)
		}
	}
}

func TestReaderZeroAllocs(t *testing.T) {
	one, _ := benchPublish(QoS1, 256).AppendBinary(nil)
	stream := bytes.Repeat(one, 1000)
	src := bytes.NewReader(stream)
	r := NewReader(src, 0)
	var p Publish
	readAll := func() {
		src.Reset(stream)
		r.Reset(src)
		for {
			f, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Decode(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	readAll() // warm the buffer
	if n := testing.AllocsPerRun(20, readAll); n != 0 {
		t.Fatalf("reading 1000 packets allocates %.1f times", n)
	}
}
