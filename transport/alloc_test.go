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
