//go:build !race

package transport

import (
	"io"
	"testing"
)

// WSConn claims no allocation per Read or Write in the steady state.
func TestWSConnAllocs(t *testing.T) {
	r := newLoopWS(t)
	buf := make([]byte, 4096)
	if n := testing.AllocsPerRun(200, func() {
		if _, err := io.ReadFull(r, buf[:256]); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("WSConn.Read: %v allocs per 256-byte packet, want 0", n)
	}
	for _, client := range []bool{true, false} {
		w := NewWSConn(&loopConn{}, nil, client)
		msg := make([]byte, 256)
		if n := testing.AllocsPerRun(200, func() {
			if _, err := w.Write(msg); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("WSConn.Write (client=%v): %v allocs per 256-byte frame, want 0", client, n)
		}
	}
}

// A frame declaring 2^62 bytes is read without allocating.
func TestWSConnHugeFrameAllocs(t *testing.T) {
	hdr := []byte{0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	c := NewWSConn(&hugeFrameConn{hdr: hdr}, nil, false)
	buf := make([]byte, 4096)
	if n := testing.AllocsPerRun(200, func() {
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("WSConn.Read of a 2^62-byte frame: %v allocs per read, want 0", n)
	}
}
