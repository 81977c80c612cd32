package packet

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

func encodeAll(t testing.TB, ps ...Packet) []byte {
	t.Helper()
	var b []byte
	for _, p := range ps {
		var err error
		if b, err = p.AppendBinary(b); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func streamPackets() []Packet {
	var ps []Packet
	for _, tc := range roundTripCases() {
		ps = append(ps, tc.p)
	}
	return ps
}

func TestReaderStream(t *testing.T) {
	want := streamPackets()
	stream := encodeAll(t, want...)
	readers := map[string]func() io.Reader{
		"whole":     func() io.Reader { return bytes.NewReader(stream) },
		"one-byte":  func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) },
		"half":      func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) },
		"data-err":  func() io.Reader { return iotest.DataErrReader(bytes.NewReader(stream)) },
		"timeout-1": func() io.Reader { return &retryReader{r: iotest.TimeoutReader(bytes.NewReader(stream))} },
	}
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			r := NewReader(mk(), 0)
			for i, w := range want {
				p, err := r.ReadPacket()
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if diff := cmp.Diff(w, p); diff != "" {
					t.Fatalf("packet %d (-want +got):\n%s", i, diff)
				}
			}
			if _, err := r.Next(); err != io.EOF {
				t.Fatalf("at end: %v, want io.EOF", err)
			}
		})
	}
}

// retryReader retries the one timeout iotest.TimeoutReader injects, showing
// that a Reader survives a non-fatal I/O error without losing bytes.
type retryReader struct{ r io.Reader }

func (rr *retryReader) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	if err == iotest.ErrTimeout {
		return n, nil
	}
	return n, err
}

func TestReaderIOErrorNotSticky(t *testing.T) {
	stream := encodeAll(t, &Puback{ID: 1}, &Puback{ID: 2})
	r := NewReader(iotest.TimeoutReader(iotest.OneByteReader(bytes.NewReader(stream))), 0)
	// The first read gets one byte, the second times out mid-header.
	if _, err := r.Next(); err != iotest.ErrTimeout {
		t.Fatalf("first Next: %v, want timeout", err)
	}
	for _, id := range []ID{1, 2} {
		f, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		var p Puback
		if err := p.Decode(f); err != nil || p.ID != id {
			t.Fatalf("got %v %v, want id %d", p, err, id)
		}
	}
}

func TestReaderUnexpectedEOF(t *testing.T) {
	stream := encodeAll(t, &Publish{Topic: []byte("a"), Payload: []byte("payload")})
	r := NewReader(bytes.NewReader(stream[:len(stream)-1]), 0)
	if _, err := r.Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
}

// countingReader records how many bytes were requested, to show that an
// oversized packet is refused before its body is read.
type countingReader struct {
	r    io.Reader
	read int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += n
	return n, err
}

func TestReaderMaxSizeBeforeGrowth(t *testing.T) {
	big := encodeAll(t, &Publish{Topic: []byte("t"), Payload: make([]byte, 100_000)})
	src := &countingReader{r: iotest.OneByteReader(bytes.NewReader(big))}
	r := NewReader(src, 1024)
	_, err := r.Next()
	if !errors.Is(err, ErrPacketTooLarge) {
		t.Fatalf("err = %v, want ErrPacketTooLarge", err)
	}
	if src.read > 5 {
		t.Fatalf("read %d bytes before refusing; the header is at most 5", src.read)
	}
	if cap(r.buf) > defaultReadBuffer {
		t.Fatalf("buffer grew to %d for a refused packet", cap(r.buf))
	}
	// Sticky: the same error again, with no further reading.
	if _, err2 := r.Next(); err2 != err {
		t.Fatalf("second Next = %v, want the same error", err2)
	}
	// A bogus header claiming 256 MiB is refused the same way.
	r = NewReader(bytes.NewReader([]byte{0x30, 0xff, 0xff, 0xff, 0x7f}), 0)
	r.max = 1 << 20
	if _, err := r.Next(); !errors.Is(err, ErrPacketTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

func TestReaderStickyFramingError(t *testing.T) {
	// A PINGREQ, then a PUBREL whose flags are 0001 instead of 0010.
	stream := append(encodeAll(t, &Pingreq{}), 0x61, 0x02, 0, 1)
	r := NewReader(bytes.NewReader(stream), 0)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	_, err := r.Next()
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
	if _, err2 := r.Next(); err2 != err {
		t.Fatalf("not sticky: %v", err2)
	}
	r.Reset(bytes.NewReader(encodeAll(t, &Pingresp{})))
	if f, err := r.Next(); err != nil || f.Type() != TypePingresp {
		t.Fatalf("after Reset: %v %v", f, err)
	}
}

func TestReaderLargePacketThenShrink(t *testing.T) {
	stream := encodeAll(t,
		&Publish{Topic: []byte("big"), Payload: bytes.Repeat([]byte{7}, 300_000)},
		&Puback{ID: 5},
	)
	r := NewReader(bytes.NewReader(stream), 0)
	f, err := r.Next()
	if err != nil || len(f) != len(stream)-4 {
		t.Fatalf("big: %d %v", len(f), err)
	}
	f, err = r.Next()
	if err != nil || f.Type() != TypePuback {
		t.Fatalf("puback: %v", err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatal(err)
	}
	if cap(r.buf) > defaultReadBuffer {
		t.Fatalf("buffer kept at %d after the large packet", cap(r.buf))
	}
	r.Release()
	if r.bufp != nil {
		t.Fatal("Release kept the buffer")
	}
}

func TestReaderReleaseKeepsPending(t *testing.T) {
	stream := encodeAll(t, &Puback{ID: 1}, &Puback{ID: 2})
	r := NewReader(bytes.NewReader(stream), 0)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() != 4 {
		t.Fatalf("Buffered = %d", r.Buffered())
	}
	r.Release()
	f, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	var p Puback
	if err := p.Decode(f); err != nil || p.ID != 2 {
		t.Fatalf("after Release: %v %v", p, err)
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestReaderNoProgress(t *testing.T) {
	if _, err := NewReader(zeroReader{}, 0).Next(); err != io.ErrNoProgress {
		t.Fatalf("err = %v, want io.ErrNoProgress", err)
	}
}

// TestReaderLengthBoundaries reads packets whose remaining length sits at
// each boundary of the variable-length encoding, back to back, through
// readers that return one byte, half the request or everything.
func TestReaderLengthBoundaries(t *testing.T) {
	var want []Packet
	for _, rem := range []int{5, 127, 128, 129, 255, 256, 16383, 16384, 16385, 2097151, 2097152} {
		want = append(want, &Publish{Topic: []byte("abc"), Payload: make([]byte, rem-5)})
		want = append(want, &Puback{ID: ID(rem%65535 + 1)})
	}
	stream := encodeAll(t, want...)
	for name, mk := range map[string]func() io.Reader{
		"whole": func() io.Reader { return bytes.NewReader(stream) },
		"half":  func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) },
	} {
		r := NewReader(mk(), 0)
		for i, w := range want {
			f, err := r.Next()
			if err != nil {
				t.Fatalf("%s: packet %d: %v", name, i, err)
			}
			if len(f) != w.Size() {
				t.Fatalf("%s: packet %d: frame of %d bytes, want %d", name, i, len(f), w.Size())
			}
			got := New(f.Type())
			if err := got.Decode(f); err != nil {
				t.Fatalf("%s: packet %d: %v", name, i, err)
			}
			if diff := cmp.Diff(w, got, cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) })); diff != "" {
				t.Fatalf("%s: packet %d differs", name, i)
			}
		}
	}
}
